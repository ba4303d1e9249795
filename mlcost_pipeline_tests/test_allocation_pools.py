"""Shared pools, one method at a time, on charges whose shares can be worked out by hand."""

import json
from decimal import Decimal

from mlcost_pipeline.warehouse.invariants import conservation_violations, split_violations
from mlcost_pipeline_tests.allocation_fixtures import (
    BASE_RULES,
    D1,
    D2,
    D3,
    allocate,
    at,
    charge,
    rules,
    run,
    shares,
    warehouse,
)

SHARED = {"tags": {"cluster": "gpu-shared"}}


def _pool(body: str) -> str:
    return BASE_RULES + "pools:\n" + body


def _check(con):
    assert conservation_violations(con, D1, D3) == []
    assert split_violations(con, D1, D3) == (0, [])


def test_pool_even_splits_to_the_last_unit_with_largest_remainder(tmp_path):
    con = warehouse([charge(D1, "100", ServiceName="NAT")])
    allocate(con, rules(tmp_path, _pool("""
  - {id: net, select: {services: [NAT]}, method: even, targets: [a, b, c]}
""")))
    rows = con.execute("SELECT project, amount, ratio, piece FROM core.allocated_costs ORDER BY piece").fetchall()
    # 100 / 3 = 33.333333333333 r 1 unit: the extra unit goes to one piece, deterministically (ties: sort key)
    assert rows == [("a", Decimal("33.333333333334"), Decimal("0.333333333334"), 0),
                    ("b", Decimal("33.333333333333"), Decimal("0.333333333333"), 1),
                    ("c", Decimal("33.333333333333"), Decimal("0.333333333333"), 2)]  # fmt: skip
    _check(con)


def test_pool_fixed_weights_and_negative_charges(tmp_path):
    con = warehouse([charge(D1, "10", ServiceName="S3"), charge(D1, "-1", ServiceName="S3", ChargeCategory="Credit")])
    allocate(con, rules(tmp_path, _pool("""
  - id: bucket
    select: {services: [S3]}
    method: fixed
    targets: [{project: a, weight: 70}, {project: b, weight: 29.5}, {project: c, model: m1, weight: 0.5}]
""")))
    assert shares(con, "project", "model", "rule_id", "method") == {
        ("a", None, "pool:bucket", "fixed"): Decimal("6.3"),
        ("b", None, "pool:bucket", "fixed"): Decimal("2.655"),
        ("c", "m1", "pool:bucket", "fixed"): Decimal("0.045"),
    }
    _check(con)


def test_pool_proportional_cost_uses_direct_cost_that_day_and_scope(tmp_path):
    con = warehouse([
        charge(D1, "30", tags={"project": "a"}),
        charge(D1, "10", tags={"project": "b"}),
        charge(D1, "60", ProviderName="Oracle", tags={"project": "b"}),
        charge(D1, "-50", ChargeCategory="Credit", tags={"project": "c"}),  # net negative: weight 0, not less
        charge(D1, "8", ServiceName="CloudWatch"),
        charge(D1, "4", ChargeCategory="Tax", ServiceName="Tax"),
        charge(D2, "5", ServiceName="CloudWatch"),  # no direct cost on D2: fallback
    ])  # fmt: skip
    allocate(con, rules(tmp_path, _pool("""
  - {id: overhead, select: {services: [CloudWatch]}, method: proportional_cost}
  - {id: tax, select: {charge_categories: [Tax]}, method: proportional_cost, scope: provider}
""")))
    got = shares(con, "charge_date", "project", where="rule_id LIKE 'pool:%'")
    assert got == {
        (D1, "a"): Decimal("2.4") + Decimal(3),  # 8 x 30/100, tax 4 x 30/40 (AWS only)
        (D1, "b"): Decimal("5.6") + Decimal(1),  # 8 x 70/100, tax 4 x 10/40
        (D2, "__unallocated__"): Decimal(5),  # the default fallback of proportional_cost
    }
    _check(con)


def test_pool_proportional_cost_limited_to_targets_falls_back_even(tmp_path):
    con = warehouse([charge(D1, "30", tags={"project": "a"}), charge(D1, "9", ServiceName="CloudWatch"),
                     charge(D2, "9", ServiceName="CloudWatch")])  # fmt: skip
    allocate(con, rules(tmp_path, _pool("""
  - {id: o, select: {services: [CloudWatch]}, method: proportional_cost, targets: [a, b], fallback: even}
""")))
    assert shares(con, "charge_date", "project", where="rule_id = 'pool:o'") == {
        (D1, "a"): Decimal(9), (D2, "a"): Decimal("4.5"), (D2, "b"): Decimal("4.5"),
    }  # fmt: skip
    fallback = con.execute("SELECT AllocatedMethodDetails FROM core.allocated_costs WHERE charge_date = $d",
                           {"d": D2}).fetchall()  # fmt: skip
    assert {json.loads(d)["x_Share"] for (d,) in fallback} == {"fallback"}


GPU_POOL = """
  - id: gpu
    select: {tags: {cluster: gpu-shared}}
    method: proportional_usage
    driver: gpu_hours
    runs: {cluster: gpu-shared}
    grain: GRAIN
    capacity: {per_day: 48}
    idle: IDLE
    fallback: idle
"""
RUNS = [
    run("r1", at(D1, 1), 4, 2, project="Churn_Pred", model="lgbm", cluster="gpu-shared"),  # 8 GPU-hours
    run("r2", at(D1, 10), 2, 2, project="churn", model="xgb", cluster="gpu-shared"),  # 4 GPU-hours
    run("r3", at(D1, 22), 4, 1, project="recsys", cluster="gpu-shared"),  # 2 h on D1, 2 h on D2
    run("r4", at(D1, 3), 5, 4, project="recsys", cluster="dedicated"),  # another cluster: not this pool's
    run("r5", at(D1, 5), 1, 2, cluster="gpu-shared"),  # nobody tagged it: 2 GPU-hours for __unallocated__
]


def _gpu(tmp_path, grain="project", idle="keep"):
    con = warehouse([charge(D1, "96", **SHARED), charge(D1, "48", **SHARED), charge(D2, "9.6", **SHARED),
                     charge(D3, "5", **SHARED)], RUNS)  # fmt: skip
    allocate(con, rules(tmp_path, _pool(GPU_POOL.replace("GRAIN", grain).replace("IDLE", idle))), D1, D3 + (D2 - D1))
    return con


def test_pool_gpu_hours_keep_idle_capacity_as_idle(tmp_path):
    con = _gpu(tmp_path)
    # D1: 16 GPU-hours used of 48 paid: 144 x 12/48 churn, 144 x 2/48 recsys, 144 x 2/48 untagged, 144 x 32/48 idle
    assert shares(con, "charge_date", "project") == {
        (D1, "__idle__"): Decimal(96), (D1, "__unallocated__"): Decimal(6), (D1, "churn"): Decimal(36),
        (D1, "recsys"): Decimal(6),
        (D2, "__idle__"): Decimal("9.2"), (D2, "recsys"): Decimal("0.4"),  # r3's 2 h after midnight
        (D3, "__idle__"): Decimal(5),  # no usage at all: fallback idle
    }  # fmt: skip
    unit = con.execute("SELECT DISTINCT AllocatedMethodDetails->'$.Elements[0].UsageUnit' FROM core.allocated_costs "
                       "WHERE project = 'churn'").fetchall()  # fmt: skip
    assert unit == [('"GPU-hours"',)]
    _check(con)


def test_pool_gpu_hours_shared_idle_and_model_and_run_grain(tmp_path):
    con = _gpu(tmp_path, grain="model", idle="share")
    assert shares(con, "project", "model", where=f"charge_date = '{D1}'") == {
        ("__unallocated__", None): Decimal(18), ("churn", "lgbm"): Decimal(72), ("churn", "xgb"): Decimal(36),
        ("recsys", None): Decimal(18),
    }  # fmt: skip
    con = _gpu(tmp_path, grain="run")
    got = shares(con, "run_id", "run_basis", where=f"charge_date = '{D1}' AND run_id IS NOT NULL")
    assert got == {("r1", "pool_share"): Decimal(24), ("r2", "pool_share"): Decimal(12),
                   ("r3", "pool_share"): Decimal(6), ("r5", "pool_share"): Decimal(6)}  # fmt: skip


def test_pool_capacity_from_consumed_quantity_and_sku(tmp_path):
    gpu = {"SkuId": "GPU", "ConsumedQuantity": Decimal(86400), "ConsumedUnit": "seconds", **SHARED}
    con = warehouse([charge(D1, "24", **gpu), charge(D1, "6", SkuId="CORE", ConsumedQuantity=Decimal(10**6),
                                                      ConsumedUnit="seconds", **SHARED)],
                    [run("r1", at(D1, 0), 6, 1, project="a", cluster="gpu-shared")])  # fmt: skip
    allocate(con, rules(tmp_path, _pool("""
  - id: gpu
    select: {tags: {cluster: '*'}}
    method: proportional_usage
    driver: gpu_hours
    capacity: {from_consumed_quantity: {sku_ids: [GPU], consumed_unit: seconds, per_unit: 1/3600}}
""")))
    assert shares(con, "project") == {("__idle__",): Decimal("22.5"), ("a",): Decimal("7.5")}  # 6 of 24 h


def test_pool_csv_and_sql_drivers(tmp_path):
    text = _pool("""
  - {id: scratch, select: {services: [S3]}, method: proportional_usage, driver: gb}
  - {id: logs, select: {services: [Logs]}, method: proportional_usage, driver: runs, grain: model}
drivers:
  gb: {csv: drivers/gb.csv, unit: GB}
  runs:
    sql: SELECT x_RunDate AS day, project_tag AS project, model_tag AS model, count(*) AS quantity FROM core.ml_runs GROUP BY ALL
""")
    csv = "date,project,quantity\n,a,1\n,b,3\n2026-11-02,a,1\n"
    con = warehouse([charge(D1, "8", ServiceName="S3"), charge(D2, "8", ServiceName="S3"),
                     charge(D1, "3", ServiceName="Logs")],
                    [run("r1", at(D1, 1), 1, project="Churn_Pred", model="m"), run("r2", at(D1, 2), 1, project="x"),
                     run("r3", at(D1, 3), 1, project="x")])  # fmt: skip
    allocate(con, rules(tmp_path, text, {"drivers/gb.csv": csv}))
    assert shares(con, "charge_date", "project", "model") == {
        (D1, "a", None): Decimal(2), (D1, "b", None): Decimal(6),  # undated rows: a standing split
        (D2, "a", None): Decimal(8),  # a dated row replaces the standing split on its day
        (D1, "churn", "m"): Decimal(1), (D1, "x", None): Decimal(2),  # driver values normalized like tags
    }  # fmt: skip


def test_pool_first_match_wins_and_unowned_only_keeps_tagged_cost(tmp_path):
    con = warehouse([charge(D1, "10", ServiceName="EC2", tags={"project": "a"}), charge(D1, "6", ServiceName="EC2"),
                     charge(D1, "4", ServiceName="S3"), charge(D1, "1", ServiceName="S3", tags={"project": "b"})])
    allocate(con, rules(tmp_path, _pool("""
  - {id: first, select: {services: [EC2, S3], unowned_only: true}, method: even, targets: [x]}
  - {id: second, select: {services: [S3]}, method: even, targets: [y]}
""")))
    assert shares(con, "project", "rule_id") == {
        ("a", "tag:project"): Decimal(10),  # owned, and no pool without unowned_only selects it
        ("x", "pool:first"): Decimal(10),  # the untagged S3 charge matches both pools: the first wins
        ("y", "pool:second"): Decimal(1),  # a pool takes a tagged charge unless it says unowned_only
    }  # fmt: skip


def test_pool_selector_criteria_are_anded_and_case_rules(tmp_path):
    con = warehouse([
        charge(D1, "1", x_ResourceGroupName="RG-GPU", ResourceId="/vm/gpu-01", tags={"Cluster": "GPU-Shared"}),
        charge(D1, "2", x_ResourceGroupName="rg-gpu", ResourceId="/vm/cpu-01", tags={"cluster": "gpu-shared"}),
        charge(D1, "4", x_ResourceGroupName="rg-gpu", ResourceId="/vm/gpu-02"),
    ])  # fmt: skip
    allocate(con, rules(tmp_path, _pool("""
  - id: p
    select: {resource_groups: [rg-GPU], resource_id_regex: '/gpu-\\d+$', tags: {CLUSTER: [gpu-shared]}}
    method: even
    targets: [a]
""")))
    assert shares(con, "project") == {("a",): Decimal(1), ("__unallocated__",): Decimal(6)}


def test_pool_split_is_exact_at_the_limits_of_the_stored_decimal(tmp_path):
    big = Decimal("99999999999999999999999999.999999999999")  # the largest DECIMAL(38,12)
    on_d2 = {"ServiceName": "NAT", "x_ChargeDate": D2, "ChargePeriodStart": at(D2), "ChargePeriodEnd": at(D3)}
    con = warehouse([charge(D1, str(big), ServiceName="NAT"), charge(D2, str(big.copy_negate()), **on_d2),
                     charge(D2, "0.000000000001", **on_d2)])  # fmt: skip
    allocate(con, rules(tmp_path, _pool("  - {id: n, select: {services: [NAT]}, method: even, targets: [a, b, c]}\n")))
    pieces = con.execute("SELECT amount FROM core.allocated_costs ORDER BY amount").fetchall()
    third = Decimal("33333333333333333333333333.333333333333")  # x 3 = big exactly; negation without rounding:
    assert [a for (a,) in pieces] == [third.copy_negate()] * 3 + [0, 0, Decimal("1e-12")] + [third] * 3
    _check(con)
