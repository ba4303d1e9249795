"""The restatement window: which UTC days the daily run re-materializes, as a pure function of the run's day.

Providers keep revising recent days after the fact: Cost Explorer marks the last days `Estimated`, the GCP export
adds late rows (a later `export_time`) for a few days, Azure's amortized cost settles a day or two late. And each
provider finalizes the previous month's bill in the first days of the new month (credits, refunds, tax,
savings-plan and reservation true-ups), rewriting days that are weeks old. So the run of day T re-pulls the last
`days` complete days [T - days, T - 1] and, while T is one of the first `month_close_days` days of its month, the
whole previous month as well. A restated day replaces the old one whole (partition writes delete and insert).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

# AWS finalizes a month's bill by about the 3rd, GCP invoices by about the 5th and Azure by about the 5th to 9th
# (the amortized view settles with the invoice); 5 days catch the usual finalization at the cost of re-pulling
# one month on 5 runs.
MONTH_CLOSE_DAYS = 5


@dataclass(frozen=True)
class RestatementWindow:
    """UTC days [start, end], both inclusive (the CLI's --start/--end and Dagster's partition range)."""

    start: date
    end: date
    month_close: bool  # the first days of a month: the whole previous month is restated too

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def restatement_window(
    today: date,
    days: int = 3,
    month_close_days: int = MONTH_CLOSE_DAYS,
    first_partition: date | None = None,
) -> RestatementWindow | None:
    """The days the run of `today` (UTC) re-materializes; None when no complete day exists yet.

    `today` itself is never included: it is not over, and providers have not billed it.
    """
    if days < 1:
        raise ValueError(f"MLCOST_RESTATEMENT_DAYS must be at least 1, got {days}")
    if month_close_days < 0:
        raise ValueError(f"month_close_days must not be negative, got {month_close_days}")
    end = today - timedelta(days=1)
    start = today - timedelta(days=days)
    closing = today.day <= month_close_days
    if closing:
        previous_month_start = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        start = min(start, previous_month_start)
    if first_partition is not None:
        start = max(start, first_partition)
    if start > end:
        return None
    return RestatementWindow(start=start, end=end, month_close=closing)
