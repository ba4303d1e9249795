"""What `mlcost demo` prints at the end: rows per table, cost by provider, top projects, where things are."""

from __future__ import annotations

from datetime import date

import duckdb

from mlcost_pipeline.warehouse.snapshot import bi_snapshot_path


def table_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    tables = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('raw', 'core', 'marts') ORDER BY 1, 2"
    ).fetchall()
    out = []
    for schema, name in tables:
        n = con.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchall()[0][0]
        out.append((f"{schema}.{name}", n))
    return out


def cost_by_provider(con: duckdb.DuckDBPyConnection, start: date, end: date) -> list[tuple[str, str, object, int]]:
    return con.execute(
        "SELECT ProviderName, BillingCurrency, sum(EffectiveCost), count(*) FROM core.focus_costs "
        "WHERE x_ChargeDate >= $start AND x_ChargeDate < $end GROUP BY ALL ORDER BY 1, 2",
        {"start": start, "end": end},
    ).fetchall()


def top_projects(con: duckdb.DuckDBPyConnection, start: date, end: date, n: int = 10) -> list[tuple[str, str, object]]:
    return con.execute(
        "SELECT project, billing_currency, sum(amount) AS amount FROM core.allocated_cells "
        "WHERE charge_date >= $start AND charge_date < $end GROUP BY ALL ORDER BY amount DESC LIMIT $n",
        {"start": start, "end": end, "n": n},
    ).fetchall()


def render(con: duckdb.DuckDBPyConnection, start: date, end: date, warehouse_path: str) -> str:
    lines = [f"Warehouse: {warehouse_path}  (window [{start}, {end}) UTC)", "", "Rows per table:"]
    lines += [f"  {name:<34} {n:>9,}" for name, n in table_counts(con)]
    lines += ["", "Effective cost by provider (billing currency):"]
    lines += [f"  {p:<28} {cur}  {amount:>16,.2f}  ({rows:,} charges)" for p, cur, amount, rows in
              cost_by_provider(con, start, end)]  # fmt: skip
    lines += ["", "Top projects (allocated, billing currency):"]
    lines += [f"  {p:<28} {cur}  {amount:>16,.2f}" for p, cur, amount in top_projects(con, start, end)]
    lines += [
        "",
        # The duckdb CLI is not installed by `make`; the venv's Python is. BI reads the snapshot (docs/bi.md).
        "Query it: .venv/bin/python -c \"import duckdb; duckdb.connect('"
        + str(bi_snapshot_path(warehouse_path))
        + "', read_only=True).sql('FROM bi.kpi_org_daily ORDER BY date DESC LIMIT 5').show()\"",
        "The UI:   make ui   (then http://127.0.0.1:3000; or: dg dev -w workspace.yaml)",
    ]
    return "\n".join(lines)
