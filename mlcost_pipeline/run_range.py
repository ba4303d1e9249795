"""Materialize every asset for a range of UTC days in one in-process run: the CLI's and the tests' path.

It is the same path as a single-run backfill launched from the UI: one run whose partition range tags give each
partitioned asset its window. The range is checked against the daily partitions first (Dagster would fail every
step with an invariant trace), and a failed step is reported by its root cause: Dagster wraps the exception our
code or the data raised in its own, whose message only says that an op failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Dagster is imported when a run starts, so that a bad range is refused in a blink
    import dagster as dg
    from dagster_shared.error import SerializableErrorInfo

_DAGSTER_MODULES = ("dagster.", "dagster_shared.", "dagster_")
_DATA_MODULES = ("duckdb.", "_duckdb.")
_OUR_PACKAGE = "mlcost_pipeline."
_OUR_FILES = "/mlcost_pipeline/"


class PartitionRangeError(ValueError):
    """A date range the daily partitions cannot hold; the message names the flag and the setting."""


def check_range(
    start: date, end_inclusive: date, first_partition: date, start_label: str | None = None
) -> None:
    """Refuse a range Dagster cannot run: an end before the start, a start before MLCOST_PARTITIONS_START."""
    label = start_label or f"--start {start}"
    if end_inclusive < start:
        raise PartitionRangeError(f"--end {end_inclusive} is before {label}")
    if start < first_partition:
        raise PartitionRangeError(
            f"{label} is before the first daily partition {first_partition} (MLCOST_PARTITIONS_START)"
        )


def run_range(
    defs: dg.Definitions,
    start: date,
    end_inclusive: date,
    instance: dg.DagsterInstance,
    on_event: Callable[[dg.DagsterEvent], None] | None = None,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    from mlcost_pipeline.defs.partitions import daily_partitions

    check_range(start, end_inclusive, daily_partitions.start.date())
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


@dataclass(frozen=True)
class StepFailure:
    step_key: str
    error_class: str  # the short class name of the root cause, e.g. NormalizationError
    message: str  # its message, without the class prefix Python's traceback module puts in front

    def line(self) -> str:
        return f"{self.step_key}: {self.error_class}: {self.message}"


def _chain(error: SerializableErrorInfo | None) -> list[SerializableErrorInfo]:
    """The error, then what caused it (`raise ... from`), then what it was raised while handling, depth first."""
    out, seen = [], set()
    stack = [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out.append(e)
        stack.extend([e.context, e.cause])  # cause first: it is the one `raise X from Y` names
    return out


def _qualified(error: SerializableErrorInfo) -> str:
    """`module.Class` as the message starts (builtins have no module: `ValueError`)."""
    head = error.message.split(":", 1)[0].strip()
    return head if head.endswith(error.cls_name or "") else error.cls_name or head


def _is_ours_or_data(error: SerializableErrorInfo) -> bool:
    name = _qualified(error)
    if name.startswith((_OUR_PACKAGE, *_DATA_MODULES)):
        return True
    # A builtin (ValueError, decimal.InvalidOperation, ImportError, ...) raised by a line of our package.
    return bool(error.stack) and _OUR_FILES in error.stack[-1] and not name.startswith(_DAGSTER_MODULES)


def root_cause(error: SerializableErrorInfo) -> SerializableErrorInfo:
    """The first error in the chain that our code or the data raised; else the first that is not Dagster's own."""
    chain = _chain(error)
    for e in chain:
        if _is_ours_or_data(e):
            return e
    return next((e for e in chain if not _qualified(e).startswith(_DAGSTER_MODULES)), error)


def step_failures(result: dg.ExecuteInProcessResult) -> list[StepFailure]:
    """Each failed step with the root cause of its failure, in the order the steps failed."""
    out = []
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        cause = root_cause(event.event_specific_data.error)
        text = cause.message.strip()
        prefix = _qualified(cause) + ":"
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
        out.append(StepFailure(event.step_key or "?", cause.cls_name or _qualified(cause), text))
    return out
