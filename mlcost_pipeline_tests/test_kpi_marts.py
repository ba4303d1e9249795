"""The KPI marts (marts.kpi_daily and its parts, cost per model version, project workload and month-to-date, the
configured metrics) on the hand-built warehouse of kpi_fixtures.py. Each expected figure is worked out in the
comments from the fixture rows, not by running the SQL."""

from __future__ import annotations

import statistics
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline_tests.kpi_fixtures import D1, D2, HISTORY_SPEND, build_warehouse, kpi_defs, materialize

D = Decimal
TOLERANCE = D("1e-12")  # ratios are rounded to 12 decimals; money is compared exactly


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kpi_marts") / "w.duckdb"
    build_warehouse(path)
    result = materialize(path)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == []
    return path


def _rows(path: Path, sql: str, params: dict | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()


def _kpis(path: Path, day: date, scope_type: str, scope_id: str) -> dict[str, tuple[Decimal, str]]:
    rows = _rows(path, "SELECT kpi, value, unit FROM marts.kpi_daily WHERE date = $d AND scope_type = $t "
                       "AND scope_id = $s", {"d": day, "t": scope_type, "s": scope_id})  # fmt: skip
    return {kpi: (value, unit) for kpi, value, unit in rows}


def _close(got: Decimal, expected: Decimal | float) -> bool:
    return abs(got - D(str(expected))) <= TOLERANCE


def test_cost_kpis_of_a_day_for_the_organisation(warehouse):
    k = _kpis(warehouse, D1, "org", "all")
    # D1 pieces: 20 (a, spot) + 6 + 2 (unallocated) + 3 + 9 (GPU pool: b's run, idle) + 1 + 0.5 + 0.5 + 4 + 5 = 51
    assert k["spend"] == (D(51), "USD") and k["spend_mtd"] == (D(51), "USD")
    # tagged: 20 + 1 + 0.5 + 0.5 + 4 + 5 = 31 of 51; unallocated 2 of 51
    assert _close(k["tag_coverage"][0], D(31) / D(51)) and k["tag_coverage"][1] == "ratio"
    assert _close(k["unallocated_share"][0], D(2) / D(51))
    # compute (Compute, AI and ML): 20 + 3 + 9 + 5 = 37, of which the 20 priced Dynamic
    assert _close(k["spot_share"][0], D(20) / D(37))
    # the day before (Oct 31, 14th history day) was 11
    assert k["spend_dod_change"] == (D(40), "USD")
    assert _close(_kpis(warehouse, D2, "org", "all")["spend_mtd"][0], 61)  # 51 + 10


def test_cost_kpis_per_project_workload_and_pool(warehouse):
    b = _kpis(warehouse, D1, "project", "b")
    assert b["spend"][0] == D(20)  # 6 + 3 + 1 + 0.5 + 0.5 + 4 + 5
    assert _close(b["tag_coverage"][0], D("0.55"))  # (1 + 0.5 + 0.5 + 4 + 5) / 20
    assert b["spot_share"][0] == 0  # compute 3 + 5, nothing spot
    assert _close(_kpis(warehouse, D1, "project", "a")["spot_share"][0], 1)
    workload = {s: v for s, v in _rows(warehouse, "SELECT scope_id, value FROM marts.kpi_daily WHERE date = $d "
                "AND scope_type = 'workload' AND kpi = 'spend'", {"d": D1})}  # fmt: skip
    # L04's run piece is training (run R1); idle, untagged compute, spot compute and networking are other
    assert workload == {"training": D(3), "serving": D(5), "storage": D(6), "orchestration": D("0.5"),
                        "monitoring": D(1), "tooling": D("0.5"), "data_pipeline": D(4), "other": D(31)}  # fmt: skip
    pool = _kpis(warehouse, D1, "pool", "gpu")
    assert _close(pool["gpu_pool_idle_share"][0], D("0.75"))  # 9 of 12 kept as __idle__
    assert _close(pool["gpu_utilization"][0], D("0.25"))  # 2 GPU-hours used of 2 + 6 paid


def test_anomalies_compare_the_day_with_the_14_days_before(warehouse):
    org = _kpis(warehouse, D1, "org", "all")
    history = [float(x) for x in HISTORY_SPEND]  # Oct 18..31: 9, 11, 9, ... mean 10
    assert org["spend_baseline"] == (D(10), "USD")
    assert _close(org["spend_anomaly_score"][0], round((51 - 10) / statistics.stdev(history), 12))
    assert org["spend_anomaly"] == (D(1), "flag")
    # D2: the 14 days before are Oct 19..Nov 1 (the spike included), mean 13; 10 is no anomaly
    window = history[1:] + [51.0]
    d2 = _kpis(warehouse, D2, "org", "all")
    assert d2["spend_baseline"][0] == D(13)
    assert _close(d2["spend_anomaly_score"][0], round((10 - 13) / statistics.stdev(window), 12))
    assert d2["spend_anomaly"][0] == 0
    # project b has no history: baseline 0, no score (no spread), flagged because it appeared
    b = _kpis(warehouse, D1, "project", "b")
    assert b["spend_baseline"][0] == 0 and "spend_anomaly_score" not in b and b["spend_anomaly"][0] == 1


def test_run_kpis_by_start_day(warehouse):
    org = _kpis(warehouse, D1, "org", "all")
    # D1 runs: R1 (finished, 2 h, 2 GPU-h, 3), R2 (failed tuning, 1 h, 1 GPU-h, 1), R3 (batch inference, 4 h, 8)
    assert org["runs_started"][0] == 3 and org["run_hours"][0] == 7
    assert _close(org["cost_per_training_hour"][0], D(4) / D(3))  # R1 + R2: (3 + 1) / (2 + 1); R3 is serving
    assert _close(org["cost_per_gpu_hour"][0], D(4) / D(3))  # (3 + 1) / (2 + 1)
    assert org["failed_run_cost"][0] == 1 and _close(org["failed_run_share"][0], D(1) / D(12))
    assert org["cost_per_finished_run"][0] == D("5.5") and org["cost_per_failed_run"][0] == 1  # (3 + 8) / 2
    exp_a = _kpis(warehouse, D1, "experiment", "exp-a")
    assert (exp_a["runs_started"][0], exp_a["run_hours"][0], exp_a["avg_run_hours"][0]) == (2, 3, D("1.5"))
    hours = dict(_rows(warehouse, "SELECT scope_id, value FROM marts.kpi_daily WHERE kpi = 'runs_started' "
                                  "AND scope_type = 'start_hour' AND date = $d", {"d": D1}))  # fmt: skip
    assert hours == {"10": 2, "13": 1}  # 10:00, 10:30, 13:00
    estimators = dict(_rows(warehouse, "SELECT scope_id, value FROM marts.kpi_daily WHERE kpi = 'runs_started' "
                                       "AND scope_type = 'estimator' AND date IN ($d1, $d2)", {"d1": D1, "d2": D2}))  # fmt: skip
    assert estimators == {"xgboost": 2, "sklearn": 1, "(none)": 1}
    d2 = _kpis(warehouse, D2, "org", "all")  # R4 still running: counted, no hours, no waste
    assert (d2["runs_started"][0], d2["run_hours"][0], d2["failed_run_cost"][0]) == (1, 0, 0)


def test_quality_for_money_and_the_quadrant(warehouse):
    m1, m2 = _kpis(warehouse, D1, "model", "m1"), _kpis(warehouse, D1, "model", "m2")
    # m1: runs R1 + R2 cost 4; best accuracy of a finished run 0.8 (R2 failed), lift 0.4
    assert m1["run_cost_30d"][0] == 4 and m1["quality_best_30d"] == (D("0.8"), "accuracy")
    assert _close(m1["accuracy_per_usd"][0], D("0.2")) and m1["accuracy_per_usd"][1] == "accuracy per USD"
    assert _close(m1["customer_retention_lift_per_usd"][0], D("0.1"))
    assert _close(m1["cost_per_quality_point"][0], 5)
    # m2: R3 cost 8, accuracy 0.9. Medians of (4, 8) and (0.8, 0.9): 6 and 0.85
    assert _close(m2["cost_per_quality_point"][0], D(8) / D("0.9"))
    assert m1["cost_quality_quadrant"] == (D(3), "quadrant")  # low quality, low cost
    assert m2["cost_quality_quadrant"][0] == 2  # high quality, high cost
    assert "customer_retention_lift_per_usd" not in m2  # never logged it
    # D2 adds R4 (2) to m2's 30 days: 10 for the same 0.9
    assert _close(_kpis(warehouse, D2, "model", "m2")["accuracy_per_usd"][0], D("0.09"))


def test_version_links_cycle_time_and_cost_per_version(warehouse):
    links = _rows(warehouse, "SELECT run_id, model_name, model_version, link FROM marts.model_version_runs ORDER BY 1")
    # R2 started before m1 v1 was registered; R4 started after M2 v1, so it led to no version yet
    assert links == [("R1", "m1", 1, "source"), ("R2", "m1", 1, "preceding"), ("R3", "M2", 1, "source")]
    v1 = _kpis(warehouse, D1, "model_version", "m1/v1")
    assert v1["cycle_time_to_registration_hours"] == (D(5), "hours")  # R1 10:00 -> 15:00
    promoted = _kpis(warehouse, D2, "model_version", "m1/v1")
    assert promoted["cycle_time_to_production_hours"][0] == 12 and promoted["cycle_time_total_hours"][0] == 17
    assert _kpis(warehouse, D1, "model_version", "M2/v1")["cycle_time_to_registration_hours"][0] == D("5.5")
    rows = _rows(warehouse, "SELECT model, model_version, amount, training_amount, run_count "
                            "FROM marts.cost_per_model_version_daily ORDER BY ALL")  # fmt: skip
    # m1 on D1: R1's pool piece (3) goes to v1; the serving charge L10 (5) to no version
    assert rows == [("m1", 1, D(3), D(3), 1), ("m1", None, D(5), D(0), 0)]


def test_project_mart_has_workload_columns_and_month_to_date(warehouse):
    rows = _rows(warehouse, """
        SELECT charge_date, project, amount, tagged_amount, training_amount, serving_amount, storage_amount,
               orchestration_amount, monitoring_amount, tooling_amount, data_pipeline_amount, other_amount,
               mtd_amount, mtd_amount_reporting
        FROM marts.cost_per_project_daily WHERE (project = 'b' AND charge_date = $d1) OR charge_date IN ($oct31, $d2)
        ORDER BY ALL""", {"d1": D1, "d2": D2, "oct31": date(2026, 10, 31)})  # fmt: skip
    assert rows == [
        # Oct 18..31: seven days of 9 and seven of 11
        (date(2026, 10, 31), "a", D(11), D(11), 0, 0, 0, 0, 0, 0, 0, D(11), D(140), D(140)),
        (D1, "b", D(20), D(11), D(3), D(5), D(6), D("0.5"), D(1), D("0.5"), D(4), 0, D(20), D(20)),
        (D2, "a", D(10), D(10), 0, 0, 0, 0, 0, 0, 0, D(10), D(30), D(30)),  # 20 on Nov 1 + 10
    ]  # fmt: skip


def test_configured_metrics_in_the_run_marts(warehouse):
    assert _rows(warehouse, "SELECT run_id, metrics, quality_metric FROM marts.cost_per_run ORDER BY 1") == [
        ("R1", '{"accuracy":0.8,"customer_retention_lift":0.4}', 0.8),  # train_loss is not configured
        ("R2", '{"accuracy":0.5}', 0.5),
        ("R3", '{"accuracy":0.9}', 0.9),
        ("R4", None, None),
    ]
    assert _rows(warehouse, "SELECT run_id, metric, value, is_quality_metric FROM marts.run_metrics ORDER BY 1, 2") == [
        ("R1", "accuracy", 0.8, True), ("R1", "customer_retention_lift", 0.4, False),
        ("R2", "accuracy", 0.5, True), ("R3", "accuracy", 0.9, True),
    ]  # fmt: skip


def _copy(warehouse: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "w.duckdb"
    copy.write_bytes(warehouse.read_bytes())
    return copy


def _run(path: Path, selection: dg.AssetSelection, config: dict | None = None) -> dg.ExecuteInProcessResult:
    assets, checks, specs = kpi_defs(config)
    return dg.materialize([*assets, *checks, *specs], resources={"warehouse": WarehouseResource(path=str(path))},
                          selection=selection, raise_on_error=False)  # fmt: skip


def test_a_different_metric_list_changes_the_marts_not_their_columns(warehouse, tmp_path):
    copy = _copy(warehouse, tmp_path)
    config = {"kpi_metrics": ["train_loss", "customer_retention_lift"], "quality_metric": "customer_retention_lift"}
    result = _run(copy, dg.AssetSelection.assets(["marts", "cost_per_run"], ["marts", "run_metrics"]), config)
    assert result.success
    assert _rows(copy, "SELECT run_id, metrics, quality_metric FROM marts.cost_per_run WHERE run_id = 'R1'") == [
        ("R1", '{"train_loss":0.1,"customer_retention_lift":0.4}', 0.4)]  # fmt: skip
    assert _rows(copy, "SELECT metric, is_quality_metric FROM marts.run_metrics ORDER BY 1") == [
        ("customer_retention_lift", True), ("train_loss", False)]  # fmt: skip
    default = {a.key: a for a in kpi_defs()[0]}
    changed = {a.key: a for a in kpi_defs(config)[0]}
    key = dg.AssetKey(["marts", "cost_per_run"])
    assert default[key].code_versions_by_key[key] != changed[key].code_versions_by_key[key]


def test_metric_names_come_from_settings():
    settings = load_settings({"MLCOST_KPI_METRICS": "f1, customer_retention_lift", "MLCOST_KPI_QUALITY_METRIC": "auc"})
    assert settings.sql_params == {"kpi_metrics": ["f1", "customer_retention_lift", "auc"], "quality_metric": "auc"}
    assert load_settings({}).sql_params == {"kpi_metrics": ["accuracy", "customer_retention_lift"],
                                            "quality_metric": "accuracy"}  # fmt: skip
    with pytest.raises(ValueError, match=r"MLCOST_KPI_METRICS: not an MLflow metric name: \"f1'; drop\""):
        load_settings({"MLCOST_KPI_METRICS": "f1'; drop"})


@pytest.mark.parametrize(
    ("damage", "check", "expected"),
    [
        ("DELETE FROM marts.kpi_daily WHERE kpi = 'spot_share' AND date = DATE '2026-11-01' AND scope_type = 'org'",
         "kpi_daily__every_kpi", "spot_share"),
        ("DELETE FROM marts.kpi_daily WHERE kpi = 'cycle_time_total_hours'", "kpi_daily__every_kpi", "m1/v1"),
        ("UPDATE marts.kpi_daily SET value = value + 0.000000000001 WHERE kpi = 'spend' AND scope_id = 'tooling' "
         "AND date = DATE '2026-11-01'", "kpi_daily__adds_up", "sum"),
    ],
)
def test_kpi_checks_fail_on_a_missing_or_wrong_kpi(warehouse, tmp_path, damage, check, expected):
    copy = _copy(warehouse, tmp_path)
    with duckdb.connect(str(copy)) as con:
        con.execute(damage)
    key = dg.AssetCheckKey(dg.AssetKey(["marts", "kpi_daily"]), check)
    result = _run(copy, dg.AssetSelection.checks(key))
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["violations"].value == 1
    assert expected in evaluation.metadata["first_violations"].value


def test_version_check_fails_when_versions_do_not_add_up_to_the_model(warehouse, tmp_path):
    copy = _copy(warehouse, tmp_path)
    with duckdb.connect(str(copy)) as con:
        con.execute("DELETE FROM marts.cost_per_model_version_daily WHERE model_version IS NULL")
    key = dg.AssetCheckKey(dg.AssetKey(["marts", "cost_per_model_version_daily"]),
                           "cost_per_model_version_daily__adds_up")  # fmt: skip
    (evaluation,) = _run(copy, dg.AssetSelection.checks(key)).get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["violations"].value == 1
    assert "m1" in evaluation.metadata["first_violations"].value
