"""The templates cover every feature of the rules: a file using them all renders and runs on a tiny warehouse.

fixtures/allocation_sql/every_feature.yaml has each pool method, idle keep and share, each fallback of a pool
day without weights, capacity per day and from ConsumedQuantity, grains project/model/run, run filters, scope
provider, every selector criterion, resource-id / resource-group / account fallbacks, a dimension kept as
tagged, CSV and SQL drivers, provider and file FX rates, and a rate card in another currency. Expected figures
are worked out by hand or summed from the charges below with Decimal.
"""

import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from mlcost_pipeline.allocation.plan import render_plan
from mlcost_pipeline.allocation.rules import load_rules
from mlcost_pipeline.allocation.run_costs import cost_runs_window
from mlcost_pipeline.allocation.templates import bound_names, template_names
from mlcost_pipeline.warehouse.invariants import conservation_violations, split_violations
from mlcost_pipeline_tests.allocation_fixtures import D1, D2, D3, allocate, at, charge, run, shares, warehouse

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "allocation_sql"
VM = "/subscriptions/s1/resourceGroups/rg-a/providers/Microsoft.Compute/virtualMachines/vm-a-gpu"
AWS, GCP, AZ, OCI = (
    {"ProviderName": p, "SubAccountId": "999"} for p in ("AWS", "Google Cloud", "Microsoft", "Oracle")
)


def _billed(day, cost: str, **kw):
    # cost_basis is BilledCost: EffectiveCost differs, so allocating the wrong column shows in every total
    return charge(day, cost, **{"EffectiveCost": Decimal(cost) * 7, **kw})


CHARGES = [
    _billed(D1, "96", **AWS, tags={"cluster": "gpu-shared"}),  # gpu-keep: capacity 48 GPU-h, idle kept
    _billed(D1, "24", **GCP, tags={"cluster": "any"}, SkuId="GPU", ConsumedQuantity=Decimal(86400),
            ConsumedUnit="seconds"),  # gpu-cq: 24 GPU-hours of capacity from the GPU SKU's seconds
    _billed(D1, "30", **AZ, x_ResourceGroupName="RG-GPU", ResourceId="/vm/gpu-01"),  # gpu-share: idle shared
    _billed(D2, "10", **AZ, x_ResourceGroupName="rg-gpu", ResourceId="/vm/gpu-02"),  # no run on D2: fallback
    _billed(D1, "8", **AWS, ServiceName="S3"),  # scratch: standing CSV split a 1 : b 3
    _billed(D2, "8", **AWS, ServiceName="S3"),  # a dated CSV row on D2: all to a
    _billed(D1, "3", **AWS, ServiceName="Logs", ServiceCategory="Management and Governance"),  # SQL driver
    _billed(D1, "10", ProviderName="Google Cloud", SubAccountId="shared-ml", ServiceName="Cloud Storage"),
    _billed(D1, "100", **OCI, ServiceName="Networking"),  # even among three
    _billed(D1, "9", **AWS, ServiceName="CloudWatch"),  # proportional_cost among targets a, b
    _billed(D2, "4", **AWS, ServiceName="CloudWatch"),  # no direct cost of a or b on D2: even fallback
    _billed(D1, "4", **AWS, ChargeCategory="Tax", ServiceName="Tax"),  # by AWS direct cost (scope provider)
    _billed(D1, "30", **AWS, tags={"project": "a", "CostCenter": "CC_42"}),  # kept as tagged, then aliased
    _billed(D1, "10", **AWS, tags={"proj": "Churn_Pred", "cc": "Fin Ops"}),
    _billed(D1, "1", **AWS, ResourceId="s3://x/buckets/ml-features"),  # fallback resource_ids.0
    _billed(D1, "2", **AWS, ResourceId="arn:aws:logs:us-east-1:1:log-group:x"),  # fallback resource_ids.1
    _billed(D1, "4", **AZ, x_ResourceGroupName="rg-shared"),  # fallback resource group
    _billed(D1, "8", ProviderName="AWS", SubAccountId="111"),  # fallback account
    _billed(D1, "16", **AWS),  # nobody: __unallocated__
    _billed(D1, "8", **GCP, BillingCurrency="EUR", x_CurrencyConversionRate=Decimal("0.8"),
            tags={"project": "b"}),  # the provider's rate (to USD only)
    _billed(D1, "5", **AZ, BillingCurrency="EUR", tags={"project": "b"}),  # the rates file's EUR->USD 1.08
    _billed(D1, "6", **AWS, tags={"run_id": "r2"}),  # the second direct tag key names run r2
    _billed(D1, "24", **AWS, ResourceId=VM, tags={"project": "a"}),  # r1's dedicated VM: split by overlap
]  # fmt: skip
RUNS = [
    run("r1", at(D1, 2), 4, 2, project="a", model="m1", cluster="gpu-shared", instance_type="p4d.24xlarge",
        resource_id=VM),  # 8 GPU-hours
    run("r2", at(D1, 10), 2, 1, project="b", model="m2", cluster="gpu-shared",
        instance_type="g5.xlarge"),  # 2 GPU-hours
    run("r3", at(D1, 12), 2, None, project="c", instance_type="p4d.24xlarge"),  # no gpu_count: weighs 0
]  # fmt: skip


def _loaded(tmp_path: Path):
    for name in ("every_feature.yaml", "fx_rates.csv", "drivers/gb.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / name, tmp_path / name)
    return load_rules(tmp_path / "every_feature.yaml")


def test_every_template_and_feature_renders_with_each_value_bound(tmp_path):
    loaded = _loaded(tmp_path)
    plan = render_plan(loaded.rules, loaded.sha256, "USD")
    statements = [*plan.allocation_statements(), plan.run_costs]
    used = {"macros.sql", "cells.sql", "fx_needs.sql", "driver_probe.sql", "driver_usage.sql", "charges.sql",
            "allocate.sql", "drop_valued.sql", "allocated_costs_view.sql", "run_costs.sql"}  # fmt: skip
    assert {
        n for n in template_names() if not n.startswith("_")
    } == used  # a new template needs a statement here
    assert list(plan.drivers) == ["runs"]  # the CSV driver needs no SQL; no pool uses `unused`: it never runs
    for s in statements:
        names = bound_names(s.sql)
        assert names - {"start", "end"} == set(s.params), s.name  # every value bound, none unused
        assert s.window == bool(names & {"start", "end"})
    stage1 = plan.charges.sql
    for fragment in (
        '"BilledCost" AS charge_amount',  # the cost basis
        "map_entries(coalesce(CAST(f.Tags AS MAP(VARCHAR, VARCHAR)), MAP {})) AS tag_entries",  # as tagged
        "$dim_cost_center_keys",
        "WHEN regexp_matches(ResourceId, $fb_rid_1) THEN '1'",  # the second resource-id fallback
        "struct_extract_at(tg, 6) IS NOT NULL",  # a tag selector with "*"
        "list_contains($pool2_resource_groups, lower(x_ResourceGroupName))",
        "regexp_matches(ResourceId, $pool2_resource_id_regex)",
        "list_contains($pool4_service_categories, ServiceCategory)",
        "list_contains($pool8_charge_categories, ChargeCategory)",
        "AND (owner_project IS NULL)\n                THEN 3  -- pool scratch",  # unowned_only
    ):
        assert fragment in stage1, fragment
    assert plan.charges.params["dim_cost_center_from"] == ["CC_42"]
    assert plan.charges.params["tag_struct"].startswith('{"project": "VARCHAR", "proj": "VARCHAR", "model"')


def _input_totals(charges):
    out: dict[tuple, Decimal] = defaultdict(Decimal)
    for c in charges:
        out[(c["x_ChargeDate"], c["BillingCurrency"])] += c["BilledCost"]
    return dict(out)


@pytest.mark.parametrize("reporting", ["USD", "GBP"])
def test_every_feature_runs_on_a_tiny_warehouse_and_conserves_cost(tmp_path, reporting):
    loaded = _loaded(tmp_path)
    con = warehouse(CHARGES, RUNS)
    allocate(con, loaded, D1, D3, reporting)
    cost_runs_window(con, loaded, D1, D3, reporting)
    got = dict(
        ((d, c), a)
        for d, c, a in con.execute(
            "SELECT charge_date, billing_currency, sum(amount) FROM core.allocated_costs GROUP BY ALL"
        ).fetchall()
    )
    assert got == _input_totals(CHARGES)  # fmt: skip
    assert conservation_violations(con, D1, D3, "BilledCost") == []
    assert split_violations(con, D1, D3, "BilledCost") == (0, [])
    rule_ids = {r for (r,) in con.execute("SELECT DISTINCT rule_id FROM core.allocated_costs").fetchall()}
    assert rule_ids == {*(f"pool:{p.id}" for p in loaded.rules.pools), "tag:project",
                        "fallback:resource_id:0", "fallback:resource_id:1", "fallback:resource_group",
                        "fallback:account", "run:tag", "unallocated"}  # fmt: skip
    pool = "rule_id = 'pool:{}'".format
    assert shares(con, "run_id", "project", where=pool("gpu-keep")) == {
        ("r1", "a"): Decimal(16), (None, "__idle__"): Decimal(80)}  # 96 x 8/48; r2 is not a p4d  # fmt: skip
    assert shares(con, "project", "model", where=pool("gpu-cq")) == {
        ("a", "m1"): Decimal(8), ("b", "m2"): Decimal(2), ("__idle__", None): Decimal(14)}  # fmt: skip
    assert shares(con, "charge_date", "project", where=pool("gpu-share")) == {
        (D1, "a"): Decimal(24), (D1, "b"): Decimal(6),  # by use: idle shared
        (D2, "a"): Decimal(5), (D2, "b"): Decimal(5)}  # no use: even among the targets  # fmt: skip
    assert shares(con, "charge_date", "project", where=pool("scratch")) == {
        (D1, "a"): Decimal(2), (D1, "b"): Decimal(6), (D2, "a"): Decimal(8)}  # fmt: skip
    assert shares(con, "project", "model", where=pool("logs")) == {  # one run each
        ("a", "m1"): Decimal(1), ("b", "m2"): Decimal(1), ("c", None): Decimal(1)}  # fmt: skip
    assert shares(con, "project", "model", where=pool("bucket")) == {
        ("a", None): Decimal(7), ("b", None): Decimal("2.95"), ("c", "m1"): Decimal("0.05")}  # fmt: skip
    assert shares(con, "project", "team", where=pool("egress")) == {
        ("a", "net"): Decimal("33.333333333334"), ("b", None): Decimal("33.333333333333"),
        ("c", None): Decimal("33.333333333333")}  # fmt: skip
    overhead = shares(con, "charge_date", "project", where=pool("overhead"))
    assert {k: v for k, v in overhead.items() if k[0] == D2} == {(D2, "a"): Decimal(2), (D2, "b"): Decimal(2)}
    assert sum(v for k, v in overhead.items() if k[0] == D1) == 9 and {p for d, p in overhead if d == D1} == {
        "a",
        "b",
    }
    tax = shares(con, "project", where=pool("tax"))
    assert sum(tax.values()) == 4 and set(tax) == {("a",), ("churn",), ("recsys",), ("platform",)}  # AWS only
    assert shares(con, "cost_center", where="cost_center IS NOT NULL") == {
        ("CC-42",): Decimal(30), ("Fin Ops",): Decimal(10)}  # fmt: skip
    runs = con.execute(
        "SELECT run_id, cost_source, is_estimate FROM core.ml_run_costs ORDER BY ALL"
    ).fetchall()
    assert (
        ("r2", "direct", False) in runs
        and ("r1", "pool_share", False) in runs
        and ("r1", "direct", False) in runs
    )
    estimate = con.execute("SELECT amount_reporting FROM core.ml_run_costs WHERE run_id = 'r3'").fetchall()
    # no gpu_count: the whole instance, 32 EUR/h x 2 h = 64 EUR, at the file's EUR->USD 1.08 or EUR->GBP 0.85
    assert estimate == [(Decimal(64) * {"USD": Decimal("1.08"), "GBP": Decimal("0.85")}[reporting],)]
