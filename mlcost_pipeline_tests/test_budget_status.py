"""marts.budget_status and marts.budget_alerts on the budget fixture (budget_fixtures.py), answers by hand.

November: as of 11-10, 10 days elapsed, 20 remaining, trailing window 11-04 .. 11-10 (7 days).
- a: 9 x 10 + 24 = 114 MTD (the EUR row is another reporting currency); trailing 6 x 10 + 24 = 84;
  forecast 114 + 84 / 7 x 20 = 354. Budget 300 (November override): 38.00% actual, 118.00% forecast.
- b/m1: 10 x 1 = 10 MTD; trailing 7; forecast 10 + 7 / 7 x 20 = 30. Budget 12: 83.33%, 250.00%.
- b (every model and none): 10 + 50 + 100 = 160; trailing 7 + 35 = 42; forecast 160 + 120 = 280. Budget 1000.
- c: 1 on 11-10; trailing 1; forecast 1 + 20 / 7 = 3.857142857143 (rounded at 12 decimals). Budget 3: 33.33%,
  128.57%.
October: loaded 10-30 .. 10-31, so the trailing window is 2 days; complete month: forecast = actual.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline_tests.budget_fixtures import D, insert_allocated, make_warehouse, query, run_budgets

NOV, OCT = date(2026, 11, 1), date(2026, 10, 1)
FIRST_ALERTS = [
    ("2026-11|a|forecast|ERROR", "354.000000000000", "118.00"),
    ("2026-11|a|forecast|WARN", "354.000000000000", "118.00"),
    ("2026-11|b/m1|actual|WARN", "10.000000000000", "83.33"),
    ("2026-11|b/m1|forecast|ERROR", "30.000000000000", "250.00"),
    ("2026-11|b/m1|forecast|WARN", "30.000000000000", "250.00"),
    ("2026-11|c|forecast|ERROR", "3.857142857143", "128.57"),
    ("2026-11|c|forecast|WARN", "3.857142857143", "128.57"),
]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("budgets")
    path = make_warehouse(folder)
    result = run_budgets(path, folder / "budgets.yaml")
    return path, folder / "budgets.yaml", result


def _status(path, month):
    rows = query(
        path,
        """
        SELECT budget_id, budget_amount, data_from, as_of_date, days_in_month, days_elapsed, days_remaining,
               actual_amount, trailing_days, trailing_amount, forecast_amount, actual_pct, forecast_pct
        FROM marts.budget_status WHERE month = $m ORDER BY budget_id""",
        {"m": month},
    )
    return {r[0]: r[1:] for r in rows}


def test_november_month_to_date_forecast_and_percents(first_run):
    path, _, _ = first_run
    got = _status(path, NOV)
    d0, d10 = date(2026, 11, 1), date(2026, 11, 10)
    assert got == {
        "a": (D("300"), d0, d10, 30, 10, 20, D("114"), 7, D("84"), D("354"), D("38.00"), D("118.00")),
        "b": (D("1000"), d0, d10, 30, 10, 20, D("160"), 7, D("42"), D("280"), D("16.00"), D("28.00")),
        "b/m1": (D("12"), d0, d10, 30, 10, 20, D("10"), 7, D("7"), D("30"), D("83.33"), D("250.00")),
        "c": (D("3"), d0, d10, 30, 10, 20, D("1"), 7, D("1"), D("3.857142857143"), D("33.33"), D("128.57")),
    }


def test_complete_month_forecast_is_actual_and_trailing_window_is_what_is_loaded(first_run):
    path, _, _ = first_run
    got = _status(path, OCT)
    d30, d31 = date(2026, 10, 30), date(2026, 10, 31)
    assert got["a"] == (D("400"), d30, d31, 31, 31, 0, D("20"), 2, D("20"), D("20"), D("5.00"), D("5.00"))
    assert got["b/m1"][6:10] == (D("0"), 2, D("0"), D("0"))  # a budget with no cost still has its row
    assert set(got) == {"a", "b", "b/m1", "c"}


def test_money_columns_are_exact_decimals(first_run):
    path, _, _ = first_run
    types = dict(query(path, "SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'marts' AND table_name = 'budget_status'"))  # fmt: skip
    for col in ("budget_amount", "actual_amount", "trailing_amount", "forecast_amount"):
        assert types[col] == "DECIMAL(38,12)", col


def test_alerts_warn_and_error_levels_on_actual_and_forecast(first_run):
    path, _, result = first_run
    rows = query(path, "SELECT alert_key, CAST(amount AS VARCHAR), CAST(pct AS VARCHAR), delivery "
                       "FROM marts.budget_alerts ORDER BY alert_key")  # fmt: skip
    assert [r[:3] for r in rows] == FIRST_ALERTS
    assert {r[3] for r in rows} == {"off"}  # no webhook configured
    mat = [m for m in result.asset_materializations_for_node("marts__budget_alerts")][0]
    assert mat.metadata["new_alerts"].value == 7


def test_within_budget_check_fails_with_error_severity(first_run):
    _, _, result = first_run
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    within = checks["budget_status__within_budget"]
    assert not within.passed and within.severity == dg.AssetCheckSeverity.ERROR
    # Per (budget, basis), its highest level: a forecast, b/m1 actual (WARN), b/m1 forecast, c forecast.
    assert within.metadata["over_threshold"].value == 4
    table = within.metadata["budgets"].value
    assert "| b/m1   | actual   | WARN" in table and "| c      | forecast | ERROR" in table
    assert checks["budget_alerts__delivered"].passed


def test_rerun_adds_nothing_and_a_new_crossing_appends_only_it(tmp_path):
    path = make_warehouse(tmp_path)
    run_budgets(path, tmp_path / "budgets.yaml")
    second = run_budgets(path, tmp_path / "budgets.yaml")
    assert [r[0] for r in query(path, "SELECT alert_key FROM marts.budget_alerts ORDER BY 1")] == [
        k for k, *_ in FIRST_ALERTS
    ]
    mat = second.asset_materializations_for_node("marts__budget_alerts")[0]
    assert mat.metadata["new_alerts"].value == 0
    # 11-11: b spends 700 more (no model): MTD 860 of 1000 (86%: WARN); trailing 11-05..11-11 = 6 + 30 + 700 = 736,
    # forecast 860 + 736 / 7 x 19 = 2857.714285714286 (ERROR). Everyone's as-of date moves; their keys do not.
    with duckdb.connect(str(path)) as con:
        insert_allocated(con, [(date(2026, 11, 11), "b", None, "USD", "700")])
    third = run_budgets(path, tmp_path / "budgets.yaml")
    new = query(path, "SELECT alert_key, CAST(amount AS VARCHAR), as_of_date FROM marts.budget_alerts "
                      "WHERE budget_id = 'b' ORDER BY 1")  # fmt: skip
    assert new == [
        ("2026-11|b|actual|WARN", "860.000000000000", date(2026, 11, 11)),
        ("2026-11|b|forecast|ERROR", "2857.714285714286", date(2026, 11, 11)),
        ("2026-11|b|forecast|WARN", "2857.714285714286", date(2026, 11, 11)),
    ]
    assert query(path, "SELECT count(*) FROM marts.budget_alerts")[0][0] == 10
    assert third.asset_materializations_for_node("marts__budget_alerts")[0].metadata["new_alerts"].value == 3


def test_alert_on_actual_only(tmp_path):
    path = make_warehouse(tmp_path)
    result = run_budgets(path, tmp_path / "budgets.yaml", {"MLCOST_BUDGET_ALERT_ON": "actual"})
    assert query(path, "SELECT alert_key FROM marts.budget_alerts") == [("2026-11|b/m1|actual|WARN",)]
    within = {e.check_name: e for e in result.get_asset_check_evaluations()}["budget_status__within_budget"]
    assert not within.passed and within.severity == dg.AssetCheckSeverity.WARN


def test_no_budget_crossed_passes_the_check(tmp_path):
    path = make_warehouse(tmp_path, rows=[(date(2026, 11, 3), "a", None, "USD", "1")])
    result = run_budgets(path, tmp_path / "budgets.yaml")
    assert query(path, "SELECT count(*) FROM marts.budget_alerts")[0][0] == 0
    within = {e.check_name: e for e in result.get_asset_check_evaluations()}["budget_status__within_budget"]
    assert within.passed


def test_no_budgets_gives_an_empty_status_and_no_alerts(tmp_path):
    path = make_warehouse(tmp_path)
    (tmp_path / "none.yaml").write_text("currency: USD\nbudgets: []\n")
    result = run_budgets(path, tmp_path / "none.yaml")
    assert query(path, "SELECT count(*) FROM marts.budget_status")[0][0] == 0
    assert query(path, "SELECT count(*) FROM marts.budget_alerts")[0][0] == 0
    assert all(e.passed for e in result.get_asset_check_evaluations())
