"""The warehouse layout: schemas raw, core and marts, and the tables Python assets write.

Tables built from dbt_like_sql/ are created by the SQL runner; the tables here are the contracts in DESIGN.md §3.
"""

from __future__ import annotations

import duckdb

from mlcost_pipeline.allocation.tables import ensure_allocation_tables
from mlcost_pipeline.normalize import mlflow_records
from mlcost_pipeline.warehouse.focus_view import ensure_focus_tables
from mlcost_pipeline.warehouse.raw_landing import (
    FOCUS_MANIFEST_COLUMNS,
    FOCUS_MANIFEST_TABLE,
    FOCUS_QUALITY_COLUMNS,
    FOCUS_QUALITY_TABLE,
    RAW_COLUMNS,
    RAW_TABLES,
)

SCHEMAS = ("raw", "core", "marts")


def _ddl(table: str, columns: list[tuple[str, str]]) -> str:
    cols = ", ".join(f'"{c}" {t}' for c, t in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for table in RAW_TABLES:
        con.execute(_ddl(table, RAW_COLUMNS))
    con.execute(_ddl("raw.mlflow_model_versions", [c for c in RAW_COLUMNS if c[0] != "x_ChargeDate"]))
    con.execute(_ddl(FOCUS_MANIFEST_TABLE, FOCUS_MANIFEST_COLUMNS))
    for name, sql_type in FOCUS_MANIFEST_COLUMNS:  # a warehouse written before a column was added
        con.execute(f'ALTER TABLE {FOCUS_MANIFEST_TABLE} ADD COLUMN IF NOT EXISTS "{name}" {sql_type}')
    con.execute(_ddl(FOCUS_QUALITY_TABLE, FOCUS_QUALITY_COLUMNS))
    ensure_focus_tables(con)  # core.focus_api_costs, core.focus_export_reads, the view core.focus_costs
    ensure_allocation_tables(con)  # core.cost_cells, core.allocated_cells, the view core.allocated_costs
    con.execute(mlflow_records.ml_runs_create_table_sql("core.ml_runs"))
    con.execute(mlflow_records.ml_model_versions_create_table_sql("core.ml_model_versions"))
