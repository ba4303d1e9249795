"""The warehouse's promises as queries (DESIGN.md §3). Each returns what breaks the promise; empty means kept.

Dagster checks call these; tests call them directly on good and on tampered data.
"""

from __future__ import annotations

from datetime import date

import duckdb

from mlcost_pipeline.normalize.focus_schema import CHARGE_CATEGORIES


def duplicate_line_ids(con: duckdb.DuckDBPyConnection, start: date, end: date) -> int:
    return con.execute(
        "SELECT count(*) - count(DISTINCT x_LineId) FROM core.focus_costs "
        "WHERE x_ChargeDate >= $start AND x_ChargeDate < $end",
        {"start": start, "end": end},
    ).fetchall()[0][0]


def disallowed_values(con: duckdb.DuckDBPyConnection, start: date, end: date) -> int:
    return con.execute(
        "SELECT count(*) FROM core.focus_costs WHERE x_ChargeDate >= $start AND x_ChargeDate < $end "
        "AND (NOT list_contains($categories, ChargeCategory) "
        "     OR NOT regexp_full_match(BillingCurrency, '[A-Z]{3}'))",
        {"start": start, "end": end, "categories": list(CHARGE_CATEGORIES)},
    ).fetchall()[0][0]


def conservation_violations(
    con: duckdb.DuckDBPyConnection, start: date, end: date
) -> list[tuple[date, str, object, object]]:
    """(day, currency, charged, allocated) wherever allocated cost differs from EffectiveCost, to the last unit."""
    return con.execute(
        """
        WITH charged AS (
            SELECT x_ChargeDate AS day, BillingCurrency AS currency, sum(EffectiveCost) AS charged
            FROM core.focus_costs WHERE x_ChargeDate >= $start AND x_ChargeDate < $end GROUP BY ALL
        ), allocated AS (
            SELECT charge_date AS day, billing_currency AS currency, sum(amount) AS allocated
            FROM core.allocated_costs WHERE charge_date >= $start AND charge_date < $end GROUP BY ALL
        )
        SELECT day, currency, coalesce(charged, 0), coalesce(allocated, 0)
        FROM charged FULL OUTER JOIN allocated USING (day, currency)
        WHERE coalesce(charged, 0) <> coalesce(allocated, 0)
        ORDER BY day, currency
        """,
        {"start": start, "end": end},
    ).fetchall()
