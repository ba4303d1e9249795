"""The contract of `core.ml_run_costs` (run_costs.py) and the run rate card as a frame.

Grain: (charge_date, run_id, cost_source). One row per UTC day a run was active and per way it got cost:
`direct`, `pool_share`, or an `estimate` from the rate card (is_estimate = true) on a day with neither.
"""

from __future__ import annotations

import polars as pl

from mlcost_pipeline.allocation.rules import Rules
from mlcost_pipeline.normalize.focus_schema import MONEY, MONEY_SQL

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


def create_table_sql(qualified_name: str = "core.ml_run_costs") -> str:
    cols = ",\n  ".join(f'"{c}" {t}' for c, t in ML_RUN_COSTS_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {qualified_name} (\n  {cols}\n)"


def rates_frame(rules: Rules) -> pl.DataFrame:
    """`_mlc_rates`: the rate card, one row per instance type."""
    rates = [
        {"instance_type": k, "hourly": v.hourly, "gpus": v.gpus}
        for k, v in sorted(rules.runs.rate_card.items())
    ]
    return pl.DataFrame(rates, schema=RATE_SCHEMA) if rates else pl.DataFrame(schema=RATE_SCHEMA)
