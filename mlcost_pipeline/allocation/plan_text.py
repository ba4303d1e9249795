"""`mlcost sql`: the plan of a rules file as text, the statements in execution order with what each binds.

Each statement has a header comment (its number, name and purpose, then `binds:` with every parameter and its
value as a SQL literal; `$start`/`$end` are the window). The frames the statements read are listed first: the
rules' own as rows, the window's by how they are made. The rules hold no secrets, so every value is shown.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import polars as pl

from mlcost_pipeline.allocation.plan import AllocationPlan, Statement

_WINDOW_FRAMES = {
    "_mlc_fx": "per (day, billing currency) of the window, the rates file's rate ('fx needs' and the file)",
    "_mlc_driver_usage": "per (driver, day, project, model), the table drivers' quantities (CSV rows, "
    "'driver' statements), project and model normalized like tags",
    "_mlc_rate_fx": "per day of the window, the rate converting the run rate card to the reporting currency",
}


def literal(value: object) -> str:
    """A value as DuckDB would read it in SQL text (for display only: values are always bound)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return "'" + str(value).replace("'", "''") + "'"


def _comment(text: str) -> list[str]:
    return [f"-- {line}".rstrip() for line in text.splitlines()]


def _frame(name: str, frame: pl.DataFrame) -> list[str]:
    lines = [f"--   {name} ({', '.join(frame.columns)}): {frame.height} row(s)"]
    lines += [f"--     {json.dumps(row, default=str)}" for row in frame.to_dicts()]
    return lines


def _statement(number: int, s: Statement) -> list[str]:
    lines = [f"-- [{number}] {s.name}: {s.title}"]
    binds = (["$start, $end: the window [start, end)"] if s.window else []) + [
        f"${k} = {literal(v)}" for k, v in s.params.items()
    ]
    lines += [f"-- {'binds:' if i == 0 else '      '} {b}" for i, b in enumerate(binds)] or [
        "-- binds: nothing"
    ]
    sql = f"INSERT INTO {s.insert_into} BY NAME\n{s.sql}" if s.insert_into else s.sql
    return [*lines, sql.rstrip().rstrip(";") + ";", ""]


def plan_text(plan: AllocationPlan) -> str:
    """The whole listing: frames, the allocation's statements (cells, pieces, the view), then core.ml_run_costs'."""
    lines = _comment(
        "mlcost sql: what the allocation runs for one window of days, in execution order.\n"
        f"rules sha256 {plan.rules_sha256}; reporting currency {plan.reporting}.\n"
        "Rendered once per rules file and reporting currency from mlcost_pipeline/allocation/sql/*.sql;\n"
        "each window binds $start/$end and registers the frames below."
    )
    lines += ["--", "-- Frames from the rules:"]
    for name, frame in {**plan.frames, **plan.run_cost_frames}.items():
        lines += _frame(name, frame)
    lines.append("-- Frames computed per window:")
    lines += [f"--   {name}: {what}" for name, what in _WINDOW_FRAMES.items()]
    lines += ["", "-- ========== core.cost_cells, core.allocated_cells (allocation.engine.allocate_window) ==========",
              "-- Stages 0 to 2 run in one transaction; each INSERT follows a DELETE of its table's window.",
              "-- core.allocated_costs is the view of the last statement (created before the transaction).", ""]
    statements = plan.allocation_statements()
    for number, statement in enumerate(statements, start=1):
        lines += _statement(number, statement)
    lines += ["-- ========== core.ml_run_costs (allocation.run_costs.cost_runs_window) ==========",
              "-- After [1] macros (as above), in one transaction with DELETE FROM core.ml_run_costs WHERE "
              "charge_date in the window.", ""]  # fmt: skip
    lines += _statement(len(statements) + 1, plan.run_costs)
    return "\n".join(lines).rstrip() + "\n"
