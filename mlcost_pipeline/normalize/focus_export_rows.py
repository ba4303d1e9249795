"""The SELECT that gives one export file's core.focus_costs rows, and its form with every parameter written in.

Source: one file's FileSql (focus_export_sql: the parsed, checked relation). Grain: one row per converted row the
caller's WHERE keeps. Key: x_LineId = `$file_id-<row>`, and `-<n>` on the n-th repeat when one source row gave
several charges (a CUR fee with unused commitment), n from 1 in the order of the rows' values, column by column:
the same rows give the same ids whatever order DuckDB produces them in. The repeat rank is computed in the SELECT
(a window over the source row), so the rows can be inserted (focus_export.insert_focus_export) or read through a
view (warehouse/focus_view.py) with the same ids; a FOCUS file gives one row per source row and skips the window.
The view reads the files of one layout in one scan (group_scan_sql) and keeps each file's days by a join
(keyed_select).

`inline` writes bound values into the SQL text for the view, which cannot take parameters: it replaces `$name`
outside quoted strings and identifiers with a typed SQL literal of the value (strings quoted, dates and timestamps
typed, lists of them), and refuses a name it was not given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime

from mlcost_pipeline.normalize.focus_export_sql import SOURCE, TARGETS, FileSql
from mlcost_pipeline.normalize.focus_schema import FOCUS_COLUMNS

COMPUTED = {
    "x_LineId": None, "x_SourceSystem": f"'{SOURCE}'", "x_ChargeDate": 'CAST("ChargePeriodStart" AS DATE)',
    "x_IngestedAt": None, "x_ExportVersion": None,
}  # fmt: skip
# Files read together (group_scan_sql): __row = <the file's index in $paths> * ROW_SPAN + its 1-based row, so
# converters, which pass __row through, keep both; a file has fewer rows than this.
ROW_SPAN = 1 << 40
_NULLS = "['', 'null', 'NULL']"


def group_scan_sql(parquet: bool) -> str:
    """Files of one layout read in one scan: their own columns and `__row` (above); binds $paths.

    A CSV scan has no per-file row number: the rows' position in the scan (files in order, each file's rows in
    order, as a single file's row_number() relies on) minus the file's first position gives it.
    """
    index = f"(list_position($paths, __mlc_file) - 1) * {ROW_SPAN}"
    if parquet:
        return (f"(SELECT * EXCLUDE (file_row_number, __mlc_file), {index} + file_row_number + 1 AS __row "
                "FROM read_parquet($paths, file_row_number = true, filename = '__mlc_file'))")
    return (f"(SELECT * EXCLUDE (__mlc_file, __mlc_n), {index} + __mlc_n - min(__mlc_n) OVER (PARTITION BY __mlc_file) "
            f"+ 1 AS __row FROM (SELECT *, row_number() OVER () AS __mlc_n FROM read_csv($paths, all_varchar = true, "
            f"header = true, nullstr = {_NULLS}, filename = '__mlc_file')))")


# The repeat order: the old UPDATE ranked a window's repeats by these values (then by rowid: identical rows).
_ORDER = ", ".join(f'"{c}"' for c in ("x_ExportVersion", *TARGETS))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def may_repeat(f: FileSql) -> bool:
    """A converted dataset may give several charges per source row; a FOCUS file gives one per row."""
    return not f.version.startswith("focus-")


def rows_select(f: FileSql, where: str, ingested_at: str, export_version: str) -> str:
    """SELECT of core.focus_costs' columns (its order and types) for the rows of `f` that `where` keeps.

    `where` is SQL over f.relation; `ingested_at` and `export_version` are SQL expressions (a parameter or a
    literal). The line id binds $file_id.
    """
    computed = {**COMPUTED, "x_LineId": f.line_id, "x_IngestedAt": ingested_at, "x_ExportVersion": export_version}
    extra = ", ".join(f"{e} AS {_q(c)}" for c, e in computed.items())
    return _finish(f, f"SELECT {f.columns}, {extra}, __row FROM {f.relation} WHERE {where}")  # noqa: S608


def keyed_select(f: FileSql, keys: str) -> str:
    """Like rows_select for a relation over files read together (focus_export_sql.group_scan_sql), keeping the
    rows whose file and day `keys` lists.

    `keys` is a relation with one row per (__file: the file's index in the scan, x_ChargeDate) that counts, and
    that file's file_id, export_version and the day's x_IngestedAt.
    """
    line_id = f"k.file_id || '-' || CAST(r.__row % {ROW_SPAN} AS VARCHAR)"
    computed = {**COMPUTED, "x_LineId": line_id, "x_ChargeDate": "k.x_ChargeDate", "x_IngestedAt": "k.x_IngestedAt",
                "x_ExportVersion": "k.export_version"}  # fmt: skip
    extra = ", ".join(f"{e} AS {_q(c)}" for c, e in computed.items())
    rows = (f"SELECT {f.columns}, {extra}, r.__row FROM {f.relation} AS r JOIN {keys} AS k "  # noqa: S608
            f'ON k.__file = r.__row // {ROW_SPAN} AND k.x_ChargeDate = CAST(r."ChargePeriodStart" AS DATE)')
    return _finish(f, rows)


def _finish(f: FileSql, rows: str) -> str:
    """The repeat suffix (converted datasets only), then the contract's columns, order and types."""
    if may_repeat(f):
        ranked = f"SELECT *, row_number() OVER (PARTITION BY __row ORDER BY {_ORDER}) - 1 AS __n FROM ({rows})"  # noqa: S608
        rows = (f"SELECT * REPLACE (CASE WHEN __n = 0 THEN x_LineId "  # noqa: S608
                f"ELSE x_LineId || '-' || CAST(__n AS VARCHAR) END AS x_LineId) FROM ({ranked})")
    produced = {*TARGETS, *COMPUTED}
    cols = ", ".join(f"CAST({_q(c) if c in produced else 'NULL'} AS {t}) AS {_q(c)}" for c, t in FOCUS_COLUMNS)
    return f"SELECT {cols} FROM ({rows})"  # noqa: S608


def sql_literal(value: object) -> str:
    """A typed SQL literal for a value the readers bind: text, a day, a timestamp, a number, a list of those."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(f"a timestamp in the view must be naive UTC, not {value!r}")
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, list | tuple):
        kinds = {type(v) for v in value}
        element = ("DATE" if kinds <= {date} else "TIMESTAMP" if kinds <= {datetime} else
                   "BIGINT" if kinds <= {int} else "VARCHAR" if kinds <= {str} else None)  # fmt: skip
        if element is None:
            raise TypeError(f"cannot write a list of {sorted(k.__name__ for k in kinds)} as a SQL literal")
        return f"CAST([{', '.join(sql_literal(v) for v in value)}] AS {element}[])"
    raise TypeError(f"cannot write a {type(value).__name__} as a SQL literal")


# A quoted string or identifier (kept as it is), or a parameter.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$([A-Za-z_][A-Za-z0-9_]*)")


def inline(sql: str, params: Mapping[str, object]) -> str:
    """`sql` with each `$name` outside quotes replaced by the literal of params[name]."""

    def value(m: re.Match) -> str:
        name = m.group(1)
        if name is None:
            return m.group(0)
        if name not in params:
            raise KeyError(f"the SQL binds ${name}, which was not given")
        return sql_literal(params[name])

    return _TOKEN.sub(value, sql)
