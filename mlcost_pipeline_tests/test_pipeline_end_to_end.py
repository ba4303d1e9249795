"""The whole pipeline on the sample sources, in process, over a short window: what `make demo` promises."""

from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline.settings import load_settings

START, END = date(2026, 10, 30), date(2026, 11, 2)  # crosses a month boundary; END inclusive


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    settings = load_settings({"MLCOST_WAREHOUSE_PATH": str(root / "mlcost.duckdb"), "MLCOST_SOURCES": "sample"})
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    first = run_range(defs, START, END, instance)
    assert first.success, [e.message for e in first.all_events if e.is_failure]
    totals_after_first = _totals(settings.warehouse_path)
    second = run_range(defs, START, END, instance)
    assert second.success
    return settings.warehouse_path, first, totals_after_first


def _q(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()


def _totals(path):
    return {
        table: _q(path, sql)
        for table, sql in {
            "focus": "SELECT x_ChargeDate, x_SourceSystem, BillingCurrency, sum(EffectiveCost), count(*) "
            "FROM core.focus_costs GROUP BY ALL ORDER BY ALL",
            "allocated": "SELECT charge_date, project, sum(amount), count(*) FROM core.allocated_costs "
            "GROUP BY ALL ORDER BY ALL",
            "runs": "SELECT count(*), sum(gpu_hours) FROM core.ml_runs",
            "mart": "SELECT charge_date, project, sum(amount) FROM marts.cost_per_project_daily GROUP BY ALL ORDER BY ALL",
            "ids": "SELECT list(x_LineId ORDER BY x_LineId) FROM core.focus_costs",
        }.items()
    }


def test_pipeline_lands_every_source_for_every_day(warehouse):
    path, _, _ = warehouse
    got = {(d, s) for d, s, *_ in _q(path, "SELECT x_ChargeDate, x_SourceSystem, count(*) FROM core.focus_costs GROUP BY ALL")}
    days = [START + timedelta(days=i) for i in range((END - START).days + 1)]
    systems = ["aws_cost_explorer", "gcp_billing_export", "azure_cost_management", "focus_export"]
    assert got == {(d, s) for d in days for s in systems}
    assert _q(path, "SELECT count(*) FROM core.ml_runs")[0][0] > 0
    assert _q(path, "SELECT count(*) FROM core.ml_model_versions")[0][0] > 0


def test_pipeline_conserves_cost_per_day_and_currency_exactly(warehouse):
    path, _, _ = warehouse
    rows = _q(path, """
        SELECT d, cur, f.total, a.total FROM
          (SELECT x_ChargeDate AS d, BillingCurrency AS cur, sum(EffectiveCost) AS total
           FROM core.focus_costs GROUP BY ALL) f
          FULL OUTER JOIN
          (SELECT charge_date AS d, billing_currency AS cur, sum(amount) AS total
           FROM core.allocated_costs GROUP BY ALL) a
          USING (d, cur)""")
    assert rows and all(charged == allocated for _, _, charged, allocated in rows)
    assert {cur for _, cur, _, _ in rows} >= {"USD", "EUR"}


def test_pipeline_mart_adds_up_to_allocations(warehouse):
    path, _, _ = warehouse
    mart = _q(path, "SELECT sum(amount) FROM marts.cost_per_project_daily")[0][0]
    allocated = _q(path, "SELECT sum(amount) FROM core.allocated_costs")[0][0]
    assert mart == allocated and mart > Decimal(0)
    projects = {p for (p,) in _q(path, "SELECT DISTINCT project FROM marts.cost_per_project_daily")}
    assert {"churn", "recsys", "__unallocated__"} <= projects
    assert not {"churn-pred", "churn_pred"} & projects  # spellings folded by the rules


def test_pipeline_checks_pass(warehouse):
    _, first, _ = warehouse
    evaluations = first.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]
    assert "allocated_costs__conserves_effective_cost" in {e.check_name for e in evaluations}


def test_pipeline_second_run_changes_nothing(warehouse):
    path, _, totals_after_first = warehouse
    assert _totals(path) == totals_after_first
