"""Cost of MLflow runs per UTC day: `core.ml_run_costs` (DESIGN.md §5), from core.allocated_cells and core.ml_runs.

Grain: (charge_date, run_id, cost_source). For each day a run was active (its [start, end) overlaps the day; a
run still running counts until the end of the day):
- `direct`: the run's pieces of its own charges in core.allocated_cells (a charge tagged with the run id, or its
  dedicated resource's charges split by overlap);
- `pool_share`: the run's pieces of shared pools allocated at grain `run` (its GPU-hour share that day);
- `estimate` (is_estimate = true): only on a day with neither, the rate card's price of the run's instance time
  (hourly x gpu_count / GPUs per instance x hours that day), converted to the reporting currency with the rates
  file if the rate card is in another currency. No price for the instance type: amount NULL and a note.
Billed amounts are sums of `amount_reporting`, so a run's billed cost adds up to what the pools and charges gave
it, exactly. project and model are the run's own (its tags through the dimension rules).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import polars as pl

from mlcost_pipeline.allocation.currency import CurrencyError, RateBook
from mlcost_pipeline.allocation.plan import allocation_plan
from mlcost_pipeline.allocation.rules import LoadedRules
from mlcost_pipeline.allocation.run_costs_schema import ML_RUN_COSTS_COLUMNS, create_table_sql
from mlcost_pipeline.normalize.focus_schema import MONEY
from mlcost_pipeline.warehouse.partition_writes import replace_window_sql

__all__ = ["ML_RUN_COSTS_COLUMNS", "cost_runs_window", "create_table_sql"]
RATE_FX_SCHEMA = {"day": pl.Date, "fx_num": MONEY, "fx_den": MONEY}


def rate_fx_frame(loaded: LoadedRules, start: date, end: date, reporting: str) -> pl.DataFrame:
    """`_mlc_rate_fx`: per day of the window, what converts the rate card to the reporting currency."""
    runs = loaded.rules.runs
    days = [date.fromordinal(o) for o in range(start.toordinal(), end.toordinal())]
    fx = []
    if runs.rate_card_currency != reporting:
        book = RateBook(loaded.fx_rates, loaded.rules.currency.max_rate_age_days)
        for day in days:
            fraction = book.fraction(runs.rate_card_currency, reporting, day)
            if fraction is None:
                raise CurrencyError(
                    f"no FX rate {runs.rate_card_currency}->{reporting} on or before {day} for the "
                    f"run rate card: add one to {loaded.fx_rates_file or 'currency.rates_file'}"
                )
            fx.append({"day": day, "fx_num": fraction[0], "fx_den": fraction[1]})
    else:
        fx = [{"day": day, "fx_num": Decimal(1), "fx_den": Decimal(1)} for day in days]
    return pl.DataFrame(fx, schema=RATE_FX_SCHEMA) if fx else pl.DataFrame(schema=RATE_FX_SCHEMA)


def cost_runs_window(
    con: duckdb.DuckDBPyConnection, loaded: LoadedRules, start: date, end: date, reporting: str
) -> int:
    """Replace core.ml_run_costs for [start, end) from the allocated costs and runs of that window."""
    plan = allocation_plan(loaded, reporting)
    con.execute(create_table_sql())
    plan.macros.run(con)
    frames = {**plan.run_cost_frames, "_mlc_rate_fx": rate_fx_frame(loaded, start, end, reporting)}
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        statement = plan.run_costs
        return replace_window_sql(
            con, "core.ml_run_costs", "charge_date", start, end, statement.sql, statement.params
        )
    finally:
        for name in frames:
            con.unregister(name)
