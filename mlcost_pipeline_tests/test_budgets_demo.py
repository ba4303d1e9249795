"""The demo promise: whatever the run date, a project is over 80% of its budget (rules/budgets.yaml) and shows in
marts.budget_alerts, through the whole pipeline on the sample sources.

The demo window is the 30 complete UTC days before today (cli.py). The current month's budget status reads only
the days from the 1st of the month, or 7 days back if that is earlier, to yesterday (actual: the month so far;
forecast: the 7-day trailing average; allocation is per day), so running just those days gives the demo's figures
for that month at a fraction of the time. The run dates here are the hard cases for a month-to-date figure: one
day into a month, and a week in. (Sweeping every run date from 2026-07 to 2027-05 the same way, the sample's
search-ranking forecast stayed between 97% and 128% of its 4,500 USD budget.)
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.budgets.alerts import summary
from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline.settings import load_settings


def _needed_days(run_date: date) -> tuple[date, date]:
    yesterday = run_date - timedelta(days=1)
    return min(yesterday.replace(day=1), yesterday - timedelta(days=6)), yesterday


@pytest.mark.parametrize("run_date", [date(2026, 12, 2), date(2027, 3, 9)])
def test_demo_shows_a_project_over_80_percent_of_its_budget(tmp_path, run_date):
    start, end = _needed_days(run_date)
    settings = load_settings(
        {"MLCOST_WAREHOUSE_PATH": str(tmp_path / "mlcost.duckdb"), "MLCOST_SOURCES": "sample"}
    )
    result = run_range(
        build_definitions(settings), start, end, dg.DagsterInstance.ephemeral(), log_level="ERROR"
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        month = end.replace(day=1)
        status = con.execute(
            "SELECT budget_id, forecast_pct FROM marts.budget_status WHERE month = $m AND as_of_date = $d "
            "AND forecast_amount * 100 >= budget_amount * warn_pct ORDER BY ALL", {"m": month, "d": end}
        ).fetchall()  # fmt: skip
        alerts = con.execute(
            "SELECT DISTINCT budget_id FROM marts.budget_alerts WHERE month = $m AND pct >= 80", {"m": month}
        ).fetchall()
        printed = summary(con)
    assert ("search-ranking",) in alerts, status
    assert {b for b, _ in status} >= {"search-ranking"}
    assert printed.startswith(f"Budgets over a threshold in {month:%Y-%m}") and "search-ranking" in printed
