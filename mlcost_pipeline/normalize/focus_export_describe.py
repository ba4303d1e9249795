"""One export file's SQL, after the checks that need no scan: that it exists, its dataset, its FOCUS columns.

Source: a file (or Parquet files of one layout read together) and what the export's layout decided about it
(ExportRead). Grain: one FileSql per file. The reading rules are documented in focus_export.py; the SQL is
focus_export_sql.py's. Also here: turning a failed row check into the error that names file, row and field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path

import duckdb

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.export_converters import classify_azure, convert, detect_dataset
from mlcost_pipeline.normalize.export_datasets import ConvertOptions
from mlcost_pipeline.normalize.focus_export_rows import group_scan_sql
from mlcost_pipeline.normalize.focus_export_sql import (
    BAD_ROW_MARKER,
    IN_WINDOW,
    SOURCE,
    STRICT_COLUMNS,
    FileSql,
    file_sql,
    is_parquet,
    scan_sql,
)
from mlcost_pipeline.normalize.focus_schema import NormalizationError
from mlcost_pipeline.sources.currencies import ISO_4217

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
    strict: frozenset[str] = STRICT, *, group: Sequence[str] | None = None,
) -> FileSql:
    """The SQL for one file, after checking that it exists, which dataset it is and that it has what FOCUS needs.

    With `group` (files of the same format and columns as `read`, in order, `read` first), the SQL reads them all in
    one scan (focus_export_sql.group_scan_sql: `__row` carries the file's index) and binds $paths.
    """
    read = as_read(read)
    path = read.path
    for p in group or (path,):
        if not Path(p).is_file():
            raise FileNotFoundError(f"{SOURCE}: no such file {p}")
    scan, bound = ((group_scan_sql(is_parquet(path)), {"paths": list(group)}) if group else
                   (scan_sql(path), {"path": path}))  # fmt: skip
    columns = _columns(cur, scan, bound)
    dataset = read.dataset or detect_dataset([c for c, _ in columns])
    warnings: list[str] = []
    if dataset == ds.AZURE_COST_DETAILS:
        kind, reason = classify_azure(cur, scan, columns, bound)
        if kind is None:  # no commitment rows: the actual and the amortized export are the same rows
            warnings.append(f"{SOURCE}: file {path}: cannot tell an actual from an amortized cost export "
                            f"({reason}); read as actual cost")
        dataset = kind or ds.AZURE_ACTUAL
    if dataset == ds.FOCUS:
        f = file_sql(path, columns, dict(defaults or {}), strict=strict, source=scan if group else None,
                     params=bound if group else None)  # fmt: skip
    else:
        converted = convert(dataset, scan, columns, read.options)
        source = f"({converted.sql})"
        f = file_sql(path, _columns(cur, source, {**bound, **converted.params}), dict(defaults or {}),
                     source=source, params={**(bound if group else {}), **converted.params}, strict=strict,
                     dataset=dataset, source_of=converted.source_of)  # fmt: skip
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
