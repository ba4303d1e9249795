"""Cost of MLflow runs: direct (dedicated resource by overlap, or a run tag), pool share, rate-card estimate."""

from decimal import Decimal

import pytest

from mlcost_pipeline.allocation.currency import CurrencyError
from mlcost_pipeline.allocation.run_costs import cost_runs_window
from mlcost_pipeline.warehouse.invariants import split_violations
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

VM = "/subscriptions/s1/resourceGroups/rg-a/providers/Microsoft.Compute/virtualMachines/vm-a-gpu"
RULES = BASE_RULES + """
pools:
  - {id: gpu, select: {tags: {cluster: gpu-shared}}, method: proportional_usage, driver: gpu_hours, grain: run,
     runs: {cluster: gpu-shared}}
runs:
  rate_card_currency: USD
  rate_card:
    p4d.24xlarge: {hourly: 32, gpus: 8}
"""
RUNS = [
    run("r1", at(D1, 2), 6, 1, project="a", resource_id=VM.upper()),  # resource ids match case-insensitively
    run("r2", at(D1, 12), 3, 1, project="b", resource_id=VM),
    run("r3", at(D1, 22), 4, 1, project="a", resource_id=VM),  # 2 h on D1, 2 h on D2 (no charge on D2)
    run("r4", at(D1, 1), 1, 2, project="c", cluster="gpu-shared"),
    run("r5", at(D1, 5), 2, 4, project="c", instance_type="p4d.24xlarge"),  # nothing billed: estimate
    run("r6", at(D1, 6), 1, 1, project="c", instance_type="unknown-1"),  # no price for its type
    run("r9", at(D1, 8), 1, 1, project="Churn_Pred", model="m"),
]


def _setup(tmp_path, text=RULES, files=None, reporting="USD"):
    con = warehouse([
        charge(D1, "48", ResourceId=VM, tags={"project": "a"}),
        charge(D1, "7", tags={"mlflow_run_id": "r9"}),
        charge(D1, "5", tags={"mlflow_run_id": "r9", "project": "z"}),
        charge(D1, "10", tags={"cluster": "gpu-shared"}),
    ], RUNS)  # fmt: skip
    loaded = rules(tmp_path, text, files)
    allocate(con, loaded, reporting=reporting)
    cost_runs_window(con, loaded, D1, D3, reporting)
    return con


def test_runs_dedicated_resource_split_by_overlap_with_the_remainder_kept(tmp_path):
    con = _setup(tmp_path)
    got = con.execute(
        "SELECT run_id, project, run_basis, method, AllocatedMethodId, amount, ratio, "
        "AllocatedMethodDetails->>'$.Elements[0].UsageQuantity' FROM core.allocated_costs "
        "WHERE resource_id = $vm ORDER BY piece", {"vm": VM}
    ).fetchall()  # fmt: skip
    assert got == [  # 48 for 24 h: 2 per hour; the charge's owner keeps the hours no run used
        (None, "a", None, "tag", "run:resource_overlap", Decimal(26), Decimal("0.541666666667"), "13.0"),
        ("r1", "a", "direct", "tag", "run:resource_overlap", Decimal(12), Decimal("0.25"), "6.0"),
        ("r2", "a", "direct", "tag", "run:resource_overlap", Decimal(6), Decimal("0.125"), "3.0"),
        ("r3", "a", "direct", "tag", "run:resource_overlap", Decimal(4), Decimal("0.083333333333"), "2.0"),
    ]
    assert split_violations(con, D1, D3) == (0, [])


def test_runs_tagged_charge_goes_whole_to_the_run(tmp_path):
    con = _setup(tmp_path)
    assert shares(con, "project", "model", "run_id", "method", "AllocatedMethodId", where="run_id = 'r9'") == {
        ("churn", "m", "r9", "run", "run:tag"): Decimal(7),  # no project tag: the run's (normalized) project
        ("z", "m", "r9", "tag", "run:tag"): Decimal(5),  # the charge's own project wins
    }


def test_runs_cost_table_has_direct_pool_share_and_flagged_estimates(tmp_path):
    con = _setup(tmp_path)
    got = con.execute(
        "SELECT charge_date, run_id, project, cost_source, is_estimate, amount_reporting, gpu_hours, note "
        "FROM core.ml_run_costs ORDER BY ALL"
    ).fetchall()
    assert got == [
        (D1, "r1", "a", "direct", False, Decimal(12), Decimal(6), None),
        (D1, "r2", "b", "direct", False, Decimal(6), Decimal(3), None),
        (D1, "r3", "a", "direct", False, Decimal(4), Decimal(2), None),
        (D1, "r4", "c", "pool_share", False, Decimal(10), Decimal(2), None),
        (D1, "r5", "c", "estimate", True, Decimal(32), Decimal(8), None),  # 32/h x 4 of 8 GPUs x 2 h
        (D1, "r6", "c", "estimate", True, None, Decimal(1), "no rate-card price for instance type unknown-1"),
        (D1, "r9", "churn", "direct", False, Decimal(12), Decimal(1), None),
        (D2, "r3", "a", "estimate", True, None, Decimal(2), "no rate-card price for instance type (none)"),
    ]
    billed = con.execute("SELECT sum(amount_reporting) FROM core.ml_run_costs WHERE NOT is_estimate").fetchall()
    assert billed == con.execute(
        "SELECT sum(amount_reporting) FROM core.allocated_costs WHERE run_id IS NOT NULL"
    ).fetchall()


def test_runs_rate_card_in_another_currency_is_converted_or_refused(tmp_path):
    text = RULES.replace("rate_card_currency: USD", "rate_card_currency: EUR") + "currency: {rates_file: fx.csv}\n"
    rates = "date,from_currency,to_currency,rate\n2026-10-01,EUR,USD,1.25\n"
    con = _setup(tmp_path, text, {"fx.csv": rates})
    got = con.execute("SELECT amount_reporting FROM core.ml_run_costs WHERE run_id = 'r5'").fetchall()
    assert got == [(Decimal(40),)]  # EUR 32 x 1.25
    with pytest.raises(CurrencyError, match="EUR->USD on or before 2026-11-01 for the run rate card"):
        _setup(tmp_path, text, {"fx.csv": "date,from_currency,to_currency,rate\n"})
