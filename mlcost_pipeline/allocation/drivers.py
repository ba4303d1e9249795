"""Usage drivers other than GPU-hours, as one small frame for a window: `_mlc_driver_usage`.

Grain: (driver, day, project, model). A CSV driver's dated rows apply on their day; its undated rows apply on
every day that has no dated row (a standing split, e.g. storage GB that rarely changes). A SQL driver is one
SELECT on the warehouse returning `day`, `project`, `quantity` and optionally `model`; it runs once per window
(sql/driver_probe.sql checks its columns, sql/driver_usage.sql reads its rows).
Project and model values go through the same normalization and aliases as tags. A negative or non-numeric
quantity, or a missing column, is a DriverError naming the driver.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import duckdb
import polars as pl

from mlcost_pipeline.allocation.plan import Statement
from mlcost_pipeline.allocation.rules import LoadedRules
from mlcost_pipeline.normalize.focus_schema import MONEY

DRIVER_USAGE_SCHEMA = {"driver": pl.String, "day": pl.Date, "project": pl.String, "model": pl.String,
                       "quantity": MONEY}  # fmt: skip


_Q = Decimal("1e-12")


class DriverError(ValueError):
    pass


def _sql_rows(
    con: duckdb.DuckDBPyConnection, name: str, probe: Statement, rows: Statement, start: date, end: date
):
    where = f"drivers.{name}.sql"
    try:
        cursor = probe.run(con)
        columns = [d[0].lower() for d in cursor.description]
        cursor.fetchall()
    except duckdb.Error as exc:
        raise DriverError(f"{where}: the query fails: {str(exc).splitlines()[0]}") from exc
    missing = [c for c in ("day", "project", "quantity") if c not in columns]
    if missing:
        raise DriverError(f"{where}: the query returns no column(s) {missing}; it returns {columns}")
    found = rows.run(con, start, end).fetchall()
    for day, project, _model, qty in found:
        if qty is None or qty < 0:
            raise DriverError(f"{where}: quantity {qty} for {project!r} on {day}: must be a number >= 0")
    return found


def driver_usage(
    con: duckdb.DuckDBPyConnection,
    loaded: LoadedRules,
    statements: dict[str, tuple[Statement, Statement]],
    start: date,
    end: date,
) -> pl.DataFrame:
    """Every table driver's quantities in [start, end), canonical project/model, summed per day/project/model.

    `statements`: the plan's (columns probe, rows) of each SQL driver the pools use.
    """
    rules = loaded.rules
    used = {p.driver for p in rules.pools if p.driver and p.driver in rules.drivers}
    days = [date.fromordinal(o) for o in range(start.toordinal(), end.toordinal())]
    sums: dict[tuple[str, date, str, str | None], Decimal] = defaultdict(Decimal)
    project_dim, model_dim = rules.dimensions["project"], rules.dimension("model")
    for name in sorted(used):
        source = rules.drivers[name]
        if source.csv is not None:
            rows = loaded.driver_rows.get(name, [])
            dated = {d for d, *_ in rows if d is not None}
            expanded = [(d, p, m, q) for d, p, m, q in rows if d is not None and start <= d < end]
            expanded += [(day, p, m, q) for d0, p, m, q in rows if d0 is None for day in days if day not in dated]
        else:
            expanded = _sql_rows(con, name, *statements[name], start, end)
        for day, project, mdl, qty in expanded:
            canonical_project = project_dim.canonical(project) or "__unallocated__"
            canonical_model = model_dim.canonical(mdl) if (model_dim and mdl) else mdl
            sums[(name, day, canonical_project, canonical_model)] += Decimal(qty).quantize(_Q)
    rows = [{"driver": k[0], "day": k[1], "project": k[2], "model": k[3], "quantity": v} for k, v in sorted(
        sums.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3] or ""))]  # fmt: skip
    return pl.DataFrame(rows, schema=DRIVER_USAGE_SCHEMA) if rows else pl.DataFrame(schema=DRIVER_USAGE_SCHEMA)
