"""Owners from tags and fallbacks: key order, case, normalization, aliases, fallback precedence, lineage."""

import json
from decimal import Decimal

from mlcost_pipeline.warehouse.invariants import conservation_violations, split_violations
from mlcost_pipeline_tests.allocation_fixtures import (
    BASE_RULES,
    D1,
    D2,
    D3,
    allocate,
    charge,
    rules,
    shares,
    warehouse,
)

TAGGED = [
    charge(D1, "10.000000000001", tags={"Project": "Churn_Pred"}),
    charge(D1, "5.5", tags={"proj": "churn", "model": "churn-lgbm"}),
    charge(D1, "2.25", tags={"PROJECT": "Fraud Detection", "proj": "recsys"}),
    charge(D1, "1", tags=None),
    charge(D1, "0.75", tags={"Project": "  "}),
    charge(D2, "3", BillingCurrency="EUR", x_CurrencyConversionRate=Decimal("0.8"), tags={"project": "recsys"}),
]


def test_allocation_tags_fold_spellings_and_keep_unowned_cost(tmp_path):
    con = warehouse(TAGGED)
    allocate(con, rules(tmp_path, BASE_RULES))
    assert shares(con, "project", "charge_date") == {
        ("__unallocated__", D1): Decimal("1.75"),  # no tags, and a blank value, own nothing
        ("churn", D1): Decimal("15.500000000001"),  # Churn_Pred -> churn-pred -> alias churn
        ("fraud-detection", D1): Decimal("2.25"),  # `project` (any case) wins over `proj`
        ("recsys", D2): Decimal("3"),
    }


def test_allocation_rows_record_rule_model_and_focus_13_lineage(tmp_path):
    con = warehouse(TAGGED)
    loaded = rules(tmp_path, BASE_RULES)
    allocate(con, loaded)
    rows = con.execute(
        "SELECT project, model, rule_id, method, ratio, AllocatedMethodId, AllocatedResourceId, AllocatedTags, "
        "AllocatedMethodDetails, rules_hash, cost_basis FROM core.allocated_costs ORDER BY amount DESC"
    ).fetchall()
    top = rows[0]
    assert top[:7] == ("churn", None, "tag:project", "tag", Decimal(1), "tag:project", "churn")
    assert json.loads(top[7]) == {"x_project": "churn"}
    assert json.loads(top[8])["Elements"] == [{"AllocatedRatio": 1.0, "UsageUnit": None, "UsageQuantity": None}]
    assert top[9] == loaded.sha256 and top[10] == "EffectiveCost"
    assert ("churn", "churn-lgbm", "tag:project", "tag") in [r[:4] for r in rows]
    unowned = [r for r in rows if r[0] == "__unallocated__"]
    assert {r[2:4] for r in unowned} == {("unallocated", "unallocated")}
    assert all(r[5] is None and r[6] is None and r[7] is None for r in unowned)  # FOCUS: null when not allocated


def test_allocation_conserves_per_day_and_currency_and_the_check_sees_tampering(tmp_path):
    con = warehouse(TAGGED)
    allocate(con, rules(tmp_path, BASE_RULES))
    assert conservation_violations(con, D1, D3) == []
    assert split_violations(con, D1, D3) == (0, [])
    # tamper with the stored pieces (core.allocated_costs is a view over them)
    con.execute("UPDATE core.allocated_cells SET amount = amount + 0.000000000001 WHERE project = 'recsys'")
    assert conservation_violations(con, D1, D3) == [(D2, "EUR", Decimal("3"), Decimal("3.000000000001"))]
    count, first = split_violations(con, D1, D3)
    assert count == 1 and "pieces sum to 3.000000000001, the cell is 3" in first[0][1]


def test_allocation_fallbacks_are_per_dimension_most_specific_first(tmp_path):
    text = BASE_RULES + """
fallbacks:
  resource_ids:
    - {pattern: '/buckets/ml-', assign: {project: recsys, team: ml}}
  resource_groups:
    RG-Shared: {project: platform}
  accounts:
    "111": {project: Churn_Pred, team: finance}
"""
    con = warehouse([
        charge(D1, "1", ResourceId="s3://x/buckets/ml-features", x_ResourceGroupName="rg-shared"),
        charge(D1, "2", x_ResourceGroupName="rg-shared"),
        charge(D1, "4"),
        charge(D1, "8", SubAccountId="999"),
        charge(D1, "16", tags={"team": "search"}),
    ])  # fmt: skip
    allocate(con, rules(tmp_path, text))
    got = con.execute(
        "SELECT amount, project, team, rule_id, method FROM core.allocated_costs ORDER BY amount"
    ).fetchall()
    assert got == [
        (Decimal(1), "recsys", "ml", "fallback:resource_id:0", "fallback"),  # the pattern beats the group
        (Decimal(2), "platform", "finance", "fallback:resource_group", "fallback"),  # team from the account
        (Decimal(4), "churn", "finance", "fallback:account", "fallback"),  # fallback values are normalized too
        (Decimal(8), "__unallocated__", None, "unallocated", "unallocated"),
        (Decimal(16), "churn", "search", "fallback:account", "fallback"),  # a tag wins for its dimension only
    ]


def test_allocation_rerun_replaces_the_window_with_the_same_rows(tmp_path):
    con = warehouse(TAGGED)
    loaded = rules(tmp_path, BASE_RULES)
    allocate(con, loaded)
    first = con.execute("SELECT * FROM core.allocated_costs ORDER BY x_LineId, piece").fetchall()
    allocate(con, loaded)
    assert con.execute("SELECT * FROM core.allocated_costs ORDER BY x_LineId, piece").fetchall() == first
    allocate(con, loaded, D2, D3)  # a one-day rerun leaves the other day alone
    assert con.execute("SELECT * FROM core.allocated_costs ORDER BY x_LineId, piece").fetchall() == first


def test_allocation_dimension_without_normalization_keeps_the_value_as_tagged(tmp_path):
    text = BASE_RULES + "  cost_center: {tag_keys: [CostCenter, cc], normalize: false, aliases: {CC_42: CC-42}}\n"
    con = warehouse([charge(D1, "1", tags={"project": "a", "costcenter": " CC_42"}),
                     charge(D1, "2", tags={"project": "a", "CC": "Fin Ops"}),
                     charge(D1, "4", tags={"project": "a", "COSTCENTER": "", "cc": "x"})])  # fmt: skip
    allocate(con, rules(tmp_path, text))
    assert shares(con, "cost_center") == {(" CC_42",): Decimal(1), ("Fin Ops",): Decimal(2), ("x",): Decimal(4)}
