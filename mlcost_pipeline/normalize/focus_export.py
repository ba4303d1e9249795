"""FOCUS export files (AWS Data Exports, Azure FocusCost, GCP, OCI, ...) -> core.focus_costs, scanned by DuckDB.

Source: FOCUS 1.0-preview to 1.2 files as CSV, gzip CSV or Parquet. Grain: one row per file row whose
ChargePeriodStart falls in [start, end). Key: x_LineId = md5 over ('focus_export', the file's name without
extensions, the values after parsing of the columns that identify a charge: focus_export_sql.ID_COLUMNS), with
`-<n>` appended to the n-th row with the same key (ordered by file version, then by the rows' values, so not by
their order in the file); it does not depend on the file's folder or format, so a CSV and its Parquet copy agree.

Reading rules (parsing, checks and hashing run in DuckDB SQL: one INSERT ... SELECT per file straight into the
target table, then one UPDATE for the duplicate suffix when a key repeats; nothing passes through Python):
- CSV is read with `all_varchar` so nothing is inferred; '', 'null' and 'NULL' are nulls (the FOCUS spec's
  own examples write `null`). Parquet keeps its types: numbers, TIMESTAMP[TZ], DATE, MAP/STRUCT Tags.
- Column names match case-insensitively. Pre-1.0 names map to 1.2: Provider, Publisher, InvoiceIssuer,
  UsageQuantity/UsageUnit -> Consumed*, AmortizedCost -> EffectiveCost, ChargeType -> ChargeCategory,
  Region -> RegionId. x_ columns of our contract (x_ResourceGroupName, x_CurrencyConversionRate) are kept;
  any other provider column (x_*, oci_*, ...) is ignored.
- Every row of a file is checked, also rows outside the window: a broken file fails whole, naming file and row.
- Money and quantities are parsed exactly as DECIMAL(38,12) (rounded beyond 12 decimals); a value that does not
  parse is an error naming the file, the row and the column, never a null.
- Timestamps: 'Z', '+00:00' or another offset are converted to UTC; no offset means UTC. BillingPeriodEnd that
  is a date only or ends at 23:59:59 (Azure's inclusive end) becomes the next midnight (FOCUS: exclusive).
- Tags must be a flat JSON object (values string/number/bool/null); a brace-less Azure fragment is wrapped.
- Absent columns: ContractedCost falls back to ListCost and ListCost to ContractedCost; when both are absent
  both equal EffectiveCost (no invented savings). PublisherName and InvoiceIssuerName fall back to ProviderName,
  ServiceCategory to "Other"; ServiceProviderName (1.3) to PublisherName and HostProviderName to ProviderName.
  Any other absent mandatory column is an error unless `defaults` supplies a constant for it.
- x_ExportVersion = "focus-<detected version>;sha256=<first 16 hex of the file>"; the version is the newest
  whose added columns appear (1.2, 1.1), else 1.0-preview when pre-1.0 names appear, else 1.0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path

import duckdb
import polars as pl

from mlcost_pipeline.normalize.focus_export_sql import (  # ADDED_IN, LEGACY_NAMES: re-exported for callers
    ADDED_IN,
    BAD_ROW_MARKER,
    IN_WINDOW,
    LEGACY_NAMES,
    SOURCE,
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

__all__ = ["ADDED_IN", "LEGACY_NAMES", "SOURCE", "billed_totals", "file_days", "insert_focus_export",
           "read_focus_export"]
_CURRENCIES = sorted(ISO_4217)


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _window(start: date, end: date) -> dict[str, object]:
    return {"start": datetime.combine(start, time()), "end": datetime.combine(end, time())}


def describe(cur: duckdb.DuckDBPyConnection, path: str, defaults: Mapping[str, str] | None = None) -> FileSql:
    """The SQL for one file, after checking that it exists and has the mandatory columns."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{SOURCE}: no such file {path}")
    columns = [(r[0], r[1]) for r in cur.execute(
        f"DESCRIBE SELECT * FROM {scan_sql(path)}", {"path": path}).fetchall()]  # noqa: S608
    return file_sql(path, columns, dict(defaults or {}))


def _explain_bad_row(con: duckdb.DuckDBPyConnection, f: FileSql, window: dict[str, object]) -> NormalizationError:
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
            raise _explain_bad_row(con, f, window) from None
        raise


def insert_focus_export(
    con: duckdb.DuckDBPyConnection, table: str, paths: Sequence[str], start: date, end: date,
    ingested_at: datetime, *, defaults: Mapping[str, str] | None = None,
) -> int:
    """Insert the rows of `paths` charged in [start, end) into `table` (core.focus_costs' columns), in SQL.

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
    for path in (str(p) for p in paths):
        f = describe(con, path, defaults)
        sql = (f"INSERT INTO {table} BY NAME SELECT {f.columns}, {f.line_hash} AS x_LineId, "  # noqa: S608
               f"'{SOURCE}' AS x_SourceSystem, CAST(\"ChargePeriodStart\" AS DATE) AS x_ChargeDate, "
               f"$ingested_at AS x_IngestedAt, $export_version AS x_ExportVersion "
               f"FROM {f.relation} WHERE {f.guard()}")
        params = {**f.params, "stem": f.stem, **window, "currencies": _CURRENCIES, "ingested_at": _naive_utc(ingested_at),
                  "export_version": f"focus-{f.version};sha256={file_sha256(path)[:16]}"}
        n += _run_checked(con, f, sql, params, window)[0][0]
    if n:
        suffix_repeated_line_ids(con, table, start, end)
    return n


def suffix_repeated_line_ids(con: duckdb.DuckDBPyConnection, table: str, start: date, end: date) -> int:
    """Append `-<n>` to the n-th repeat of a focus_export x_LineId in the window (n from 1).

    Repeats are ordered by file (x_ExportVersion), then by their values, column by column: the result does not
    depend on the order rows come in (DuckDB's parallel insert need not keep it), only on the rows. Keys rarely
    repeat, so only the repeated ones are ranked.
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
    con: duckdb.DuckDBPyConnection, paths: Sequence[str], start: date, end: date, ingested_at: datetime,
    *, defaults: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Rows of the given FOCUS files charged in [start, end), conformed to core.focus_costs, as a frame.

    The same SQL as the warehouse path, into a temporary table; for tests, `explain` and small reads.
    `defaults` gives constants for text columns a partial file does not carry (e.g. BillingCurrency).
    """
    cur = con.cursor()  # our own session: the temporary table never shows in the caller's connection
    try:
        cur.execute(create_table_sql("_mlc_focus_rows").replace("CREATE TABLE", "CREATE TEMP TABLE"))
        insert_focus_export(cur, "_mlc_focus_rows", paths, start, end, ingested_at, defaults=defaults)
        df = cur.sql("SELECT * FROM _mlc_focus_rows ORDER BY rowid").pl()
    finally:
        cur.close()
    if not df.height:
        return conform(pl.DataFrame(schema=POLARS_SCHEMA), SOURCE)
    return conform(df, SOURCE)


def file_days(
    con: duckdb.DuckDBPyConnection, path: str, start: date, end: date
) -> list[tuple[date, str, str, object, int]]:
    """(day, ProviderName, BillingCurrency, sum(BilledCost), rows) of the file's charges in [start, end).

    Checks every row of the file as the warehouse path does (the error names file, row and field), but parses
    only what it sums and hashes nothing: one scan, no wide rows.
    """
    window = _window(start, end)
    f = describe(con, path)
    sql = (f'SELECT CAST("ChargePeriodStart" AS DATE), "ProviderName", "BillingCurrency", '  # noqa: S608
           f'sum("BilledCost"), count(*) FROM {f.relation} WHERE {f.guard()} GROUP BY ALL ORDER BY ALL')
    return _run_checked(con, f, sql, {**f.params, **window, "currencies": _CURRENCIES}, window)


def billed_totals(
    con: duckdb.DuckDBPyConnection, paths: Sequence[str], start: date, end: date
) -> list[tuple[str, str, object]]:
    """(ProviderName, BillingCurrency, sum(BilledCost)) of the files' charges in [start, end), unchecked.

    For the landing step's "what the provider billed" metadata: it parses only these columns and checks nothing
    (file_days does the checking); a file that cannot be read raises duckdb.Error or NormalizationError.
    """
    out: list[tuple[str, str, object]] = []
    for path in (str(p) for p in paths):
        f = describe(con, path)
        out += con.execute(
            f'SELECT "ProviderName", "BillingCurrency", sum("BilledCost") FROM {f.relation} '  # noqa: S608
            f"WHERE {IN_WINDOW} GROUP BY ALL", {**f.params, **_window(start, end)}).fetchall()
    return out
