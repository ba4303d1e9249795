"""The contract of `core.allocated_costs`: one row per piece of allocated cost, with its lineage.

Grain: (x_LineId, piece). A charge owned through tags or a fallback is one piece; a charge split (a shared pool,
or a dedicated instance's time split among the runs on it) is one piece per target. Per charge the pieces'
`amount` sum exactly to the charge's cost basis, their `amount_reporting` to the charge converted once, and their
`ratio` to exactly 1 (largest remainder at 12 decimals).
"""

from __future__ import annotations

import duckdb

from mlcost_pipeline.normalize.focus_schema import MONEY_SQL

UNALLOCATED = "__unallocated__"
IDLE = "__idle__"

ALLOCATED_COLUMNS: list[tuple[str, str]] = [
    ("x_LineId", "VARCHAR"),  # the source charge in core.focus_costs
    ("piece", "INTEGER"),  # 0..n-1 among the pieces of one charge
    ("charge_date", "DATE"),
    ("billing_currency", "VARCHAR"),
    ("amount", MONEY_SQL),  # in billing_currency
    ("reporting_currency", "VARCHAR"),
    ("amount_reporting", MONEY_SQL),  # in reporting_currency
    ("fx_rate", MONEY_SQL),  # 1 billing_currency = fx_rate reporting_currency (12 decimals; informative)
    ("fx_source", "VARCHAR"),  # same | provider (x_CurrencyConversionRate) | file (the rates file)
    ("cost_basis", "VARCHAR"),  # the FOCUS metric allocated: EffectiveCost unless the rules say otherwise
    ("project", "VARCHAR"),  # never null: a project, __idle__ or __unallocated__
    ("model", "VARCHAR"),
    ("team", "VARCHAR"),
    ("environment", "VARCHAR"),
    ("cost_center", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("run_basis", "VARCHAR"),  # direct (the run's own charge) | pool_share (its GPU-hours in a pool) | NULL
    ("rule_id", "VARCHAR"),  # tag:project | fallback:... | pool:<id> | unallocated
    ("method", "VARCHAR"),  # tag | fallback | even | fixed | proportional_cost | proportional_usage | unallocated
    ("ratio", MONEY_SQL),  # share of the charge this piece carries (1 for a whole charge)
    ("rules_hash", "VARCHAR"),  # sha256 of the rules file that produced the row
    ("provider", "VARCHAR"),
    ("service_name", "VARCHAR"),
    ("service_category", "VARCHAR"),
    ("sub_account_id", "VARCHAR"),
    ("resource_id", "VARCHAR"),
    ("x_SourceSystem", "VARCHAR"),
    # FOCUS 1.3 split-cost-allocation columns: we are the data generator of the split.
    ("AllocatedMethodId", "VARCHAR"),
    ("AllocatedMethodDetails", "JSON"),
    ("AllocatedResourceId", "VARCHAR"),
    ("AllocatedTags", "JSON"),
]


def create_table_sql(qualified_name: str) -> str:
    cols = ",\n  ".join(f'"{c}" {t}' for c, t in ALLOCATED_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {qualified_name} (\n  {cols}\n)"


def ensure_columns(con: duckdb.DuckDBPyConnection, qualified_name: str = "core.allocated_costs") -> None:
    """Add columns this version writes to a table an older version created (a kept demo warehouse)."""
    con.execute(create_table_sql(qualified_name))
    for column, sql_type in ALLOCATED_COLUMNS:
        con.execute(f'ALTER TABLE {qualified_name} ADD COLUMN IF NOT EXISTS "{column}" {sql_type}')
