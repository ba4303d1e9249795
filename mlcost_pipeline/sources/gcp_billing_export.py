"""GCP Cloud Billing export in BigQuery: one parameterized query per window that aggregates inside BigQuery.

Source: the table MLCOST_GCP_BILLING_TABLE names, through google-cloud-bigquery: the standard
(`gcp_billing_export_v1_<ACCOUNT>`) or detailed (`gcp_billing_export_resource_v1_<ACCOUNT>`) usage cost table, or
Google's native FOCUS export (`gcp_billing_export_focus_<ACCOUNT>`). Its schema is read first
(`gcp_billing_schema`) and the query built from it (`gcp_billing_query`). Grain of a record: one aggregated row per
UTC usage day and group (billing account, project, service, SKU, labels, system labels, location, cost type,
currency and rate, invoice month, usage units, seller, adjustment; plus resource for the detailed export). Standard
and detailed records keep the export's own row shape (`service`, `sku`, `project`, `labels`, `credits` ...), so
`normalize/gcp_billing_export.py` reads live and sample rows alike; FOCUS records carry FOCUS column names, money
as exact text, and `"x_Dataset": "focus"`. Money is summed as NUMERIC (exact: each FLOAT64 cost is rounded to 9
decimals first); credits are summed per credit name and type and kept; `export_time` (`x_ExportTime`) is the
latest export of the group and `x_export_rows` (`x_ExportRows`) how many export rows it sums.

Late rows: GCP keeps appending rows for a usage day for several days, each with a later `export_time`. A day is
selected by its usage start, with no upper bound on export time, so a re-pull of the day (the restatement window)
picks up every late row, exactly once: the day is replaced whole. The partition filter starts
EXPORT_LOOKBACK_DAYS before the window (export partitions are by export time) so BigQuery scans only partitions
that can hold the window's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from mlcost_pipeline.sources.gcp_billing_query import billing_export_sql, focus_export_sql
from mlcost_pipeline.sources.gcp_billing_schema import (
    FOCUS,
    SOURCE,
    ExportTable,
    bigquery_retry,
    describe_table,
    parse_table,
)
from mlcost_pipeline.sources.landing_checks import SourceDataError, window_label

__all__ = ["SOURCE", "BigQueryUnavailableError", "BillingExportPull", "ExportTable", "bigquery_retry",
           "billing_export_sql", "describe_table", "fetch_billing_export", "focus_export_sql", "parse_table"]
FOCUS_DATASET = "x_Dataset"  # marks a FOCUS record in raw.gcp_billing_export


def _json_safe(value: Any) -> Any:
    """A BigQuery row value as the sample renders it: TIMESTAMP as ISO 8601 UTC text, NUMERIC as exact text."""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


@dataclass
class BillingExportPull:
    records: list[tuple[date, dict]] = field(default_factory=list)
    bytes_processed: int = 0
    bytes_billed: int = 0
    export_rows: int = 0


@dataclass(frozen=True)
class _Shape:
    """Where a dataset's records keep what the checks read."""

    start: str
    end: str
    rows: str
    bad_count: str
    bad_row: str


_NATIVE = _Shape("usage_start_time", "usage_end_time", "x_export_rows", "x_end_before_start", "x_end_before_start_row")
_FOCUS = _Shape("ChargePeriodStart", "ChargePeriodEnd", "x_ExportRows", "x_EndBeforeStart", "x_EndBeforeStartRow")


def _day(payload: dict, where: str, start_field: str = "usage_start_time") -> date:
    try:
        moment = datetime.fromisoformat(str(payload[start_field]))
    except (KeyError, ValueError):
        raise SourceDataError(
            f"{where}: field {start_field} is missing or not a timestamp: {payload.get(start_field)!r}"
        ) from None
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def _refuse_end_before_start(table: ExportTable, shape: _Shape, day: date, payload: dict) -> None:
    """The aggregated row hides a broken export row (MIN(start) .. MAX(end) looks fine): the query counted them.
    Refused as the FOCUS reader refuses "ChargePeriodEnd: before ChargePeriodStart": the partition is not written."""
    count = int(payload.pop(shape.bad_count, 0) or 0)
    example = payload.pop(shape.bad_row, None)
    if not count:
        return
    fields = ", ".join(f"{k}={v}" for k, v in (example or {}).items() if v is not None)
    raise SourceDataError(
        f"{SOURCE} partition {day}: table {table.table}: {count} export row(s) of usage day {day} have "
        f"{shape.end} before {shape.start} ({shape.end}: before {shape.start}), e.g. the row with {fields}"
    )


class BigQueryUnavailableError(RuntimeError):
    """BigQuery kept failing (or answered something unreadable) for a window, after its retries."""


def fetch_billing_export(
    client: Any, table: ExportTable, start: date, end: date, *, max_bytes_billed: int | None = None,
    location: str | None = None, retry_deadline_seconds: float = 600.0, timeout_seconds: float | None = None,
) -> BillingExportPull:
    """One query for [start, end): every aggregated row of the table's dataset, dated by its UTC usage day.

    Each request (the query, every further result page) is retried by the client's policy within
    `retry_deadline_seconds` and waits at most `timeout_seconds` for an answer (result pages: at least 120 s, the
    client's floor); a query job still running after `timeout_seconds` is cancelled. Giving up, an unreadable page, a
    pagination loop or an export row that ends before it starts fails the whole window with an error naming it: no
    partial window is returned.
    """
    from google.cloud import bigquery

    if start >= end:
        raise ValueError(f"empty window: start {start} is not before end {end} (end is exclusive)")
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("window_start", "TIMESTAMP", datetime.combine(start, time(), UTC)),
            bigquery.ScalarQueryParameter("window_end", "TIMESTAMP", datetime.combine(end, time(), UTC)),
        ],
        maximum_bytes_billed=max_bytes_billed,
        use_legacy_sql=False,
    )
    focus = table.dataset == FOCUS
    shape = _FOCUS if focus else _NATIVE
    sql = focus_export_sql(table) if focus else billing_export_sql(table)
    where = f"{SOURCE} {window_label(start, end)}"
    pull = BillingExportPull()
    from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY

    retry, job_retry = bigquery_retry(retry_deadline_seconds), DEFAULT_JOB_RETRY.with_timeout(2 * retry_deadline_seconds)
    try:
        # wait_timeout: without it a job that needs further result pages fetches them with no timeout at all
        # (a stalled connection would hang the run); the client raises its page timeouts to at least 120 s.
        rows = client.query_and_wait(sql, job_config=config, location=location, api_timeout=timeout_seconds,
                                     wait_timeout=timeout_seconds, retry=retry, job_retry=job_retry)  # fmt: skip
        tokens: set[str] = set()
        for page in rows.pages:
            for row in page:
                payload = _json_safe(dict(row.items()))
                day = _day(payload, f"{where}: result row {len(pull.records)}", shape.start)
                _refuse_end_before_start(table, shape, day, payload)
                pull.export_rows += int(payload.get(shape.rows) or 0)
                if focus:
                    payload[FOCUS_DATASET] = FOCUS
                pull.records.append((day, payload))
            token = rows.next_page_token
            if token in tokens:  # the client would follow it forever, counting the same rows again
                raise SourceDataError(f"{where}: BigQuery pageToken {token!r} repeated (pagination loop)")
            tokens.add(token)
            if rows.total_rows is not None and len(pull.records) > rows.total_rows:
                raise SourceDataError(f"{where}: BigQuery returned more rows than the {rows.total_rows} of the "
                                      "result (a page served twice)")  # fmt: skip
    except SourceDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the query or its pages fails the window, named
        from google.api_core.exceptions import RetryError

        hint = (f" (gave up after MLCOST_GCP_RETRY_DEADLINE_SECONDS={retry_deadline_seconds:g})"
                if isinstance(exc, RetryError) else "")  # fmt: skip
        raise BigQueryUnavailableError(f"{where}: BigQuery query failed{hint}: {type(exc).__name__}: {exc}") from exc
    pull.bytes_processed = int(getattr(rows, "total_bytes_processed", None) or 0)
    return pull
