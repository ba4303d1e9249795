"""The allocation engine: core.focus_costs (+ core.ml_runs) for a window of days -> cost cells and their pieces.

The statements come from the plan of the rules file (plan.py: sql/*.sql rendered once per rules file and
reporting currency); per window the engine binds $start/$end, prepares the small inputs that depend on the
window in Python (the FX rates it needs, table-driver usage) and registers them with the rules' frames
(fallback maps, pools and targets). Everything else runs in DuckDB, in one transaction:
0. stage 0 (sql/cells.sql): the window's lines grouped to cost cells (core.cost_cells), one scan; every later
   step works on cells, one to two orders of magnitude fewer rows than lines;
1. stage 1 (sql/charges.sql), once per cell, into a temp table: owner from tags or fallbacks, the value in
   the reporting currency, the first pool whose selector matches;
2. stage 2 (sql/allocate.sql), one INSERT ... SELECT into core.allocated_cells: direct charges stay whole or
   are split among the runs on their dedicated resource; pooled charges are split among the pool's weights for
   the day, idle and fallbacks included; every split is exact by largest remainder on narrow integer rows;
   `__unallocated__` keeps the rest.
Precedence: the first matching pool wins; otherwise tags, then fallbacks; otherwise `__unallocated__`.
core.allocated_costs is a view (sql/allocated_costs_view.sql): each line split as its cell was. A failure
anywhere writes nothing. `mlcost sql --rules FILE` prints the statements (commands.sql_command).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from mlcost_pipeline.allocation.currency import RateBook, fx_plan
from mlcost_pipeline.allocation.drivers import driver_usage
from mlcost_pipeline.allocation.plan import allocation_plan
from mlcost_pipeline.allocation.rules import LoadedRules
from mlcost_pipeline.allocation.tables import ensure_allocation_tables
from mlcost_pipeline.warehouse.partition_writes import replace_in_transaction, window_transaction


@dataclass(frozen=True)
class AllocationResult:
    rows: int  # pieces of cost cells written (core.allocated_cells)
    cells: int  # cost cells of the window (core.cost_cells)
    reporting_currency: str


def allocate_window(
    con: duckdb.DuckDBPyConnection, loaded: LoadedRules, start: date, end: date, reporting: str
) -> AllocationResult:
    """Replace core.cost_cells and core.allocated_cells for [start, end), in one transaction."""
    plan = allocation_plan(loaded, reporting)
    rules = loaded.rules
    ensure_allocation_tables(con)
    plan.macros.run(con)
    book = RateBook(loaded.fx_rates, rules.currency.max_rate_age_days)
    registered: list[str] = []
    with window_transaction(con):
        cells = replace_in_transaction(con, "core.cost_cells", "x_ChargeDate", start, end, plan.cells.sql,
                                       plan.cells.params)
        frames = {
            "_mlc_fx": fx_plan(con, plan.fx_needs, start, end, reporting, book, rules.currency.use_provider_rates,
                               rules.cost_basis, loaded.fx_rates_file),
            **plan.frames,
            "_mlc_driver_usage": driver_usage(con, loaded, plan.drivers, start, end),
        }
        try:
            for name, frame in frames.items():
                con.register(name, frame.to_arrow())
                registered.append(name)
            plan.charges.run(con, start, end)
            n = replace_in_transaction(con, "core.allocated_cells", "charge_date", start, end, plan.allocate.sql,
                                       plan.allocate.params)
            plan.drop_valued.run(con)
        finally:
            for name in registered:
                con.unregister(name)
    return AllocationResult(rows=n, cells=cells, reporting_currency=reporting)
