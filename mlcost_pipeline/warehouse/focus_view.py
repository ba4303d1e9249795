"""core.focus_costs: a view that normalizes the landed export files on read, over the narrow table of API rows.

Source: core.focus_api_costs (the API sources' normalized rows: Cost Explorer, Azure query, BigQuery; replaced per
window by normalize/build_focus_costs.py) and core.focus_export_reads (one row per UTC day and landed file: the
catalog raw.focus_export_files as the last successful core.focus_costs build of that day read and checked it,
with the x_IngestedAt it gave the day's rows). Grain: one row per charge and UTC day (x_ChargeDate); key
x_LineId. Columns, types and values are those of the table core.focus_costs was, row for row.

The view is `SELECT * FROM core.focus_api_costs` UNION ALL BY NAME one SELECT per layout of landed files (format,
dataset, columns, Azure pairing: files of one layout are scanned together, focus_export_rows.keyed_select: the
reader's SQL, FOCUS names, money as DECIMAL(38,12), the x_ columns), joined to the reads table so that each file
keeps the rows charged on the days listed for it, with that day's x_IngestedAt. A view takes no parameters, so
the paths (absolute: the lake copies), file ids and the converters' options are written into the view text as
literals (focus_export_rows.inline); a BI user or a check opening the warehouse file from any working directory
reads the same rows. `refresh_focus_view` recreates it from the reads table, inside the caller's transaction: a
window that fails leaves the previous view. A lake file that is gone fails the refresh, naming it (rerun the
landing of its days).

A warehouse written before the view holds core.focus_costs as a TABLE: `ensure_focus_tables` moves its API rows
to core.focus_api_costs, rebuilds the reads of the days it held export rows for from the catalog (files that are
no longer on disk are left out: rerun those days), drops the table and creates the view, in one transaction.
"""

# ruff: noqa: S608
# Identifiers are this module's constants; values in the view text are literals from focus_export_rows.inline.

from __future__ import annotations

import warnings
from datetime import date, datetime
from pathlib import Path

import duckdb

from mlcost_pipeline.normalize.export_datasets import ConvertOptions
from mlcost_pipeline.normalize.focus_export import ExportRead, describe
from mlcost_pipeline.normalize.focus_export_rows import inline, keyed_select, sql_literal
from mlcost_pipeline.normalize.focus_export_sql import SOURCE, file_sha256, is_parquet, scan_sql
from mlcost_pipeline.normalize.focus_schema import create_table_sql
from mlcost_pipeline.warehouse.raw_landing import FOCUS_MANIFEST_TABLE

VIEW = "core.focus_costs"
API_TABLE = "core.focus_api_costs"
READS_TABLE = "core.focus_export_reads"
READS_COLUMNS = [
    ("x_ChargeDate", "DATE"),
    ("path", "VARCHAR"),  # absolute: the lake copy the catalog names
    ("sha256", "VARCHAR"),
    ("dataset", "VARCHAR"),  # export_datasets kind (None: detected from the file's columns)
    ("paired", "BOOLEAN"),  # Azure actual cost read beside its amortized export that day
    ("x_IngestedAt", "TIMESTAMP"),  # what the day's rows carry: the window's latest catalog x_FetchedAt
]


def _kind(con: duckdb.DuckDBPyConnection, qualified: str) -> str | None:
    schema, name = qualified.split(".")
    rows = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = $s AND table_name = $n", {"s": schema, "n": name},
    ).fetchall()  # fmt: skip
    return rows[0][0] if rows else None


def ensure_focus_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The API table, the reads table and the view (created once; an older core.focus_costs TABLE migrated)."""
    cols = ", ".join(f'"{c}" {t}' for c, t in READS_COLUMNS)
    con.execute(create_table_sql(API_TABLE))
    con.execute(f"CREATE TABLE IF NOT EXISTS {READS_TABLE} ({cols})")
    kind = _kind(con, VIEW)
    if kind == "VIEW":
        return
    if kind is None:
        refresh_focus_view(con)
        return
    con.execute("BEGIN TRANSACTION")
    try:
        _migrate_table(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _migrate_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"INSERT INTO {API_TABLE} BY NAME SELECT * FROM {VIEW} WHERE x_SourceSystem IS DISTINCT FROM $s",
                {"s": SOURCE})  # fmt: skip
    con.execute(
        f"INSERT INTO {READS_TABLE} SELECT DISTINCT m.x_ChargeDate, m.path, m.sha256, m.dataset, "
        f"coalesce(m.paired, false), d.ingested FROM {FOCUS_MANIFEST_TABLE} AS m JOIN ("
        f"SELECT x_ChargeDate, max(x_IngestedAt) AS ingested FROM {VIEW} WHERE x_SourceSystem = $s GROUP BY 1"
        ") AS d USING (x_ChargeDate)", {"s": SOURCE},
    )  # fmt: skip
    paths = [p for (p,) in con.execute(f"SELECT DISTINCT path FROM {READS_TABLE}").fetchall()]
    gone = [p for p in paths if not Path(p).is_file()]
    if gone:
        days = con.execute(f"SELECT list(DISTINCT x_ChargeDate ORDER BY x_ChargeDate) FROM {READS_TABLE} "
                           "WHERE list_contains($gone, path)", {"gone": gone}).fetchall()[0][0]  # fmt: skip
        con.execute(f"DELETE FROM {READS_TABLE} WHERE list_contains($gone, path)", {"gone": gone})
        warnings.warn(f"{VIEW}: {len(gone)} landed file(s) are no longer on disk (first {gone[0]}); the export "
                      f"rows of {', '.join(map(str, days))} read empty until those days are landed again",
                      stacklevel=3)  # fmt: skip
    con.execute(f"DROP TABLE {VIEW}")
    refresh_focus_view(con)


def replace_reads(
    con: duckdb.DuckDBPyConnection, start: date, end: date, reads: list[ExportRead], sha256: dict[str, str | None],
    ingested_at: datetime,
) -> None:
    """Replace [start, end) of the reads table with `reads` (inside the caller's transaction)."""
    con.execute(f"DELETE FROM {READS_TABLE} WHERE x_ChargeDate >= $start AND x_ChargeDate < $end",
                {"start": start, "end": end})  # fmt: skip
    rows = []
    for r in reads:
        path = str(Path(r.path).resolve())  # the writer's working directory, as the insert read it
        paired = set(r.options.paired_days)
        rows += [(day, path, sha256.get(r.path) or file_sha256(path), r.dataset, day in paired, ingested_at)
                 for day in r.days or ()]  # fmt: skip
    if rows:
        con.executemany(f"INSERT INTO {READS_TABLE} VALUES (?, ?, ?, ?, ?, ?)", rows)


def _layout(con: duckdb.DuckDBPyConnection, path: str, dataset: str | None, paired: tuple[date, ...]) -> tuple:
    """Files of one layout are read together: the same format, dataset, columns and pairing. A file whose dataset
    is still to be detected (a catalog row from before datasets were recorded) is read alone."""
    if dataset is None:
        return ("file", path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{SOURCE}: no such file {path}")
    columns = con.execute(f"DESCRIBE SELECT * FROM {scan_sql(path)}", {"path": path}).fetchall()
    return (is_parquet(path), dataset, tuple((c[0], c[1]) for c in columns), paired)


def _group_select(con: duckdb.DuckDBPyConnection, files: list[tuple[str, str, str | None, tuple[date, ...]]]) -> str:
    """One SELECT over files of one layout, keeping each file's rows of the days the reads table lists for it."""
    path, _, dataset, paired = files[0]
    read = ExportRead(path, dataset, options=ConvertOptions(paired_days=paired))
    paths = [p for p, *_ in files]
    f = describe(con, read, group=paths if dataset is not None else None)
    ids = ", ".join(f"({i}, {sql_literal(p)}, {sql_literal(sha[:16])}, {sql_literal(f'{f.version};sha256={sha[:16]}')})"
                    for i, (p, sha, *_) in enumerate(files))  # fmt: skip
    keys = (f"(SELECT g.__file, k.x_ChargeDate, k.x_IngestedAt, g.file_id, g.export_version "
            f"FROM (VALUES {ids}) AS g(__file, path, file_id, export_version) "
            f"JOIN {READS_TABLE} AS k ON k.path = g.path)")
    return inline(keyed_select(f, keys), f.params)


def view_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The view's SELECT, from the reads table as it stands."""
    rows = con.execute(
        f"SELECT path, any_value(sha256), any_value(dataset), "
        f"list(x_ChargeDate ORDER BY x_ChargeDate) FILTER (WHERE paired) FROM {READS_TABLE} GROUP BY path ORDER BY path"
    ).fetchall()
    groups: dict[tuple, list[tuple[str, str, str | None, tuple[date, ...]]]] = {}
    for path, sha, dataset, paired in rows:
        on = tuple(paired or ())
        groups.setdefault(_layout(con, path, dataset, on), []).append((path, sha or file_sha256(path), dataset, on))
    parts = [f"SELECT * FROM {API_TABLE}", *(_group_select(con, files) for files in groups.values())]
    return "\nUNION ALL BY NAME\n".join(f"({p})" for p in parts)


def refresh_focus_view(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create core.focus_costs from the reads table (in the caller's transaction, if any)."""
    con.execute(f"CREATE OR REPLACE VIEW {VIEW} AS\n{view_sql(con)}")
