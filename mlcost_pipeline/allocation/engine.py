"""The allocation engine: core.focus_costs (+ core.ml_runs) for a window of days -> core.allocated_costs.

The statements come from the plan of the rules file (plan.py: sql/*.sql rendered once per rules file and
reporting currency); per window the engine binds $start/$end, prepares the small inputs that depend on the
window in Python (the FX rates it needs, table-driver usage) and registers them with the rules' frames
(fallback maps, pools and targets). Everything else runs in DuckDB, in two statements:
1. stage 1 (sql/charges.sql), once per charge, into a temp table: owner from tags or fallbacks, the value in
   the reporting currency, the first pool whose selector matches;
2. stage 2 (sql/allocate.sql), one INSERT ... SELECT in the same transaction as the window's delete
   (partition_writes): direct charges stay whole or are split among the runs on their dedicated resource;
   pooled charges are split among the pool's weights for the day, idle and fallbacks included; every split is
   exact by largest remainder on narrow integer rows; `__unallocated__` keeps the rest.
Precedence: the first matching pool wins; otherwise tags, then fallbacks; otherwise `__unallocated__`.
A failure anywhere writes nothing. `mlcost sql --rules FILE` prints the statements (commands.sql_command).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from mlcost_pipeline.allocation import allocated_schema as schema
from mlcost_pipeline.allocation.currency import RateBook, fx_plan
from mlcost_pipeline.allocation.drivers import driver_usage
from mlcost_pipeline.allocation.plan import allocation_plan
from mlcost_pipeline.allocation.rules import LoadedRules
from mlcost_pipeline.warehouse.partition_writes import replace_window_sql


@dataclass(frozen=True)
class AllocationResult:
    rows: int
    reporting_currency: str


def allocate_window(
    con: duckdb.DuckDBPyConnection, loaded: LoadedRules, start: date, end: date, reporting: str
) -> AllocationResult:
    """Replace core.allocated_costs for [start, end) with the allocation of that window's charges."""
    plan = allocation_plan(loaded, reporting)
    rules = loaded.rules
    schema.ensure_columns(con)
    plan.macros.run(con)
    book = RateBook(loaded.fx_rates, rules.currency.max_rate_age_days)
    frames = {
        "_mlc_fx": fx_plan(con, plan.fx_needs, start, end, reporting, book, rules.currency.use_provider_rates,
                           rules.cost_basis, loaded.fx_rates_file),
        **plan.frames,
        "_mlc_driver_usage": driver_usage(con, loaded, plan.drivers, start, end),
    }  # fmt: skip
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        plan.charges.run(con, start, end)
        stage2 = plan.allocate
        n = replace_window_sql(
            con, "core.allocated_costs", "charge_date", start, end, stage2.sql, stage2.params
        )
    finally:
        plan.drop_valued.run(con)
        for name in frames:
            con.unregister(name)
    return AllocationResult(rows=n, reporting_currency=reporting)
