"""Export files (FOCUS, and AWS CUR / Azure cost details through their converters) -> core.focus_costs, in DuckDB.

Source: FOCUS 1.0-preview to 1.2 files as CSV, gzip CSV or Parquet, and the provider datasets export_datasets
names. Grain: one row per file row whose ChargePeriodStart falls in [start, end) (and, when the export's manifest
decided it, on a day the file counts for). Key: x_LineId = the first 16 hex digits of the file's sha256, `-`, the
row's 1-based position in the file; `-<n>` is appended to the n-th repeat when one source row gives several charges
(a CUR fee with unused commitment), ordered by the rows' values. The same bytes give the same ids on every rerun
(the warehouse reads the lake's content-addressed copy: warehouse/lake.py); hashing the columns cost more than the
copy itself.

Reading rules (parsing and checks run in DuckDB SQL, one SELECT per file: focus_export_rows.rows_select, which
core.focus_costs' view reads through and `insert_focus_export` inserts; nothing passes through Python):
- CSV is read with `all_varchar` so nothing is inferred; '', 'null' and 'NULL' are nulls (the FOCUS spec's
  own examples write `null`, the published FOCUS 1.0 sample `NULL`). Parquet keeps its types.
- A file that is not FOCUS is converted first (export_converters): its dataset comes from the manifest or, for a
  bare file, from its columns (and, for Azure cost details, from its rows: actual or amortized).
- Column names match case-insensitively. Pre-1.0 names map to 1.2: Provider, Publisher, InvoiceIssuer,
  UsageQuantity/UsageUnit -> Consumed*, AmortizedCost -> EffectiveCost, ChargeType -> ChargeCategory,
  Region -> RegionId. x_ columns of our contract (x_ResourceGroupName, x_CurrencyConversionRate) are kept;
  any other provider column (x_*, oci_*, ...) is ignored.
- Strict where money is decided: a row whose BilledCost, EffectiveCost, cost basis, BillingCurrency,
  ChargePeriodStart/End, BillingAccountId or ChargeCategory is empty, does not parse or breaks the spec refuses
  the file (in or outside the window: a broken file fails whole), naming file, row and column. Any other column
  that breaks the spec loads: the value becomes null (Tags, SkuPriceDetails, quantities, prices ...) or, for a
  mandatory column, its fallback (below); such rows are counted per column for the data-quality check.
- Money and quantities are parsed exactly as DECIMAL(38,12) (rounded beyond 12 decimals).
- Timestamps: 'Z', '+00:00' or another offset are converted to UTC; no offset means UTC. BillingPeriodEnd that
  is a date only or ends at 23:59:59 (Azure's inclusive end) becomes the next midnight (FOCUS: exclusive).
- Tags must be a flat JSON object (values string/number/bool/null); a brace-less Azure fragment is wrapped.
- Absent columns: ContractedCost falls back to ListCost and ListCost to ContractedCost; when both are absent
  both equal EffectiveCost (no invented savings). PublisherName and InvoiceIssuerName fall back to ProviderName,
  ServiceCategory to "Other"; ServiceProviderName (1.3) to PublisherName and HostProviderName to ProviderName.
  Any other absent mandatory column is an error unless `defaults` supplies a constant for it. An empty value of
  a mandatory column that is not strict takes the same fallbacks (ServiceName "Unknown", BillingPeriodStart/End
  the charge's calendar month).
- x_ExportVersion = "<focus-<detected version> | dataset>;sha256=<first 16 hex of the file>"; the FOCUS version
  is the newest whose added columns appear (1.2, 1.1), else 1.0-preview when pre-1.0 names appear, else 1.0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import polars as pl

from mlcost_pipeline.normalize.focus_export_describe import (  # ExportRead, describe ...: re-exported for callers
    STRICT,
    ExportRead,
    _naive_utc,
    _read_params,
    _run_checked,
    _window,
    as_read,
    describe,
    explain_bad_row,
)
from mlcost_pipeline.normalize.focus_export_rows import rows_select
from mlcost_pipeline.normalize.focus_export_sql import (  # ADDED_IN, LEGACY_NAMES: re-exported for callers
    ADDED_IN,
    IN_WINDOW,
    LEGACY_NAMES,
    SOURCE,
    TARGETS,
    file_sha256,
    scan_sql,
)
from mlcost_pipeline.normalize.focus_schema import (
    POLARS_SCHEMA,
    NormalizationError,
    conform,
    create_table_sql,
)

__all__ = ["ADDED_IN", "LEGACY_NAMES", "SOURCE", "STRICT", "ExportRead", "FileSummary", "as_read", "billed_totals",
           "count_focus_export", "describe", "explain_bad_row", "insert_focus_export", "read_focus_export",
           "summarize_file"]


def insert_focus_export(
    con: duckdb.DuckDBPyConnection, table: str, files: Sequence[str | ExportRead], start: date, end: date,
    ingested_at: datetime, *, defaults: Mapping[str, str] | None = None, strict: frozenset[str] = STRICT,
) -> int:
    """Insert the rows of `files` charged in [start, end) into `table` (core.focus_costs' columns), in SQL.

    Runs inside the caller's transaction; the rows and their ids are the ones core.focus_costs' view gives for the
    same files and days (focus_export_rows.rows_select). A bad file raises NormalizationError naming the file, the
    row and the field; the caller's rollback then leaves nothing behind.
    """
    defaults = _checked_defaults(defaults)
    window = _window(start, end)
    n = 0
    for read in map(as_read, files):
        f = describe(con, read, defaults, strict)
        sql = f"INSERT INTO {table} BY NAME " + rows_select(  # noqa: S608 (an identifier and SQL we built)
            f, f.guard(read.days is not None), "$ingested_at", "$export_version")
        file_id = file_sha256(read.path)[:16]
        params = {
            **_read_params(f, read, start, end),
            "file_id": file_id,
            "ingested_at": _naive_utc(ingested_at),
            "export_version": f"{f.version};sha256={file_id}",
        }
        n += _run_checked(con, f, sql, params, window)[0][0]
    return n


def count_focus_export(
    con: duckdb.DuckDBPyConnection, files: Sequence[str | ExportRead], start: date, end: date,
    *, strict: frozenset[str] = STRICT,
) -> int:
    """The check pass of the partition build: every row of each file held to the checks the insert applies (a bad
    row raises NormalizationError naming file, row and field), and the rows charged in [start, end) counted.

    Only the columns the checks read are parsed; nothing is written.
    """
    window = _window(start, end)
    n = 0
    for read in map(as_read, files):
        f = describe(con, read, strict=strict)
        sql = f"SELECT count(*) FROM {f.relation} WHERE {f.guard(read.days is not None)}"  # noqa: S608
        n += _run_checked(con, f, sql, _read_params(f, read, start, end), window)[0][0]
    return n


def _checked_defaults(defaults: Mapping[str, str] | None) -> dict[str, str]:
    defaults = dict(defaults or {})
    not_text = [c for c in defaults if TARGETS.get(c) != "VARCHAR"]
    if not_text:
        raise ValueError(f"defaults only apply to text columns of the contract, not {not_text}")
    return defaults


def read_focus_export(
    con: duckdb.DuckDBPyConnection, files: Sequence[str | ExportRead], start: date, end: date, ingested_at: datetime,
    *, defaults: Mapping[str, str] | None = None, strict: frozenset[str] = STRICT,
) -> pl.DataFrame:
    """Rows of the given files charged in [start, end), conformed to core.focus_costs, as a frame.

    The same SQL as the warehouse path, into a temporary table; for tests, `explain` and small reads.
    `defaults` gives constants for text columns a partial file does not carry (e.g. BillingCurrency).
    """
    cur = con.cursor()  # our own session: the temporary table never shows in the caller's connection
    try:
        cur.execute(create_table_sql("_mlc_focus_rows").replace("CREATE TABLE", "CREATE TEMP TABLE"))
        insert_focus_export(cur, "_mlc_focus_rows", files, start, end, ingested_at, defaults=defaults, strict=strict)
        df = cur.sql("SELECT * FROM _mlc_focus_rows ORDER BY rowid").pl()
    finally:
        cur.close()
    if not df.height:
        return conform(pl.DataFrame(schema=POLARS_SCHEMA), SOURCE)
    return conform(df, SOURCE)


@dataclass(frozen=True)
class QualityCount:
    """Rows of one provider and day loaded despite a problem in `column` (docs/exports.md), with the first one."""

    day: date
    provider: str
    column: str
    rows: int
    example_row: int
    example: str


@dataclass(frozen=True)
class FileSummary:
    """What a file holds for the window, after every check: per (day, provider, currency) its billed total."""

    path: str
    dataset: str  # focus-<version> or the converted dataset
    days: list[tuple[date, str, str, object, int]]  # (day, ProviderName, BillingCurrency, sum(BilledCost), rows)
    quality: list[QualityCount]
    warnings: tuple[str, ...]


def _detail(text: str, column: str) -> str:
    parts = [p for p in (text or "").split("; ") if p.startswith(column)]
    return "; ".join(parts) or text


def summarize_file(
    con: duckdb.DuckDBPyConnection, read: str | ExportRead, start: date, end: date, strict: frozenset[str] = STRICT,
) -> FileSummary:
    """Check every row of the file as the warehouse path does (the error names file, row and field) and sum what it
    holds for the window; counts the rows loaded despite a tolerated problem, per day, provider and column.

    One scan of the converted rows; with a manifest row count, one more count of the file's rows.
    """
    read = as_read(read)
    window = _window(start, end)
    f = describe(con, read, strict=strict)
    if read.expected_rows is not None:
        found = con.execute(f"SELECT count(*) FROM {scan_sql(read.path)}", {"path": read.path}).fetchall()[0][0]  # noqa: S608
        if found != read.expected_rows:
            raise NormalizationError(f"{SOURCE}: file {read.path}: the export's manifest lists {read.expected_rows} "
                                     f"data row(s), the file holds {found} (a partial or replaced file)")
    sql = (f'SELECT CAST("ChargePeriodStart" AS DATE), "ProviderName", "BillingCurrency", __q, sum("BilledCost"), '  # noqa: S608
           f"count(*), min(__row), arg_min(__qd, __row) FROM (SELECT {f.columns}, {f.quality} AS __q, "
           f"{f.quality_detail} AS __qd, __row FROM {f.relation} WHERE {f.guard(read.days is not None)}) "
           "GROUP BY ALL ORDER BY ALL")
    groups = _run_checked(con, f, sql, _read_params(f, read, start, end), window)
    totals: dict[tuple[date, str, str], list] = {}
    quality: dict[tuple[date, str, str], list] = {}
    for day, provider, currency, columns, billed, rows, first, detail in groups:
        total = totals.setdefault((day, provider, currency), [0, 0])
        total[0] += billed or 0
        total[1] += rows
        for column in columns or ():
            q = quality.setdefault((day, provider, column), [0, first, _detail(detail, column)])
            q[0] += rows
            if first < q[1]:
                q[1], q[2] = first, _detail(detail, column)
    return FileSummary(
        path=read.path, dataset=f.version, days=[(*k, v[0], v[1]) for k, v in sorted(totals.items())],
        quality=[QualityCount(*k, *v) for k, v in sorted(quality.items())], warnings=f.warnings,
    )


def billed_totals(
    con: duckdb.DuckDBPyConnection, files: Sequence[str | ExportRead], start: date, end: date
) -> list[tuple[str, str, object]]:
    """(ProviderName, BillingCurrency, sum(BilledCost)) of the files' charges in [start, end), unchecked.

    For the landing step's "what the provider billed" metadata: it parses only these columns and checks nothing
    (summarize_file does the checking); a file that cannot be read raises duckdb.Error or NormalizationError.
    """
    out: list[tuple[str, str, object]] = []
    for read in map(as_read, files):
        f = describe(con, read)
        on_days = ' AND list_contains($days, CAST("ChargePeriodStart" AS DATE))' if read.days is not None else ""
        days = {"days": list(read.days)} if read.days is not None else {}
        out += con.execute(
            f'SELECT "ProviderName", "BillingCurrency", sum("BilledCost") FROM {f.relation} '  # noqa: S608
            f"WHERE {IN_WINDOW}{on_days} GROUP BY ALL", {**f.params, **_window(start, end), **days}).fetchall()
    return out
