"""Cost of MLflow runs per UTC day: `core.ml_run_costs` (DESIGN.md §5), from core.allocated_costs and core.ml_runs.

Grain: (charge_date, run_id, cost_source). For each day a run was active (its [start, end) overlaps the day; a
run still running counts until the end of the day):
- `direct`: the run's pieces of its own charges in core.allocated_costs (a charge tagged with the run id, or its
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

from mlcost_pipeline.allocation.currency import CurrencyError, RateBook, converted_sql, install_macros
from mlcost_pipeline.allocation.dimensions_sql import dimension_params
from mlcost_pipeline.allocation.rules import LoadedRules
from mlcost_pipeline.allocation.run_pieces_sql import runs_cte
from mlcost_pipeline.normalize.focus_schema import MONEY, MONEY_SQL
from mlcost_pipeline.warehouse.partition_writes import replace_window_sql

ML_RUN_COSTS_COLUMNS: list[tuple[str, str]] = [
    ("charge_date", "DATE"),
    ("run_id", "VARCHAR"),
    ("experiment_name", "VARCHAR"),
    ("run_name", "VARCHAR"),
    ("status", "VARCHAR"),
    ("project", "VARCHAR"),
    ("model", "VARCHAR"),
    ("instance_type", "VARCHAR"),
    ("cost_source", "VARCHAR"),  # direct | pool_share | estimate
    ("is_estimate", "BOOLEAN"),
    ("amount_reporting", MONEY_SQL),
    ("reporting_currency", "VARCHAR"),
    ("gpu_hours", MONEY_SQL),  # the run's GPU-hours on that day
    ("line_count", "INTEGER"),  # billed charges contributing (0 for an estimate)
    ("rule_ids", "VARCHAR"),  # AllocatedMethodId of the pieces behind a billed amount, comma-separated
    ("note", "VARCHAR"),
    ("rules_hash", "VARCHAR"),
]
RATE_SCHEMA = {"instance_type": pl.String, "hourly": MONEY, "gpus": pl.Int32}
RATE_FX_SCHEMA = {"day": pl.Date, "fx_num": MONEY, "fx_den": MONEY}


def create_table_sql(qualified_name: str = "core.ml_run_costs") -> str:
    cols = ",\n  ".join(f'"{c}" {t}' for c, t in ML_RUN_COSTS_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {qualified_name} (\n  {cols}\n)"


def _frames(loaded: LoadedRules, start: date, end: date, reporting: str) -> dict[str, pl.DataFrame]:
    runs = loaded.rules.runs
    rates = [{"instance_type": k, "hourly": v.hourly, "gpus": v.gpus} for k, v in sorted(runs.rate_card.items())]
    days = [date.fromordinal(o) for o in range(start.toordinal(), end.toordinal())]
    fx = []
    if runs.rate_card_currency != reporting:
        book = RateBook(loaded.fx_rates, loaded.rules.currency.max_rate_age_days)
        for day in days:
            fraction = book.fraction(runs.rate_card_currency, reporting, day)
            if fraction is None:
                raise CurrencyError(f"no FX rate {runs.rate_card_currency}->{reporting} on or before {day} for the "
                                    f"run rate card: add one to {loaded.fx_rates_file or 'currency.rates_file'}")
            fx.append({"day": day, "fx_num": fraction[0], "fx_den": fraction[1]})
    else:
        fx = [{"day": day, "fx_num": Decimal(1), "fx_den": Decimal(1)} for day in days]
    return {
        "_mlc_rates": pl.DataFrame(rates, schema=RATE_SCHEMA) if rates else pl.DataFrame(schema=RATE_SCHEMA),
        "_mlc_rate_fx": pl.DataFrame(fx, schema=RATE_FX_SCHEMA) if fx else pl.DataFrame(schema=RATE_FX_SCHEMA),
    }


def run_costs_sql(loaded: LoadedRules) -> tuple[str, dict[str, object]]:
    columns = ", ".join(f'"{c}"' for c, _ in ML_RUN_COSTS_COLUMNS)
    rules = loaded.rules
    estimate = converted_sql(
        "mlc_money(mlc_muldiv(mlc_units(k.hourly), CAST(coalesce(d.run_gpu_count, k.gpus) AS HUGEINT) * d.us, "
        "CAST(k.gpus AS HUGEINT) * 3600000000))",
        "x.fx_num",
        "x.fx_den",
    )
    sql = f"""
WITH {runs_cte(rules)}, day_bounds AS (
    SELECT day, CAST(day AS TIMESTAMP) AS ds, CAST(day AS TIMESTAMP) + INTERVAL 1 DAY AS de FROM _mlc_rate_fx
), run_days AS (
    SELECT b.day, r.*, date_diff('microsecond', greatest(r.run_start, b.ds), least(coalesce(r.run_end, b.de), b.de))
           AS us
    FROM day_bounds AS b JOIN runs AS r ON r.run_start < b.de AND coalesce(r.run_end, b.de) > b.ds
), billed AS (
    SELECT charge_date AS day, run_id, run_basis AS cost_source, sum(amount_reporting) AS amount,
           count(DISTINCT x_LineId) AS line_count, string_agg(DISTINCT AllocatedMethodId, ',' ORDER BY AllocatedMethodId) AS rule_ids
    FROM core.allocated_costs
    WHERE charge_date >= $start AND charge_date < $end AND run_id IS NOT NULL AND reporting_currency = $reporting
    GROUP BY ALL
), costs AS (
    SELECT b.day, b.run_id, b.cost_source, false AS is_estimate, b.amount, b.line_count, b.rule_ids,
           CAST(NULL AS VARCHAR) AS note
    FROM billed AS b
    UNION ALL
    SELECT d.day, d.run_id, 'estimate', true, {estimate}, 0, NULL,
           CASE WHEN k.instance_type IS NULL
                THEN 'no rate-card price for instance type ' || coalesce(d.run_instance_type, '(none)') END
    FROM run_days AS d
    LEFT JOIN _mlc_rates AS k ON k.instance_type = d.run_instance_type
    JOIN _mlc_rate_fx AS x ON x.day = d.day
    WHERE d.us > 0 AND NOT EXISTS (SELECT 1 FROM billed AS b WHERE b.day = d.day AND b.run_id = d.run_id)
)
SELECT {columns} FROM (
    SELECT c.day AS charge_date, c.run_id, m.experiment_name, m.run_name, m.status,
           coalesce(r.run_project, '__unallocated__') AS project, r.run_model AS model,
           m.instance_type, c.cost_source, c.is_estimate, c.amount AS amount_reporting, $reporting AS reporting_currency,
           mlc_money(mlc_round_div(CAST(coalesce(d.run_gpu_count, 0) AS HUGEINT) * coalesce(d.us, 0) * 10000, 36))
               AS gpu_hours,
           c.line_count, c.rule_ids, c.note, $rules_hash AS rules_hash
    FROM costs AS c
    LEFT JOIN runs AS r USING (run_id)
    LEFT JOIN core.ml_runs AS m USING (run_id)
    LEFT JOIN run_days AS d ON d.day = c.day AND d.run_id = c.run_id
)
ORDER BY charge_date, run_id, cost_source
"""  # noqa: S608 (our own column names only; values are bound)
    params = {"rules_hash": loaded.sha256, **dimension_params(rules, ("project", "model"))}
    return sql, params


def cost_runs_window(
    con: duckdb.DuckDBPyConnection, loaded: LoadedRules, start: date, end: date, reporting: str
) -> int:
    """Replace core.ml_run_costs for [start, end) from the allocated costs and runs of that window."""
    con.execute(create_table_sql())
    install_macros(con)
    frames = _frames(loaded, start, end, reporting)
    sql, params = run_costs_sql(loaded)
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        return replace_window_sql(
            con, "core.ml_run_costs", "charge_date", start, end, sql, {**params, "reporting": reporting}
        )
    finally:
        for name in frames:
            con.unregister(name)
