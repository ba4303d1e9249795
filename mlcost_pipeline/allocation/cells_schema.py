"""The contracts of the allocation's cell tables: `core.cost_cells` and `core.allocated_cells`.

`core.cost_cells`, grain (x_ChargeDate, cid): one row per day and distinct combination of the columns the rules
and marts read (CELL_KEY), with the four FOCUS cost metrics and the quantity summed and `line_count`, the
core.focus_costs lines it holds. The charge period is part of the key only for a resource a run can own (its
ResourceId is an MLflow run's dedicated resource): direct run cost needs the hour; every other cell has
ChargePeriodStart/End NULL, so a resource's 24 hourly rows of a day are one cell. A line in another currency
than the reporting one is a cell of its own (x_LineId set): each line is converted once, as itself. `cid` is the
day (days since 1970) x 2^32 + the cell's number in its day, in key order; `cell_key` is the md5 of the key
without the period, which is what lets a line of core.focus_costs find its cell (sql/allocated_costs_view.sql).

`core.allocated_cells`, grain (charge_date, cid, piece): the allocation's pieces of each cell, with the columns of
core.allocated_costs (minus x_LineId) and what the per-line view needs to split a line exactly as the cell was
split: the piece's integer weight `p` of `ptotal`, and the conversion `fx_num / fx_den`.
"""

from __future__ import annotations

import duckdb

from mlcost_pipeline.allocation.allocated_schema import ALLOCATED_COLUMNS
from mlcost_pipeline.normalize.focus_schema import FOCUS_COLUMNS, MONEY_SQL

_FOCUS_TYPES = dict(FOCUS_COLUMNS)

# Every column a rule, a pool selector, a fallback, FX, run matching or a mart reads from a charge.
CELL_KEY: tuple[str, ...] = (
    "x_ChargeDate", "BillingCurrency", "ProviderName", "BillingAccountId", "SubAccountId", "ServiceName",
    "ServiceCategory", "RegionId", "ResourceId", "x_ResourceGroupName", "ChargeCategory", "PricingCategory",
    "SkuId", "ConsumedUnit", "x_SourceSystem", "x_CurrencyConversionRate", "Tags",
)  # fmt: skip
CELL_PERIOD: tuple[str, ...] = ("ChargePeriodStart", "ChargePeriodEnd")
CELL_SUMS: tuple[str, ...] = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity")

COST_CELLS_COLUMNS: list[tuple[str, str]] = [
    ("cid", "BIGINT"),
    ("cell_key", "VARCHAR"),
    *((c, _FOCUS_TYPES[c]) for c in CELL_KEY),
    *((c, _FOCUS_TYPES[c]) for c in CELL_PERIOD),
    ("x_LineId", "VARCHAR"),  # set only on a cell of one line: a line in another currency than the reporting one
    *((c, _FOCUS_TYPES[c]) for c in CELL_SUMS),
    ("line_count", "BIGINT"),
]

ALLOCATED_CELLS_COLUMNS: list[tuple[str, str]] = [
    ("cid", "BIGINT"),
    *((c, t) for c, t in ALLOCATED_COLUMNS if c != "x_LineId"),
    ("line_count", "BIGINT"),  # lines of the cell (every piece of a cell carries it)
    ("p", "HUGEINT"),  # the piece's integer weight; the cell's pieces sum to ptotal
    ("ptotal", "HUGEINT"),
    ("fx_num", MONEY_SQL),  # amount_reporting = amount x fx_num / fx_den, rounded half-even (per line)
    ("fx_den", MONEY_SQL),
]


def _ddl(table: str, columns: list[tuple[str, str]]) -> str:
    cols = ",\n  ".join(f'"{c}" {t}' for c, t in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  {cols}\n)"


def ensure_cell_tables(con: duckdb.DuckDBPyConnection, schema: str = "core") -> None:
    """Create the cell tables (a warehouse from before cells gets them empty: rerun the allocation to fill)."""
    con.execute(_ddl(f"{schema}.cost_cells", COST_CELLS_COLUMNS))
    con.execute(_ddl(f"{schema}.allocated_cells", ALLOCATED_CELLS_COLUMNS))
