"""Idempotent partition writes: a window of a table is replaced whole, in one transaction, or not at all."""

from __future__ import annotations

import os
import time
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
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f'DELETE FROM {table} WHERE "{column}" >= $start AND "{column}" < $end', {"start": start, "end": end})
        if frame.height:
            con.register("_incoming", frame.to_arrow())
            try:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming")
            finally:
                con.unregister("_incoming")
        _fault_pause(table)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return frame.height


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
    table = checked_identifier(table)
    column = checked_identifier(date_column)
    bound = {"start": start, "end": end, **(params or {})}
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f'DELETE FROM {table} WHERE "{column}" >= $start AND "{column}" < $end', {"start": start, "end": end})
        con.execute(f"INSERT INTO {table} BY NAME {select_sql}", bound)
        stray = con.execute(
            f'SELECT count(*) FROM {table} WHERE "{column}" IS NULL', {}
        ).fetchall()[0][0]
        if stray:
            raise PartitionWriteError(f"{table}: {stray} row(s) with a null {column}")
        n = con.execute(
            f'SELECT count(*) FROM {table} WHERE "{column}" >= $start AND "{column}" < $end',
            {"start": start, "end": end},
        ).fetchall()[0][0]
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return n
