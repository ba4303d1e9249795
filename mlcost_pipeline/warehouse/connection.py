"""Opening the DuckDB warehouse: one writer at a time across processes, readers never wait for a lock file.

DuckDB lets one process hold a file read-write. Dagster may run steps in several processes (multiprocess
executor, a backfill next to the schedule), so every write takes an exclusive `flock` on `<file>.lock` first and
waits its turn instead of failing on DuckDB's own lock.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def checked_identifier(name: str) -> str:
    """Table names cannot be bound as parameters, so only plain `schema.table` identifiers are let through."""
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


MEMORY_LIMIT_ENV = "MLCOST_DUCKDB_MEMORY_LIMIT"


def _config() -> dict[str, str]:
    """DuckDB's memory cap for the writer (e.g. `1.5GB`): beyond it DuckDB works out of core in `<file>.tmp/`.

    Unset, DuckDB takes 80% of RAM and keeps what it wrote cached up to that, so a large backfill's resident
    memory grows with the data (bench/: about 10 GB at 10M FOCUS rows); set, the peak stays near the cap.
    """
    limit = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    return {"memory_limit": limit} if limit else {}


@contextmanager
def write_connection(path: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            con = duckdb.connect(str(path), config=_config())
            try:
                yield con
            finally:
                con.close()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def read_connection(path: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        yield con
    finally:
        con.close()
