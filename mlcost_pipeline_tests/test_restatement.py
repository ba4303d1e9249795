"""The restatement window and the daily schedule that launches it."""

from datetime import UTC, date, datetime

import dagster as dg
import pytest

from mlcost_pipeline.defs.schedules import build_daily_restatement_schedule
from mlcost_pipeline.restatement import RestatementWindow, restatement_window
from mlcost_pipeline.settings import load_settings


@pytest.mark.parametrize(
    ("today", "days", "expected"),
    [
        # mid-month: the last N complete days, never today
        (date(2026, 11, 20), 3, RestatementWindow(date(2026, 11, 17), date(2026, 11, 19), False)),
        (date(2026, 11, 20), 1, RestatementWindow(date(2026, 11, 19), date(2026, 11, 19), False)),
        # the first days of a month: the whole previous month too
        (date(2026, 11, 1), 3, RestatementWindow(date(2026, 10, 1), date(2026, 10, 31), True)),
        (date(2026, 11, 5), 3, RestatementWindow(date(2026, 10, 1), date(2026, 11, 4), True)),
        (date(2026, 11, 6), 3, RestatementWindow(date(2026, 11, 3), date(2026, 11, 5), False)),
        # across a year end, and a leap February
        (date(2027, 1, 2), 3, RestatementWindow(date(2026, 12, 1), date(2027, 1, 1), True)),
        (date(2028, 3, 3), 3, RestatementWindow(date(2028, 2, 1), date(2028, 3, 2), True)),
        # a long setting reaches further back than the previous month
        (date(2026, 11, 2), 60, RestatementWindow(date(2026, 9, 3), date(2026, 11, 1), True)),
    ],
)
def test_restatement_window(today, days, expected):
    window = restatement_window(today, days)
    assert window == expected
    assert window.days == (expected.end - expected.start).days + 1


def test_restatement_window_starts_no_earlier_than_the_first_partition():
    first = date(2026, 10, 20)
    assert restatement_window(date(2026, 11, 2), 3, first_partition=first).start == first
    assert restatement_window(date(2026, 10, 20), 3, first_partition=first) is None
    assert restatement_window(date(2026, 10, 21), 3, first_partition=first) == RestatementWindow(first, first, False)


def test_restatement_window_refuses_zero_days():
    with pytest.raises(ValueError, match="MLCOST_RESTATEMENT_DAYS must be at least 1, got 0"):
        restatement_window(date(2026, 11, 20), 0)


def _tick(schedule, when: datetime):
    with dg.build_schedule_context(scheduled_execution_time=when) as context:
        return schedule.evaluate_tick(context)


def test_schedule_runs_daily_at_six_utc_over_the_window():
    schedule = build_daily_restatement_schedule(load_settings({"MLCOST_RESTATEMENT_DAYS": "4"}))
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 * * *", "UTC")
    [request] = _tick(schedule, datetime(2026, 11, 20, 6, tzinfo=UTC)).run_requests
    assert request.partition_key_range == dg.PartitionKeyRange("2026-11-16", "2026-11-19")
    assert request.run_key == "restatement-2026-11-20"
    [closing] = _tick(schedule, datetime(2026, 12, 2, 6, tzinfo=UTC)).run_requests
    assert closing.partition_key_range == dg.PartitionKeyRange("2026-11-01", "2026-12-01")
    assert closing.tags["mlcost/month_close"] == "true"


def test_schedule_skips_before_the_first_complete_partition():
    settings = load_settings({"MLCOST_PARTITIONS_START": "2026-11-20"})
    data = _tick(build_daily_restatement_schedule(settings), datetime(2026, 11, 20, 6, tzinfo=UTC))
    assert not data.run_requests and "no complete UTC day" in data.skip_message


def test_schedule_refuses_a_restatement_of_zero_days_at_load():
    with pytest.raises(ValueError, match="MLCOST_RESTATEMENT_DAYS must be at least 1"):
        build_daily_restatement_schedule(load_settings({"MLCOST_RESTATEMENT_DAYS": "0"}))
