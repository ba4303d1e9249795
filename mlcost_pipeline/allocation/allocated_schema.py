"""The contract of `core.allocated_costs`: one row per piece of allocated cost, with its lineage.

Grain: (x_LineId, piece). A charge owned through tags is one piece; a shared charge split among targets is one
piece per target. Amounts are exact decimals in the charge's billing currency.
"""

from __future__ import annotations

from mlcost_pipeline.normalize.focus_schema import MONEY_SQL

UNALLOCATED = "__unallocated__"
IDLE = "__idle__"

ALLOCATED_COLUMNS: list[tuple[str, str]] = [
    ("x_LineId", "VARCHAR"),  # the source charge in core.focus_costs
    ("piece", "INTEGER"),  # 0..n-1 among the pieces of one charge
    ("charge_date", "DATE"),
    ("billing_currency", "VARCHAR"),
    ("amount", MONEY_SQL),
    ("cost_basis", "VARCHAR"),  # the FOCUS metric allocated: EffectiveCost
    ("project", "VARCHAR"),
    ("model", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("rule_id", "VARCHAR"),
    ("method", "VARCHAR"),  # tag | unallocated (later: fallback, even, fixed, proportional_cost, ...)
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
