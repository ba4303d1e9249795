"""The warehouse's promises as queries (DESIGN.md §3). Each returns what breaks the promise; empty means kept.

Dagster checks call these; tests call them directly on good and on tampered data.
"""

from __future__ import annotations

from datetime import date

import duckdb

from mlcost_pipeline.normalize.focus_schema import CHARGE_CATEGORIES

COST_BASES = ("EffectiveCost", "BilledCost", "ListCost", "ContractedCost")


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


def tolerated_problems(con: duckdb.DuckDBPyConnection, start: date, end: date) -> list[tuple]:
    """(provider, column, rows, file, first row, what is wrong) of the export rows of [start, end) loaded despite a
    problem in a column that decides no money (raw.focus_export_quality, written by landing)."""
    return con.execute(
        "SELECT ProviderName, column_name, sum(rows), arg_min(path, (x_ChargeDate, path, example_row)), "
        "arg_min(example_row, (x_ChargeDate, path, example_row)), arg_min(example, (x_ChargeDate, path, example_row)) "
        "FROM raw.focus_export_quality WHERE x_ChargeDate >= $start AND x_ChargeDate < $end "
        "GROUP BY ALL ORDER BY ALL",
        {"start": start, "end": end},
    ).fetchall()


def _basis(basis: str) -> str:
    if basis not in COST_BASES:
        raise ValueError(f"unknown cost basis {basis!r}; expected one of {COST_BASES}")
    return basis


def conservation_violations(
    con: duckdb.DuckDBPyConnection, start: date, end: date, basis: str = "EffectiveCost"
) -> list[tuple[date, str, object, object]]:
    """(day, currency, charged, allocated) wherever allocated cost differs from the basis, to the last unit."""
    return con.execute(
        f"""
        WITH charged AS (
            SELECT x_ChargeDate AS day, BillingCurrency AS currency, sum("{_basis(basis)}") AS charged
            FROM core.focus_costs WHERE x_ChargeDate >= $start AND x_ChargeDate < $end GROUP BY ALL
        ), allocated AS (
            SELECT charge_date AS day, billing_currency AS currency, sum(amount) AS allocated
            FROM core.allocated_cells WHERE charge_date >= $start AND charge_date < $end GROUP BY ALL
        )
        SELECT day, currency, coalesce(charged, 0), coalesce(allocated, 0)
        FROM charged FULL OUTER JOIN allocated USING (day, currency)
        WHERE coalesce(charged, 0) <> coalesce(allocated, 0)
        ORDER BY day, currency
        """,  # noqa: S608 (the basis is one of four column names)
        {"start": start, "end": end},
    ).fetchall()


def split_violations(
    con: duckdb.DuckDBPyConnection, start: date, end: date, basis: str = "EffectiveCost", limit: int = 20
) -> tuple[int, list[tuple[str, str]]]:
    """Cost cells whose pieces do not add up: (count, first (cell, problem)), the cell named `<day>#<cid>`.

    Per cell the pieces' amounts must sum to the cell's basis and their ratios to 1, every piece must have a
    reporting amount, and a cell of positive cost must have no negative piece. (Per line the view
    core.allocated_costs splits by the same weights with its own largest remainder, so a line's pieces sum to
    the line by construction; the conservation check compares the lines with the pieces.)
    """
    problems = f"""
        WITH pieces AS (
            SELECT charge_date AS day, cid, sum(amount) AS amount, sum(ratio) AS ratio, count(*) AS n,
                   count(amount_reporting) AS n_reporting, min(amount) AS smallest
            FROM core.allocated_cells WHERE charge_date >= $start AND charge_date < $end GROUP BY ALL
        ), cells AS (
            SELECT x_ChargeDate AS day, cid, "{_basis(basis)}" AS charged
            FROM core.cost_cells WHERE x_ChargeDate >= $start AND x_ChargeDate < $end
        )
        SELECT CAST(day AS VARCHAR) || '#' || CAST(cid AS VARCHAR) AS cell, CASE
            WHEN p.cid IS NULL THEN 'cell has no allocated piece'
            WHEN c.cid IS NULL THEN 'pieces of a cell that is not in core.cost_cells'
            WHEN p.amount <> c.charged THEN 'pieces sum to ' || p.amount || ', the cell is ' || c.charged
            WHEN p.ratio <> 1 THEN 'ratios sum to ' || p.ratio || ', not 1'
            WHEN p.n_reporting < p.n THEN 'a piece has no amount_reporting'
            WHEN c.charged > 0 AND p.smallest < 0 THEN 'a positive cell has a negative piece'
            END AS problem
        FROM pieces AS p FULL OUTER JOIN cells AS c USING (day, cid)
    """  # noqa: S608
    params = {"start": start, "end": end}
    count = con.execute(f"SELECT count(*) FROM ({problems}) WHERE problem IS NOT NULL", params).fetchall()[0][0]
    first = con.execute(
        f"SELECT cell, problem FROM ({problems}) WHERE problem IS NOT NULL ORDER BY cell LIMIT $limit",
        {**params, "limit": limit},
    ).fetchall() if count else []  # fmt: skip
    return count, first
