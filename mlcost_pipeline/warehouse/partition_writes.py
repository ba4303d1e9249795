"""Idempotent partition writes: a window of a table is replaced whole, in one transaction, or not at all."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from mlcost_pipeline.warehouse.connection import checked_identifier


class PartitionWriteError(RuntimeError):
    pass


FAULT_PAUSE_ENV = "MLCOST_FAULT_PAUSE_IN_WRITE"


def _fault_pause(table: str) -> None:
    """Fault-injection hook for tests (docs/reliability.md): `<table>:<file>` holds the write open before COMMIT.

    The process touches `<file>` and sleeps, so a test can kill -9 it with the delete and insert done but not
    committed. Unset (always, outside that test) it does nothing.
    """
    spec = os.environ.get(FAULT_PAUSE_ENV)
    if spec and spec.partition(":")[0] == table:
        Path(spec.partition(":")[2]).touch()
        time.sleep(300)


def replace_window(
    con: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    start: date,
    end: date,
    rows: pl.DataFrame | pa.Table,
) -> int:
    """Delete `[start, end)` of `table` and insert `rows` (all of which must fall in the window) atomically.

    A row outside the window would survive the next rerun's delete and be counted twice, so it is refused.
    """
    table = checked_identifier(table)
    column = checked_identifier(date_column)
    frame = rows if isinstance(rows, pl.DataFrame) else pl.from_arrow(rows)
    if frame.height:
        outside = frame.filter((pl.col(column) < start) | (pl.col(column) >= end) | pl.col(column).is_null())
        if outside.height:
            raise PartitionWriteError(
                f"{table}: {outside.height} row(s) have {column} outside [{start}, {end}), "
                f"first {outside[column][0]}"
            )

    def insert(c: duckdb.DuckDBPyConnection) -> int:
        if frame.height:
            c.register("_incoming", frame.to_arrow())
            try:
                c.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming")
            finally:
                c.unregister("_incoming")
        return frame.height

    return replace_window_with(con, table, column, start, end, insert)


def replace_window_with(
    con: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    start: date,
    end: date,
    fill: Callable[[duckdb.DuckDBPyConnection], int],
) -> int:
    """Delete `[start, end)` of `table`, then let `fill` insert the window's rows, in one transaction.

    For writers that insert in SQL (INSERT ... SELECT from files or other tables) so that no rows pass through
    Python. `fill` returns how many rows it inserted; they must all fall in the window: after the delete the
    window holds only them, so fewer rows in the window than inserted means some fell outside, and that is
    refused. Any error rolls back: the previous rows of the window stay.
    """
    with window_transaction(con):
        return _replace(con, table, date_column, start, end, lambda: fill(con))


def replace_window_sql(
    con: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    start: date,
    end: date,
    select_sql: str,
    params: dict[str, object] | None = None,
) -> int:
    """Like `replace_window`, for rows produced by a SELECT inside DuckDB (no round trip through Python)."""
    with window_transaction(con):
        return replace_in_transaction(con, table, date_column, start, end, select_sql, params)


@contextmanager
def window_transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction around one or several windows' replacements: all of them or none."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def replace_in_transaction(
    con: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    start: date,
    end: date,
    select_sql: str,
    params: dict[str, object] | None = None,
) -> int:
    """Delete `[start, end)` of `table` and insert the SELECT's rows, inside the caller's window_transaction.

    Returns the rows inserted; refuses (so the caller's transaction rolls back) rows outside the window.
    """
    bound = {"start": start, "end": end, **(params or {})}
    return _replace(con, table, date_column, start, end,
                    lambda: con.execute(f"INSERT INTO {table} BY NAME {select_sql}", bound).fetchall()[0][0])


def _replace(
    con: duckdb.DuckDBPyConnection, table: str, date_column: str, start: date, end: date, insert: Callable[[], int]
) -> int:
    table = checked_identifier(table)
    column = checked_identifier(date_column)
    window = {"start": start, "end": end}
    con.execute(f'DELETE FROM {table} WHERE "{column}" >= $start AND "{column}" < $end', window)
    n = insert()
    inside = con.execute(
        f'SELECT count(*) FROM {table} WHERE "{column}" >= $start AND "{column}" < $end', window
    ).fetchall()[0][0]
    if inside != n:
        raise PartitionWriteError(f"{table}: {n - inside} row(s) have {column} outside [{start}, {end})")
    _fault_pause(table)
    return n
