"""Materialize every asset for a range of UTC days in one in-process run: the CLI's and the tests' path.

It is the same path as a single-run backfill launched from the UI: one run whose partition range tags give each
partitioned asset its window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import dagster as dg


def run_range(
    defs: dg.Definitions,
    start: date,
    end_inclusive: date,
    instance: dg.DagsterInstance,
    on_event: Callable[[dg.DagsterEvent], None] | None = None,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    if end_inclusive < start:
        raise ValueError(f"end {end_inclusive} is before start {start}")
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": end_inclusive.isoformat(),
        },
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
    )
    if on_event:
        for event in result.all_events:
            on_event(event)
    return result
