"""Materialization metadata every asset reports: row counts, exact cost totals, a short preview."""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import polars as pl

from mlcost_pipeline.warehouse.connection import checked_identifier


def preview(df: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    with pl.Config(tbl_formatting="MARKDOWN", tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True,
                   tbl_rows=rows, tbl_cols=12, fmt_str_lengths=40):  # fmt: skip
        return dg.MetadataValue.md(str(df.head(rows)))


def totals_by(
    con: duckdb.DuckDBPyConnection, table: str, date_column: str, amount: str, group: str, start: date, end: date
) -> dict[str, str]:
    """Exact sums (as text, so nothing is rounded on the way to the UI) per group value and currency."""
    table, date_column, amount, group = (checked_identifier(x) for x in (table, date_column, amount, group))
    currency = "BillingCurrency" if table == "core.focus_costs" else "billing_currency"
    rows = con.execute(
        f'SELECT "{group}", {currency}, sum("{amount}") FROM {table} '  # noqa: S608 (identifiers checked above)
        f'WHERE "{date_column}" >= $start AND "{date_column}" < $end GROUP BY ALL ORDER BY ALL',
        {"start": start, "end": end},
    ).fetchall()
    return {f"{g} ({cur})": str(total) for g, cur, total in rows}


def window_metadata(start: date, end: date, row_count: int) -> dict[str, object]:
    return {"dagster/row_count": row_count, "window": f"[{start}, {end})"}
