"""Raw landing: provider-native records kept verbatim (JSON text), one set per UTC day.

Grain: one row per native record (a Cost Explorer page-day, a BigQuery export row, an Azure query page-day, an
MLflow run). Keeping the native shape means a normalization bug is fixed by re-normalizing, without paying for
another Cost Explorer call.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import polars as pl

from mlcost_pipeline.warehouse.connection import checked_identifier
from mlcost_pipeline.warehouse.partition_writes import replace_window, replace_window_with

RAW_COLUMNS = [
    ("x_ChargeDate", "DATE"),
    ("record_no", "INTEGER"),
    ("payload", "JSON"),
    ("x_Source", "VARCHAR"),  # 'sample' or the live system that answered
    ("x_FetchedAt", "TIMESTAMP"),
]
RAW_TABLES = (
    "raw.aws_cost_explorer",
    "raw.gcp_billing_export",
    "raw.azure_cost_management",
    "raw.mlflow_runs",
)
FOCUS_MANIFEST_TABLE = "raw.focus_export_files"
FOCUS_MANIFEST_COLUMNS = [
    ("x_ChargeDate", "DATE"),
    ("path", "VARCHAR"),  # the file read: its content-addressed copy in the lake (warehouse/lake.py)
    ("sha256", "VARCHAR"),
    ("bytes", "BIGINT"),
    ("x_Source", "VARCHAR"),
    ("x_FetchedAt", "TIMESTAMP"),
    # Added with export layouts (docs/exports.md); a warehouse from before gets them empty (focus, not paired).
    ("dataset", "VARCHAR"),  # export_datasets kind: focus, aws_cur2, aws_cur_legacy, azure_actual, ...
    ("export_id", "VARCHAR"),  # the export the file belongs to (discovery's id)
    ("execution", "VARCHAR"),  # the run / execution / assembly that delivered it
    ("uri", "VARCHAR"),  # where the file is (s3://..., az://..., or the local path)
    ("paired", "BOOLEAN"),  # Azure actual cost read beside its amortized export that day: purchases only
]
# Rows loaded despite a problem in a column that decides no money, per day, file, provider and column: the
# focus_costs__data_quality check reads it.
FOCUS_QUALITY_TABLE = "raw.focus_export_quality"
FOCUS_QUALITY_COLUMNS = [
    ("x_ChargeDate", "DATE"),
    ("path", "VARCHAR"),  # where the file came from (its uri: what the user knows it by)
    ("ProviderName", "VARCHAR"),
    ("column_name", "VARCHAR"),
    ("rows", "BIGINT"),
    ("example_row", "BIGINT"),  # the first such row of the file (1-based data row)
    ("example", "VARCHAR"),  # what is wrong with it, with the value
]


def _default(obj: object) -> object:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    raise TypeError(f"not JSON-serializable: {type(obj).__name__}")


def land_records(
    con: duckdb.DuckDBPyConnection,
    table: str,
    start: date,
    end: date,
    records: list[tuple[date, dict]],
    source: str,
) -> int:
    """Replace [start, end) of a raw table with `records`, in one transaction."""
    fetched_at = datetime.now(UTC).replace(tzinfo=None)
    counters: dict[date, int] = {}
    rows = []
    for day, payload in records:
        n = counters.get(day, 0)
        counters[day] = n + 1
        rows.append((day, n, json.dumps(payload, default=_default, ensure_ascii=False), source, fetched_at))
    frame = pl.DataFrame(
        rows,
        schema={"x_ChargeDate": pl.Date, "record_no": pl.Int32, "payload": pl.String, "x_Source": pl.String,
                "x_FetchedAt": pl.Datetime("us")},
        orient="row",
    )  # fmt: skip
    return replace_window(con, table, "x_ChargeDate", start, end, frame)


def read_payloads(
    con: duckdb.DuckDBPyConnection, table: str, start: date, end: date
) -> tuple[list[dict], datetime | None]:
    """The payloads of [start, end) in landing order, parsed with exact decimals, and when they were fetched."""
    table = checked_identifier(table)
    rows = con.execute(
        f"SELECT payload, x_FetchedAt FROM {table} WHERE x_ChargeDate >= $start AND x_ChargeDate < $end "
        "ORDER BY x_ChargeDate, record_no",
        {"start": start, "end": end},
    ).fetchall()
    payloads = [json.loads(p, parse_float=Decimal) for p, _ in rows]
    fetched = max((f for _, f in rows), default=None)
    return payloads, fetched


def land_export_files(
    con: duckdb.DuckDBPyConnection, start: date, end: date, files: pl.DataFrame, quality: pl.DataFrame
) -> int:
    """Replace [start, end) of raw.focus_export_files and of raw.focus_export_quality, in one transaction."""

    def fill(c: duckdb.DuckDBPyConnection) -> int:
        c.execute(f"DELETE FROM {FOCUS_QUALITY_TABLE} WHERE x_ChargeDate >= $start AND x_ChargeDate < $end",  # noqa: S608
                  {"start": start, "end": end})
        for table, frame in ((FOCUS_MANIFEST_TABLE, files), (FOCUS_QUALITY_TABLE, quality)):
            if frame.height:
                c.register("_mlc_incoming", frame.to_arrow())
                try:
                    c.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _mlc_incoming")  # noqa: S608
                finally:
                    c.unregister("_mlc_incoming")
        return files.height

    return replace_window_with(con, FOCUS_MANIFEST_TABLE, "x_ChargeDate", start, end, fill)
