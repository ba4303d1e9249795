"""Small hand-written warehouses for tests: a real DuckDB file with a few charges whose answers are known."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from mlcost_pipeline.normalize.focus_schema import conform, line_ids, tags_json
from mlcost_pipeline.warehouse.focus_view import API_TABLE
from mlcost_pipeline.warehouse.schema import ensure_schema


def charges(rows: list[dict]) -> pl.DataFrame:
    """FOCUS rows from short dicts: day, cost, currency and tags are what allocation reads."""
    out = []
    ids = line_ids("test", [(r["day"], i) for i, r in enumerate(rows)])
    for r, lid in zip(rows, ids, strict=True):
        start = datetime(r["day"].year, r["day"].month, r["day"].day)
        cost = Decimal(r["cost"])
        out.append({
            "BilledCost": cost, "EffectiveCost": cost, "ListCost": cost, "ContractedCost": cost,
            "BillingAccountId": "acct", "BillingCurrency": r.get("currency", "USD"),
            "BillingPeriodStart": start.replace(day=1), "BillingPeriodEnd": start.replace(day=28),
            "ChargePeriodStart": start, "ChargePeriodEnd": start, "ChargeCategory": r.get("category", "Usage"),
            "InvoiceIssuerName": "X", "ProviderName": r.get("provider", "AWS"), "PublisherName": "X",
            "ServiceCategory": "Compute", "ServiceName": "EC2", "Tags": tags_json(r.get("tags")),
            "x_LineId": lid, "x_SourceSystem": "aws_cost_explorer", "x_ChargeDate": r["day"],
        })  # fmt: skip
    return conform(pl.DataFrame(out, schema_overrides={"BilledCost": pl.Decimal(38, 12)}), "test")


def insert_charges(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> None:
    """Add charges the way the API sources' rows are stored: core.focus_costs (a view) shows them."""
    con.register("_f", frame.to_arrow())
    try:
        con.execute(f"INSERT INTO {API_TABLE} BY NAME SELECT * FROM _f")  # noqa: S608 (a constant)
    finally:
        con.unregister("_f")


def warehouse_with(path: Path, rows: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    ensure_schema(con)
    insert_charges(con, charges(rows))
    return con


D1, D2 = date(2026, 11, 1), date(2026, 11, 2)
