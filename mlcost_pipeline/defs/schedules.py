"""The daily schedule, the job it launches, and the freshness every daily asset is held to.

Each tick launches ONE run of every asset over the restatement window (mlcost_pipeline/restatement.py): the last
MLCOST_RESTATEMENT_DAYS complete UTC days (default 3), plus the whole previous month during the first days of a
month, when the providers finalize their bills. The range goes in Dagster's partition-range tags, so the run is
exactly a single-run backfill: each asset replaces its window whole, and allocation and marts follow.
"""

from datetime import UTC, date, timedelta

import dagster as dg

from mlcost_pipeline.observability import log_event
from mlcost_pipeline.restatement import MONTH_CLOSE_DAYS, restatement_window
from mlcost_pipeline.settings import Settings

# Every day at 06:00 UTC. Partitions are UTC days, so yesterday is closed by then, and the providers have
# published most of it (Cost Explorer, the GCP export and Azure lag a few hours); what they add later, the next
# days' restatement picks up.
DAILY_RESTATEMENT_CRON = "0 6 * * *"

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

daily_restatement_job = dg.define_asset_job(
    "daily_restatement_job",
    selection=dg.AssetSelection.all(),
    description="Every asset over a range of UTC days in one run (the daily schedule's restatement window).",
)

# Every daily run refreshes every asset, so one that has not been materialized for 30 hours means a missed or
# failed run (a day plus the run's own time and some slack); 26 hours warns before that.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=30), warn_window=timedelta(hours=26)
)


def build_daily_restatement_schedule(settings: Settings) -> dg.ScheduleDefinition:
    days = settings.restatement_days
    if days < 1:
        raise ValueError(f"MLCOST_RESTATEMENT_DAYS must be at least 1, got {days}")
    first_partition = date.fromisoformat(settings.partitions_start)

    @dg.schedule(
        name="daily_restatement_schedule",
        cron_schedule=DAILY_RESTATEMENT_CRON,
        execution_timezone="UTC",
        job=daily_restatement_job,
        description=(
            f"06:00 UTC daily: re-materialize the last {days} UTC day(s), and the whole previous month during "
            f"the first {MONTH_CLOSE_DAYS} days of a month (MLCOST_RESTATEMENT_DAYS; docs/operations.md)."
        ),
    )
    def daily_restatement_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        today = context.scheduled_execution_time.astimezone(UTC).date()
        window = restatement_window(today, days, first_partition=first_partition)
        if window is None:
            return dg.SkipReason(
                f"no complete UTC day before {today} since the first partition {first_partition}"
            )
        log_event(
            context.log, "restatement_scheduled", tick=today, start=window.start, end=window.end,
            days=window.days, month_close=window.month_close,
        )  # fmt: skip
        return dg.RunRequest(
            run_key=f"restatement-{today}",
            tags={
                RANGE_START_TAG: window.start.isoformat(),
                RANGE_END_TAG: window.end.isoformat(),
                "mlcost/trigger": "daily_restatement",
                "mlcost/month_close": str(window.month_close).lower(),
            },
        )

    return daily_restatement_schedule
