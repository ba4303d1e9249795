"""The whole pipeline on the sample sources, in process, over a short window: what `make demo` promises."""

from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.allocation.explain import explain
from mlcost_pipeline.allocation.rules import RulesError
from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline.warehouse.invariants import conservation_violations, split_violations

START, END = date(2026, 10, 29), date(2026, 11, 2)  # crosses a month boundary; END inclusive
# 2026-10-29 has three runs on dedicated Azure VMs the sample bills: direct run cost.


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


def test_with_mlflow_among_the_sources_every_check_runs(warehouse):
    _, first, _ = warehouse
    skipped = [e.check_name for e in first.get_asset_check_evaluations() if "not_applicable" in e.metadata]
    assert skipped == []


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
    # The sample budgets put a project over budget on purpose: that check reports spend, not data (docs/budgets.md).
    evaluations = [e for e in first.get_asset_check_evaluations() if e.check_name != "budget_status__within_budget"]
    assert evaluations and all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]
    assert "allocated_costs__conserves_effective_cost" in {e.check_name for e in evaluations}


def test_pipeline_second_run_changes_nothing(warehouse):
    path, _, totals_after_first = warehouse
    assert _totals(path) == totals_after_first


# --- allocation: what DESIGN.md §4/§5 promise on the demo ----------------------------------------------------------


def test_pipeline_conserves_every_day_with_idle_and_unallocated_visible(warehouse):
    path, first, _ = warehouse
    days = [START + timedelta(days=i) for i in range((END - START).days + 1)]
    with duckdb.connect(str(path), read_only=True) as con:
        assert conservation_violations(con, START, END + timedelta(days=1)) == []
        assert split_violations(con, START, END + timedelta(days=1)) == (0, [])
    per_day = {c.partition: c.passed for c in first.get_asset_check_evaluations()
               if c.check_name == "allocated_costs__conserves_effective_cost"}  # fmt: skip
    assert all(per_day.values()) and per_day
    rows = _q(path, "SELECT project, charge_date, sum(amount_reporting) FROM core.allocated_costs "
                    "WHERE project IN ('__idle__', '__unallocated__') GROUP BY ALL")  # fmt: skip
    for special in ("__idle__", "__unallocated__"):
        amounts = {d: a for p, d, a in rows if p == special}
        assert set(amounts) == set(days) and all(a > 0 for a in amounts.values()), special
    methods = {m for (m,) in _q(path, "SELECT DISTINCT method FROM core.allocated_costs")}
    assert methods >= {"tag", "fallback", "even", "fixed", "proportional_cost", "proportional_usage", "unallocated"}


def test_pipeline_explain_equals_the_mart_exactly(warehouse):
    path, _, _ = warehouse
    with duckdb.connect(str(path), read_only=True) as con:
        for project, day in (("churn", date(2026, 11, 1)), ("search-ranking", date(2026, 10, 30))):
            result = explain(con, project, day)
            mart = con.execute(
                "SELECT sum(amount_reporting), list(DISTINCT billing_currency ORDER BY billing_currency) "
                "FROM marts.cost_per_project_daily WHERE project = $p AND charge_date = $d", {"p": project, "d": day}
            ).fetchall()[0]  # fmt: skip
            assert Decimal(result["total"]) == mart[0] and mart[0] > 0
            assert sorted(result["total_by_billing_currency"]) == mart[1] == ["EUR", "USD"]
            assert sum(Decimal(p["amount_reporting"]) for p in result["parts"]) == mart[0]
            assert {r["rule_id"] for r in result["rules"]} >= {"tag:project", "pool:tax"}
        modelled = explain(con, "recsys", date(2026, 11, 1), "recsys-two-tower")
        model_mart = con.execute("SELECT sum(amount_reporting) FROM marts.cost_per_model_daily WHERE project = 'recsys' "
                                 "AND model = 'recsys-two-tower' AND charge_date = '2026-11-01'").fetchall()[0][0]
        assert Decimal(modelled["total"]) == model_mart


def test_pipeline_costs_runs_direct_pool_share_and_estimate(warehouse):
    path, _, _ = warehouse
    sources = dict(_q(path, "SELECT cost_source, count(*) FROM core.ml_run_costs GROUP BY ALL"))
    assert set(sources) == {"direct", "pool_share", "estimate"}
    assert _q(path, "SELECT count(*) FROM core.ml_run_costs WHERE is_estimate <> (cost_source = 'estimate')") == [(0,)]
    billed = _q(path, "SELECT sum(amount_reporting) FROM core.ml_run_costs WHERE NOT is_estimate")
    assert billed == _q(path, "SELECT sum(amount_reporting) FROM core.allocated_costs WHERE run_id IS NOT NULL")


def test_pipeline_invalid_rules_file_stops_with_one_line_naming_the_field(tmp_path, monkeypatch):
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: 2\ndimensions:\n  project: {tag_keys: [project]}\npools:\n  - id: x\n"
                   "    select: {services: [A]}\n    method: fixed\n    targets: [{project: a, weight: 60}]\n")
    monkeypatch.setenv("MLCOST_RULES", str(bad))
    # try/except, not pytest.raises: a kept traceback would pin Dagster's and DuckDB's objects until shutdown
    message = None
    try:
        build_definitions(load_settings({"MLCOST_WAREHOUSE_PATH": str(tmp_path / "w.duckdb")}))
    except RulesError as exc:
        message = str(exc)
    assert message == f"{bad}: pools.0.targets: fixed weights sum to 60, not 100"
