"""GCP Cloud Billing export in BigQuery: one parameterized query per window that aggregates inside BigQuery.

Source: the standard (`gcp_billing_export_v1_<ACCOUNT>`) or detailed (`gcp_billing_export_resource_v1_<ACCOUNT>`)
usage cost table, through google-cloud-bigquery. Grain of a record: one aggregated export row per (UTC usage day,
billing account, project, service, SKU, labels, system labels, location, cost type, currency and rate, invoice
month, usage units, seller; plus resource for the detailed export), in the export's own row shape (`service`,
`sku`, `project`, `labels`, `credits` ...), so `normalize/gcp_billing_export.py` reads live and sample rows alike.
Money is summed as NUMERIC (exact: each FLOAT64 cost is rounded to 9 decimals first), credits are summed per
credit name and type and kept, `export_time` is the latest export of the group and `x_export_rows` how many
export rows it sums.

Late rows: GCP keeps appending rows for a usage day for several days, each with a later `export_time`. A day is
selected by usage_start_time, with no upper bound on export_time, so a re-pull of the day (the restatement
window) picks up every late row; the ingestion-time partition filter starts a day before the window (export
partitions are by export time) so BigQuery scans only partitions that can hold the window's rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from mlcost_pipeline.sources.landing_checks import SourceDataError, window_label

SOURCE = "gcp_billing_export"
# project.dataset.table; a project id may carry a domain prefix (example.com:project). Names cannot be bound as
# query parameters, so only these characters get into the SQL.
_TABLE = re.compile(r"^(?P<project>[A-Za-z0-9.:_-]+)\.(?P<dataset>[A-Za-z0-9_]+)\.(?P<table>[A-Za-z0-9_$-]+)$")
_OPTIONAL = ("system_labels", "location", "transaction_type", "seller_name", "cost_at_list", "adjustment_info",
             "resource", "currency_conversion_rate", "tags")  # fmt: skip


def parse_table(table: str) -> tuple[str, str, str]:
    m = _TABLE.match(table or "")
    if not m:
        raise ValueError(f"MLCOST_GCP_BILLING_TABLE: expected project.dataset.table, got {table!r}")
    return m["project"], m["dataset"], m["table"]


@dataclass(frozen=True)
class ExportTable:
    """What the query needs to know about the export table (from `tables.get`, a free metadata call)."""

    table: str
    columns: frozenset[str]
    ingestion_partitioned: bool

    @property
    def kind(self) -> str:
        return "detailed" if "resource" in self.columns else "standard"


def bigquery_retry(deadline_seconds: float):
    """google-cloud-bigquery's own retry policy (5xx, 429, rateLimitExceeded/backendError, dropped connections,
    timeouts), bounded by MLCOST_GCP_RETRY_DEADLINE_SECONDS instead of its 10 minutes."""
    from google.cloud.bigquery import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(deadline_seconds)


def describe_table(client: Any, table: str, kind: str = "auto", *, retry: Any = None,
                   timeout: float | None = None) -> ExportTable:  # fmt: skip
    parse_table(table)
    meta = client.get_table(table, timeout=timeout, **({"retry": retry} if retry is not None else {}))
    columns = frozenset(f.name for f in meta.schema)
    missing = [c for c in ("billing_account_id", "service", "sku", "usage_start_time", "usage_end_time", "project",
                           "labels", "export_time", "cost", "currency", "usage", "credits", "invoice", "cost_type")
               if c not in columns]  # fmt: skip
    if missing:
        raise ValueError(f"{SOURCE}: table {table} is not a billing export: column {missing[0]} is missing")
    partitioning = getattr(meta, "time_partitioning", None)
    described = ExportTable(table, columns, partitioning is not None and getattr(partitioning, "field", None) is None)
    if kind == "detailed" and described.kind != "detailed":
        raise ValueError(f"{SOURCE}: MLCOST_GCP_EXPORT_KIND=detailed but {table} has no resource column")
    if kind == "standard" and described.kind == "detailed":
        return ExportTable(table, columns - {"resource"}, described.ingestion_partitioned)
    return described


def _opt(table: ExportTable, column: str, present: str, absent: str) -> str:
    return present if column in table.columns else absent


def billing_export_sql(table: ExportTable) -> str:
    """The aggregation query; parameters @window_start and @window_end (TIMESTAMP, end exclusive)."""
    t = table
    resource_key = _opt(t, "resource", ", resource.name AS resource_name, resource.global_name AS resource_global", "")
    partition = (" AND _PARTITIONTIME >= TIMESTAMP_SUB(@window_start, INTERVAL 1 DAY)"
                 if t.ingestion_partitioned else "")  # fmt: skip
    return f"""
WITH src AS (
  SELECT *,
    TO_JSON_STRING(STRUCT(
      DATE(usage_start_time) AS day, billing_account_id, project.id AS project_id, service.id AS service_id,
      sku.id AS sku_id, labels{_opt(t, "system_labels", ", system_labels", "")}
      {_opt(t, "location", ", location.location AS location, location.region AS region, location.zone AS zone", "")},
      cost_type, currency{_opt(t, "currency_conversion_rate", ", currency_conversion_rate", "")},
      invoice.month AS invoice_month, usage.unit AS usage_unit, usage.pricing_unit AS pricing_unit
      {_opt(t, "transaction_type", ", transaction_type", "")}{_opt(t, "seller_name", ", seller_name", "")}{resource_key}
    )) AS group_key
  FROM `{t.table}`
  WHERE usage_start_time >= @window_start AND usage_start_time < @window_end{partition}
),
credit_totals AS (
  SELECT group_key, ARRAY_AGG(STRUCT(name, full_name, id, type, amount) ORDER BY type, name, id) AS credits
  FROM (
    SELECT s.group_key, c.name, c.full_name, c.id, c.type, SUM(CAST(c.amount AS NUMERIC)) AS amount
    FROM src AS s, UNNEST(s.credits) AS c
    GROUP BY s.group_key, c.name, c.full_name, c.id, c.type
  )
  GROUP BY group_key
),
totals AS (
  SELECT
    group_key,
    ANY_VALUE(billing_account_id) AS billing_account_id,
    ANY_VALUE(service) AS service,
    ANY_VALUE(sku) AS sku,
    MIN(usage_start_time) AS usage_start_time,
    MAX(usage_end_time) AS usage_end_time,
    ANY_VALUE(project) AS project,
    ANY_VALUE(labels) AS labels,
    {_opt(t, "system_labels", "ANY_VALUE(system_labels)", "[]")} AS system_labels,
    {_opt(t, "location", "ANY_VALUE(location)", "NULL")} AS location,
    {_opt(t, "resource", "ANY_VALUE(resource)", "NULL")} AS resource,
    {_opt(t, "transaction_type", "ANY_VALUE(transaction_type)", "NULL")} AS transaction_type,
    {_opt(t, "seller_name", "ANY_VALUE(seller_name)", "NULL")} AS seller_name,
    MAX(export_time) AS export_time,
    SUM(CAST(cost AS NUMERIC)) AS cost,
    ANY_VALUE(currency) AS currency,
    {_opt(t, "currency_conversion_rate", "ANY_VALUE(currency_conversion_rate)", "NULL")} AS currency_conversion_rate,
    STRUCT(
      SUM(CAST(usage.amount AS NUMERIC)) AS amount, ANY_VALUE(usage.unit) AS unit,
      SUM(CAST(usage.amount_in_pricing_units AS NUMERIC)) AS amount_in_pricing_units,
      ANY_VALUE(usage.pricing_unit) AS pricing_unit
    ) AS usage,
    STRUCT(ANY_VALUE(invoice.month) AS month) AS invoice,
    ANY_VALUE(cost_type) AS cost_type,
    {_opt(t, "adjustment_info", "ANY_VALUE(adjustment_info)", "NULL")} AS adjustment_info,
    {_opt(t, "cost_at_list",
          "IF(COUNTIF(cost_at_list IS NULL) > 0, NULL, SUM(CAST(cost_at_list AS NUMERIC)))",
          "CAST(NULL AS NUMERIC)")} AS cost_at_list,
    COUNT(*) AS x_export_rows
  FROM src
  GROUP BY group_key
)
SELECT t.* EXCEPT (group_key), IFNULL(c.credits, []) AS credits
FROM totals AS t LEFT JOIN credit_totals AS c USING (group_key)
ORDER BY usage_start_time, t.group_key
"""


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


def _day(payload: dict, where: str) -> date:
    try:
        moment = datetime.fromisoformat(str(payload["usage_start_time"]))
    except (KeyError, ValueError):
        raise SourceDataError(
            f"{where}: field usage_start_time is missing or not a timestamp: {payload.get('usage_start_time')!r}"
        ) from None
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


class BigQueryUnavailableError(RuntimeError):
    """BigQuery kept failing (or answered something unreadable) for a window, after its retries."""


def fetch_billing_export(
    client: Any, table: ExportTable, start: date, end: date, *, max_bytes_billed: int | None = None,
    location: str | None = None, retry_deadline_seconds: float = 600.0, timeout_seconds: float | None = None,
) -> BillingExportPull:
    """One query for [start, end): every aggregated export row, dated by its UTC usage day.

    Each request (the query, every further result page) is retried by the client's policy within
    `retry_deadline_seconds` and waits at most `timeout_seconds` for an answer (result pages: at least 120 s, the
    client's floor); a query job still running after `timeout_seconds` is cancelled. Giving up, an unreadable page or
    a pagination loop fails the whole window with an error naming it: no partial window is returned.
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
    where = f"{SOURCE} {window_label(start, end)}"
    pull = BillingExportPull()
    from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY

    retry, job_retry = bigquery_retry(retry_deadline_seconds), DEFAULT_JOB_RETRY.with_timeout(2 * retry_deadline_seconds)
    try:
        # wait_timeout: without it a job that needs further result pages fetches them with no timeout at all
        # (a stalled connection would hang the run); the client raises its page timeouts to at least 120 s.
        rows = client.query_and_wait(billing_export_sql(table), job_config=config, location=location,
                                     api_timeout=timeout_seconds, wait_timeout=timeout_seconds, retry=retry,
                                     job_retry=job_retry)  # fmt: skip
        tokens: set[str] = set()
        for page in rows.pages:
            for row in page:
                payload = _json_safe(dict(row.items()))
                pull.export_rows += int(payload.get("x_export_rows") or 0)
                pull.records.append((_day(payload, f"{where}: result row {len(pull.records)}"), payload))
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
