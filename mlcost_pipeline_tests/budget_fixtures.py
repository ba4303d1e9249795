"""A small warehouse for the budget tests: allocated cost per project, model and day, with hand-computed answers.

Loaded days are 2026-10-30 .. 2026-11-10 (so November's as-of date is the 10th: 10 days elapsed, 20 remaining,
and the trailing window is 7 days, 11-04 .. 11-10; October's is 2 days, the only ones loaded).
"""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb

from mlcost_pipeline.defs.budgets import build_budget_defs
from mlcost_pipeline.defs.transform.sql_models import build_sql_model_defs
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline_tests.cell_fixtures import insert_pieces

SQL_ROOT = Path(__file__).resolve().parents[1] / "dbt_like_sql"
NOV = [date(2026, 11, d) for d in range(1, 11)]

BUDGETS_YAML = """
currency: USD
budgets:
  - project: a
    monthly: 400
    months: {"2026-11": 300}
  - project: b
    monthly: 1000
  - project: b
    model: m1
    monthly: 12
  - project: c
    monthly: 3
"""


def allocated_rows() -> list[tuple[date, str, str | None, str, str]]:
    """(charge_date, project, model, reporting_currency, amount_reporting)."""
    rows = [(date(2026, 10, 30), "a", None, "USD", "10"), (date(2026, 10, 31), "a", None, "USD", "10")]
    rows += [(d, "a", None, "USD", "24" if d.day == 10 else "10") for d in NOV]
    rows += [
        (date(2026, 11, 5), "a", None, "EUR", "1000")
    ]  # another reporting currency: never in a USD budget
    rows += [(d, "b", "m1", "USD", "1") for d in NOV]
    rows += [(d, "b", "m2", "USD", "5") for d in NOV]
    rows += [(date(2026, 11, 2), "b", None, "USD", "100")]
    rows += [(date(2026, 11, 10), "c", None, "USD", "1")]
    rows += [(d, "nobody-budgets-me", None, "USD", "999") for d in NOV]
    return rows


def insert_allocated(con: duckdb.DuckDBPyConnection, rows) -> None:
    insert_pieces(con, [
        {"x_LineId": f"L{i}-{d}-{p}", "charge_date": d, "billing_currency": cur, "amount": amount,
         "reporting_currency": cur, "amount_reporting": amount, "project": p, "model": m, "method": "tag"}
        for i, (d, p, m, cur, amount) in enumerate(rows)
    ])


def make_warehouse(folder: Path, rows=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA core")
    insert_allocated(con, allocated_rows() if rows is None else rows)
    con.close()
    (folder / "budgets.yaml").write_text(BUDGETS_YAML)
    return path


def budget_job_defs(warehouse: Path, budgets: Path, env: dict[str, str] | None = None):
    """The budgets feature alone: core.budgets, marts.budget_status (the real SQL file), marts.budget_alerts."""
    settings = load_settings(
        {"MLCOST_WAREHOUSE_PATH": str(warehouse), "MLCOST_BUDGETS": str(budgets), **(env or {})}
    )
    assets, checks, resources = build_budget_defs(settings)
    # Only the budget model, so the other marts' inputs need not exist here.
    root = warehouse.parent / "sql"
    (root / "marts").mkdir(parents=True, exist_ok=True)
    shutil.copy(SQL_ROOT / "marts" / "budget_status.sql", root / "marts" / "budget_status.sql")
    sql_assets, _ = build_sql_model_defs(root, {("core", "allocated_cells"): dg.AssetKey(["core", "allocated_costs"]),
                                                ("core", "budgets"): dg.AssetKey(["core", "budgets"])})
    return [*assets, *sql_assets, *checks, dg.AssetSpec(["core", "allocated_costs"])], {
        "warehouse": WarehouseResource(path=str(warehouse)),
        **resources,
    }


def run_budgets(
    warehouse: Path,
    budgets: Path,
    env: dict[str, str] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    defs, resources = budget_job_defs(warehouse, budgets, env)
    result = dg.materialize(defs, resources=resources, raise_on_error=False, instance=instance)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def query(path: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()


def D(x: str) -> Decimal:
    return Decimal(x)
