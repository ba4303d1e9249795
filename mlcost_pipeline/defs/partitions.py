"""The one time grain of the pipeline: UTC days."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from mlcost_pipeline.settings import load_settings

daily_partitions = dg.DailyPartitionsDefinition(start_date=load_settings().partitions_start, timezone="UTC")

# One run covers a whole backfill range: providers answer a 90-day query about as fast as a 1-day one.
single_run_backfill = dg.BackfillPolicy.single_run()


def partition_window(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """[start, end) as UTC dates; the same code path serves one day and a ranged backfill."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def days_in(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]
