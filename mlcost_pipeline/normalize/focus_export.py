"""Export files (FOCUS, and AWS CUR / Azure cost details through their converters) -> core.focus_costs, in DuckDB.

Source: FOCUS 1.0-preview to 1.2 files as CSV, gzip CSV or Parquet, and the provider datasets export_datasets
names. Grain: one row per file row whose ChargePeriodStart falls in [start, end) (and, when the export's manifest
decided it, on a day the file counts for). Key: x_LineId = the first 16 hex digits of the file's sha256, `-`, the
row's 1-based position in the file; `-<n>` is appended to the n-th repeat when one source row gives several charges
(a CUR fee with unused commitment), ordered by the rows' values. The same bytes give the same ids on every rerun
(the warehouse reads the lake's content-addressed copy: warehouse/lake.py); hashing the columns cost more than the
copy itself.

Reading rules (parsing, checks and hashing run in DuckDB SQL: one INSERT ... SELECT per file straight into the
target table, then one UPDATE for the duplicate suffix when a key repeats; nothing passes through Python):
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
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path

import duckdb
import polars as pl

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.export_converters import classify_azure, convert, detect_dataset
from mlcost_pipeline.normalize.export_datasets import ConvertOptions
from mlcost_pipeline.normalize.focus_export_sql import (  # ADDED_IN, LEGACY_NAMES: re-exported for callers
    ADDED_IN,
    BAD_ROW_MARKER,
    IN_WINDOW,
    LEGACY_NAMES,
    SOURCE,
    STRICT_COLUMNS,
    TARGETS,
    FileSql,
    file_sha256,
    file_sql,
    scan_sql,
)
from mlcost_pipeline.normalize.focus_schema import (
    POLARS_SCHEMA,
    NormalizationError,
    conform,
    create_table_sql,
)
from mlcost_pipeline.sources.currencies import ISO_4217

__all__ = ["ADDED_IN", "LEGACY_NAMES", "SOURCE", "ExportRead", "FileSummary", "billed_totals", "describe",
           "insert_focus_export", "read_focus_export", "summarize_file"]
_CURRENCIES = sorted(ISO_4217)
STRICT = frozenset(STRICT_COLUMNS)


@dataclass(frozen=True)
class ExportRead:
    """One file to read, and what the export's layout decided about it."""

    path: str
    dataset: str | None = None  # an export_datasets kind; None: detected from the file's columns
    days: tuple[date, ...] | None = None  # only rows charged on these UTC days count (None: every day)
    options: ConvertOptions = field(default_factory=ConvertOptions)
    expected_rows: int | None = None  # the manifest's count of the file's data rows


def as_read(f: str | Path | ExportRead) -> ExportRead:
    return f if isinstance(f, ExportRead) else ExportRead(str(f))


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _window(start: date, end: date) -> dict[str, object]:
    return {"start": datetime.combine(start, time()), "end": datetime.combine(end, time())}


def _columns(cur: duckdb.DuckDBPyConnection, relation: str, params: Mapping[str, object]) -> list[tuple[str, str]]:
    rows = cur.execute(f"DESCRIBE SELECT * EXCLUDE (__row) FROM {relation}", dict(params)).fetchall()  # noqa: S608
    return [(r[0], r[1]) for r in rows]


def describe(
    cur: duckdb.DuckDBPyConnection, read: str | ExportRead, defaults: Mapping[str, str] | None = None,
    strict: frozenset[str] = STRICT,
) -> FileSql:
    """The SQL for one file, after checking that it exists, which dataset it is and that it has what FOCUS needs."""
    read = as_read(read)
    path = read.path
    if not Path(path).is_file():
        raise FileNotFoundError(f"{SOURCE}: no such file {path}")
    scan = scan_sql(path)
    columns = _columns(cur, scan, {"path": path})
    dataset = read.dataset or detect_dataset([c for c, _ in columns])
    warnings: list[str] = []
    if dataset == ds.AZURE_COST_DETAILS:
        kind, reason = classify_azure(cur, scan, columns, {"path": path})
        if kind is None:  # no commitment rows: the actual and the amortized export are the same rows
            warnings.append(f"{SOURCE}: file {path}: cannot tell an actual from an amortized cost export "
                            f"({reason}); read as actual cost")
        dataset = kind or ds.AZURE_ACTUAL
    if dataset == ds.FOCUS:
        f = file_sql(path, columns, dict(defaults or {}), strict=strict)
    else:
        converted = convert(dataset, scan, columns, read.options)
        source = f"({converted.sql})"
        f = file_sql(path, _columns(cur, source, {"path": path, **converted.params}), dict(defaults or {}),
                     source=source, params=converted.params, strict=strict, dataset=dataset,
                     source_of=converted.source_of)  # fmt: skip
    return replace(f, warnings=tuple(warnings)) if warnings else f


def explain_bad_row(con: duckdb.DuckDBPyConnection, f: FileSql, window: dict[str, object]) -> NormalizationError:
    """The first bad row of the file (any problem first, then an unknown currency in the window), for the error."""
    cur = con.cursor()  # the failed statement aborted the caller's transaction: ask on a fresh one
    try:
        rows = cur.execute(
            f"SELECT __row, __problem FROM (SELECT __row, {f.problem} AS __problem FROM {f.relation}) "  # noqa: S608
            "WHERE __problem <> '' ORDER BY __row LIMIT 1", f.params).fetchall()
        if rows:
            return NormalizationError(f"{SOURCE}: file {f.path}: row {rows[0][0]}: {rows[0][1]}")
        rows = cur.execute(
            f'SELECT __row, "BillingCurrency" FROM {f.relation} WHERE {IN_WINDOW} '  # noqa: S608
            'AND NOT list_contains($currencies, "BillingCurrency") ORDER BY __row LIMIT 1',
            {**f.params, **window, "currencies": _CURRENCIES}).fetchall()
        if rows:
            return NormalizationError(f"{SOURCE}: file {f.path}: row {rows[0][0]}: field BillingCurrency: unknown "
                                      f"currency {rows[0][1]!r} (not an ISO 4217 code)")
        return NormalizationError(f"{SOURCE}: file {f.path}: a row failed its checks")
    finally:
        cur.close()


def _run_checked(con: duckdb.DuckDBPyConnection, f: FileSql, sql: str, params: dict[str, object],
                 window: dict[str, object]) -> list[tuple]:
    try:
        return con.execute(sql, params).fetchall()
    except duckdb.Error as exc:
        if BAD_ROW_MARKER in str(exc):
            raise explain_bad_row(con, f, window) from None
        raise


def _read_params(f: FileSql, read: ExportRead, start: date, end: date) -> dict[str, object]:
    days = {"days": list(read.days)} if read.days is not None else {}
    return {**f.params, **_window(start, end), "currencies": _CURRENCIES, **days}


def insert_focus_export(
    con: duckdb.DuckDBPyConnection, table: str, files: Sequence[str | ExportRead], start: date, end: date,
    ingested_at: datetime, *, defaults: Mapping[str, str] | None = None, strict: frozenset[str] = STRICT,
) -> int:
    """Insert the rows of `files` charged in [start, end) into `table` (core.focus_costs' columns), in SQL.

    Runs inside the caller's transaction; `table` must hold no other focus_export rows of the window (the caller
    deleted them), so the duplicate suffix sees exactly this run's rows. A bad file raises NormalizationError
    naming the file, the row and the field; the caller's rollback then leaves nothing behind.
    """
    defaults = dict(defaults or {})
    not_text = [c for c in defaults if TARGETS.get(c) != "VARCHAR"]
    if not_text:
        raise ValueError(f"defaults only apply to text columns of the contract, not {not_text}")
    window = _window(start, end)
    n = 0
    for read in map(as_read, files):
        f = describe(con, read, defaults, strict)
        sql = (
            f"INSERT INTO {table} BY NAME SELECT {f.columns}, {f.line_id} AS x_LineId, "  # noqa: S608
            f"'{SOURCE}' AS x_SourceSystem, CAST(\"ChargePeriodStart\" AS DATE) AS x_ChargeDate, "
            f"$ingested_at AS x_IngestedAt, $export_version AS x_ExportVersion "
            f"FROM {f.relation} WHERE {f.guard(read.days is not None)}"
        )
        file_id = file_sha256(read.path)[:16]
        params = {
            **_read_params(f, read, start, end),
            "file_id": file_id,
            "ingested_at": _naive_utc(ingested_at),
            "export_version": f"{f.version};sha256={file_id}",
        }
        n += _run_checked(con, f, sql, params, window)[0][0]
    if n:
        suffix_repeated_line_ids(con, table, start, end)
    return n


def suffix_repeated_line_ids(con: duckdb.DuckDBPyConnection, table: str, start: date, end: date) -> int:
    """Append `-<n>` to the n-th repeat of a focus_export x_LineId in the window (n from 1).

    Repeats (one source row that gave several charges) are ordered by their values, column by column: the result
    does not depend on the order rows come in (DuckDB's parallel insert need not keep it), only on the rows. Ids
    rarely repeat, so only the repeated ones are ranked.
    """
    order = ", ".join(f'"{c}"' for c in ("x_ExportVersion", *TARGETS))
    scope = (f"FROM {table} WHERE x_ChargeDate >= $start AND x_ChargeDate < $end "  # noqa: S608
             f"AND x_SourceSystem = '{SOURCE}'")
    return con.execute(f"""
UPDATE {table} AS t SET x_LineId = t.x_LineId || '-' || CAST(r.n AS VARCHAR)
FROM (
    SELECT rid, n FROM (
        SELECT rowid AS rid, row_number() OVER (PARTITION BY x_LineId ORDER BY {order}, rowid) - 1 AS n
        {scope} AND x_LineId IN (SELECT x_LineId {scope} GROUP BY x_LineId HAVING count(*) > 1)
    ) WHERE n > 0
) AS r
WHERE t.rowid = r.rid""", {"start": start, "end": end}).fetchall()[0][0]  # noqa: S608


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
