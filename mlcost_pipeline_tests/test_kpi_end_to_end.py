"""What `make demo` promises for the marts and KPIs (issue 5), on the sample sources over nine days: every mart
is filled, the project mart adds up to the allocations per month, and marts.kpi_daily holds every KPI."""

from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline.warehouse.snapshot import DASHBOARD_VIEWS, publish_bi_snapshot

# Nine days across a month end: the last two have the 7 days of history an anomaly score needs.
START, END = date(2026, 10, 24), date(2026, 11, 1)
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]

# Every KPI docs/kpis.md lists, under its name in marts.kpi_daily (the per-dollar ones for the default metrics).
KPIS = {
    "spend", "spend_mtd", "tag_coverage", "unallocated_share", "spot_share", "gpu_pool_idle_share",
    "gpu_utilization", "spend_baseline", "spend_anomaly_score", "spend_anomaly", "spend_dod_change",
    "runs_started", "run_hours", "avg_run_hours", "cost_per_training_hour", "cost_per_gpu_hour", "failed_run_cost",
    "failed_run_share", "cost_per_finished_run", "cost_per_failed_run", "run_cost_30d", "quality_best_30d",
    "accuracy_per_usd", "customer_retention_lift_per_usd", "cost_per_quality_point", "cost_quality_quadrant",
    "cycle_time_to_registration_hours", "cycle_time_to_production_hours", "cycle_time_total_hours",
}  # fmt: skip
WORKLOADS = {"training", "serving", "storage", "orchestration", "monitoring", "tooling", "data_pipeline", "other"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("kpi_demo")
    settings = load_settings({"MLCOST_WAREHOUSE_PATH": str(root / "mlcost.duckdb"), "MLCOST_SOURCES": "sample"})
    result = run_range(build_definitions(settings), START, END, dg.DagsterInstance.ephemeral())
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return settings.warehouse_path, result


def _q(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()


def test_every_mart_is_filled_and_every_check_passes(demo):
    path, result = demo
    counts = {}
    for (table,) in _q(path, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'"):
        counts[table] = _q(path, f"SELECT count(*) FROM marts.{table}")[0][0]  # noqa: S608 (names from the catalog)
    expected = {"allocated_costs_by_workload", "cost_per_project_daily", "cost_per_model_daily",
                "cost_per_model_version_daily", "cost_per_run", "cost_per_experiment", "run_metrics",
                "model_version_runs", "kpi_cost_daily", "kpi_run_daily", "kpi_model_daily", "kpi_daily"}  # fmt: skip
    assert expected <= set(counts)
    assert [t for t in expected if counts[t] == 0] == []
    evaluations = result.get_asset_check_evaluations()
    # (budget checks fail on purpose when the sample spends past a budget: docs/budgets.md)
    assert [e.check_name for e in evaluations if not e.passed and not e.check_name.startswith("budget")] == []
    assert {"kpi_daily__every_kpi", "kpi_daily__adds_up", "cost_per_model_version_daily__adds_up",
            "cost_per_project_daily__workload_and_mtd"} <= {e.check_name for e in evaluations}  # fmt: skip


def test_project_mart_month_sums_equal_the_allocations(demo):
    path, _ = demo
    month_sums = "SELECT date_trunc('month', charge_date), billing_currency, sum(amount), sum(amount_reporting) FROM {} GROUP BY ALL ORDER BY ALL"  # noqa: E501
    mart = _q(path, month_sums.format("marts.cost_per_project_daily"))
    assert mart == _q(path, month_sums.format("core.allocated_costs"))
    assert len({m for m, *_ in mart}) == 2  # October and November
    mtd = _q(path, "SELECT sum(mtd_amount_reporting) FROM marts.cost_per_project_daily WHERE charge_date = $d "
                   "AND provider IS NOT NULL", {"d": date(2026, 10, 31)})[0][0]  # fmt: skip
    # the KPI's month-to-date for the organisation equals the month's allocations so far
    org_mtd = _q(path, "SELECT value FROM marts.kpi_daily WHERE date = $d AND scope_type = 'org' AND kpi = 'spend_mtd'",
                 {"d": date(2026, 10, 31)})[0][0]  # fmt: skip
    allocated = _q(path, "SELECT sum(amount_reporting) FROM core.allocated_costs WHERE charge_date BETWEEN $a AND $b",
                   {"a": date(2026, 10, 1), "b": date(2026, 10, 31)})[0][0]  # fmt: skip
    assert org_mtd == allocated and mtd >= 0


def test_kpi_daily_holds_every_kpi_for_the_demo_window(demo):
    path, _ = demo
    found = {k for (k,) in _q(path, "SELECT DISTINCT kpi FROM marts.kpi_daily")}
    assert KPIS <= found, sorted(KPIS - found)
    per_day = _q(path, "SELECT date, list(DISTINCT kpi) FROM marts.kpi_daily WHERE scope_type = 'org' GROUP BY date")
    assert {d for d, _ in per_day} == set(DAYS)
    for day, kpis in per_day:  # the cost KPIs apply every day
        assert {"spend", "spend_mtd", "tag_coverage", "unallocated_share", "spot_share"} <= set(kpis), day
    workload = _q(path, "SELECT scope_id, count(DISTINCT date), sum(value) FROM marts.kpi_daily "
                        "WHERE scope_type = 'workload' GROUP BY ALL")  # fmt: skip
    assert {w for w, days, total in workload if days == len(DAYS) and total > 0} == WORKLOADS
    spot = _q(path, "SELECT max(value) FROM marts.kpi_daily WHERE kpi = 'spot_share' AND scope_type = 'org'")
    assert 0 < spot[0][0] < 1
    quadrants = {v for (v,) in _q(path, "SELECT DISTINCT value FROM marts.kpi_daily WHERE kpi = 'cost_quality_quadrant'")}
    assert len(quadrants) >= 2  # the demo's models do not all land in the same corner


def test_bi_snapshot_publishes_the_kpi_views(demo, tmp_path):
    path, _ = demo
    snapshot = publish_bi_snapshot(path, tmp_path / "mlcost_bi.duckdb")
    assert set(DASHBOARD_VIEWS) | {"bi.kpi_daily", "bi.cost_per_model_version_daily", "bi.run_metrics"} <= set(
        snapshot.views
    )
    assert "bi.kpi_cost_daily" not in snapshot.views  # a part of kpi_daily, not a dashboard table
    with duckdb.connect(str(snapshot.path), read_only=True) as con:
        org = con.execute("SELECT count(*), count(spend), count(tooling_spend) FROM bi.kpi_org_daily").fetchall()
        assert org == [(len(DAYS), len(DAYS), len(DAYS))]
        labels = {q for (q,) in con.execute("SELECT DISTINCT quadrant FROM bi.model_cost_quality").fetchall()}
        # a model that logs no quality metric has a cost but no quadrant
        assert len(labels - {None}) >= 2 and labels - {None} <= {
            "high quality, low cost", "high quality, high cost", "low quality, low cost", "low quality, high cost"}
