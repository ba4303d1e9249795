"""The `warehouse` resource: where the DuckDB file lives, and the only way assets open it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from mlcost_pipeline.warehouse.connection import read_connection, write_connection
from mlcost_pipeline.warehouse.schema import ensure_schema


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (MLCOST_WAREHOUSE_PATH). Writes are serialized across processes."""

    path: str

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with write_connection(self.path) as con:
            ensure_schema(con)
            yield con

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with read_connection(self.path) as con:
            yield con
