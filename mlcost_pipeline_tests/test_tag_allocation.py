from decimal import Decimal

from mlcost_pipeline.allocation.rules import load_rules
from mlcost_pipeline.allocation.tag_allocation import allocation_select
from mlcost_pipeline.warehouse.invariants import conservation_violations
from mlcost_pipeline.warehouse.partition_writes import replace_window_sql
from mlcost_pipeline_tests.warehouse_fixtures import D1, D2, warehouse_with

ROWS = [
    {"day": D1, "cost": "10.000000000001", "tags": {"Project": "Churn_Pred"}},
    {"day": D1, "cost": "5.5", "tags": {"proj": "churn", "model": "churn-lgbm"}},
    {"day": D1, "cost": "2.25", "tags": {"PROJECT": "Fraud Detection", "proj": "recsys"}},
    {"day": D1, "cost": "1", "tags": None},
    {"day": D1, "cost": "0.75", "tags": {"Project": "  "}},
    {"day": D2, "cost": "3", "currency": "EUR", "tags": {"project": "recsys"}},
]


def _allocate(tmp_path):
    con = warehouse_with(tmp_path / "w.duckdb", ROWS)
    sql, params = allocation_select(load_rules(), D1, D2.replace(day=3))
    replace_window_sql(con, "core.allocated_costs", "charge_date", D1, D2.replace(day=3), sql, params)
    return con


def test_tag_allocation_folds_spellings_and_keeps_unowned_cost(tmp_path):
    con = _allocate(tmp_path)
    got = dict(
        ((p, str(d)), a)
        for p, d, a in con.execute(
            "SELECT project, charge_date, sum(amount) FROM core.allocated_costs GROUP BY ALL"
        ).fetchall()
    )
    assert got == {
        ("churn", "2026-11-01"): Decimal("15.500000000001"),
        ("fraud-detection", "2026-11-01"): Decimal("2.25"),  # `project` (any case) wins over `proj`
        ("__unallocated__", "2026-11-01"): Decimal("1.75"),  # no tags, and a blank value, own nothing
        ("recsys", "2026-11-02"): Decimal("3"),
    }


def test_tag_allocation_records_rule_and_model(tmp_path):
    con = _allocate(tmp_path)
    rows = con.execute(
        "SELECT project, model, rule_id, method, ratio, AllocatedMethodId FROM core.allocated_costs "
        "ORDER BY amount DESC"
    ).fetchall()
    assert rows[0] == ("churn", None, "tag:project", "tag", Decimal(1), "tag:project")
    assert ("churn", "churn-lgbm", "tag:project", "tag", Decimal(1), "tag:project") in rows
    assert ("__unallocated__", None, "unallocated", "unallocated", Decimal(1), None) in rows


def test_tag_allocation_conserves_per_day_and_currency(tmp_path):
    con = _allocate(tmp_path)
    assert conservation_violations(con, D1, D2.replace(day=3)) == []
    con.execute("UPDATE core.allocated_costs SET amount = amount + 0.000000000001 WHERE project = 'recsys'")
    assert conservation_violations(con, D1, D2.replace(day=3)) == [
        (D2, "EUR", Decimal("3"), Decimal("3.000000000001"))
    ]
