"""core.budgets: the budgets file as a table, so marts.budget_status (SQL) can join it.

Grain: one row per budget default (month NULL) and per month override. Rewritten whole from the file each time.
"""

from __future__ import annotations

import duckdb

from mlcost_pipeline.budgets.config import LoadedBudgets

BUDGETS_TABLE = "core.budgets"
BUDGETS_COLUMNS: list[tuple[str, str]] = [
    ("budget_id", "VARCHAR NOT NULL"),
    ("project", "VARCHAR NOT NULL"),
    ("model", "VARCHAR"),  # NULL: every model of the project (and its cost with no model)
    ("month", "DATE"),  # NULL: the default for every month; else the 1st of the month it overrides
    ("amount", "DECIMAL(38, 12) NOT NULL"),  # per calendar month, in `currency`
    ("currency", "VARCHAR NOT NULL"),
    ("warn_pct", "DECIMAL(9, 4) NOT NULL"),
    ("error_pct", "DECIMAL(9, 4) NOT NULL"),
    ("source_file", "VARCHAR NOT NULL"),
    ("source_sha256", "VARCHAR NOT NULL"),
]


def write_budgets(con: duckdb.DuckDBPyConnection, loaded: LoadedBudgets) -> int:
    """Replace core.budgets with the file's rows, in one transaction; returns the row count."""
    rows = [
        [r.budget_id, r.project, r.model, r.month, r.amount, r.currency, r.warn_pct, r.error_pct,
         loaded.source, loaded.sha256]
        for r in loaded.rows()
    ]  # fmt: skip
    cols = ", ".join(f'"{c}" {t}' for c, t in BUDGETS_COLUMNS)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS core")
        con.execute(f"CREATE OR REPLACE TABLE {BUDGETS_TABLE} ({cols})")
        if rows:
            marks = ", ".join("?" for _ in BUDGETS_COLUMNS)
            con.executemany(f"INSERT INTO {BUDGETS_TABLE} VALUES ({marks})", rows)  # noqa: S608 (constant name)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(rows)
