"""The allocation's tables and its per-line view, created or migrated in one place.

`core.cost_cells` and `core.allocated_cells` are tables (cells_schema.py); `core.allocated_costs` is a view over
them and core.focus_costs (sql/allocated_costs_view.sql). A warehouse written before cells has a
core.allocated_costs TABLE: it is dropped and replaced by the view, and its days read empty until the allocation
runs on them again (`mlcost materialize` over the range; docs/architecture.md, "Migrating a kept warehouse").
"""

from __future__ import annotations

import duckdb

from mlcost_pipeline.allocation.cells_schema import ensure_cell_tables
from mlcost_pipeline.allocation.plan import line_view_statement


def _table_type(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> str | None:
    rows = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = $s AND table_name = $n",
        {"s": schema, "n": name},
    ).fetchall()
    return rows[0][0] if rows else None


def ensure_allocation_tables(
    con: duckdb.DuckDBPyConnection, schema: str = "core", focus: str = "core.focus_costs"
) -> None:
    """The cell tables and the view `<schema>.allocated_costs` over `focus` (which must exist)."""
    ensure_cell_tables(con, schema)
    if _table_type(con, schema, "allocated_costs") == "BASE TABLE":
        con.execute(f"DROP TABLE {schema}.allocated_costs")
    con.execute(line_view_statement(schema, focus).sql)


def copy_line_view(con: duckdb.DuckDBPyConnection, tables: dict[str, int]) -> None:
    """In a copy of the warehouse (the BI snapshot, its catalog in use): the view core.allocated_costs over the
    copied cell tables and the copy's core.focus_costs, counted in `tables` without evaluating it: every line of a
    cell gets every piece of the cell, so the view has sum(line_count) over the pieces rows."""
    if "core.allocated_cells" not in tables or "core.cost_cells" not in tables:
        return
    con.execute(line_view_statement("core", "core.focus_costs").sql)
    rows = con.execute("SELECT coalesce(sum(line_count), 0) FROM core.allocated_cells").fetchall()[0][0]
    tables["core.allocated_costs"] = int(rows)
