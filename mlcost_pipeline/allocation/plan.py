"""The allocation's statements for a rules file and reporting currency: rendered once from sql/*.sql, cached.

An AllocationPlan holds every statement the two allocation assets run, in execution order, each with the
rules' values it binds; the frames derived from the rules alone (fallback maps, pools and targets, the rate
card) are built once too. Per window the engine adds only $start/$end and the frames that depend on the window
(FX rates, table-driver usage, the rate card's FX). The cache is keyed by the rules file's sha256 and the
reporting currency: everything rendered or bound here is a function of those two.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

from mlcost_pipeline.allocation import allocated_schema, cells_schema
from mlcost_pipeline.allocation.charges_sql import charge_context
from mlcost_pipeline.allocation.dimensions_sql import fallback_frames, run_dimension_context
from mlcost_pipeline.allocation.pools_sql import pool_frames
from mlcost_pipeline.allocation.rules import LoadedRules, Rules
from mlcost_pipeline.allocation.run_costs_schema import ML_RUN_COSTS_COLUMNS, rates_frame
from mlcost_pipeline.allocation.templates import WINDOW, bound_names, render

_CACHE_SIZE = 8
_cache: OrderedDict[tuple[str, str], AllocationPlan] = OrderedDict()
_lock = threading.Lock()
_stats = {"hits": 0, "renders": 0}


@dataclass(frozen=True)
class Statement:
    """A rendered statement: what it does, its SQL, the rules' values it binds, if it binds the window."""

    name: str
    title: str
    sql: str
    params: dict[str, object] = field(default_factory=dict)
    window: bool = False
    insert_into: str | None = None  # a SELECT whose rows replace this table's window (partition_writes)

    def bind(self, start: date | None = None, end: date | None = None) -> dict[str, object]:
        return {**self.params, **({"start": start, "end": end} if self.window else {})}

    def run(self, con: duckdb.DuckDBPyConnection, start: date | None = None, end: date | None = None):
        return con.execute(self.sql, self.bind(start, end))


@dataclass(frozen=True)
class AllocationPlan:
    rules_sha256: str
    reporting: str
    macros: Statement
    cells: Statement  # the SELECT inserted into core.cost_cells (stage 0: lines -> cost cells)
    fx_needs: Statement
    drivers: dict[str, tuple[Statement, Statement]]  # SQL drivers the pools use: (columns probe, rows)
    charges: Statement  # stage 1 -> TEMP TABLE _mlc_valued
    allocate: Statement  # stage 2: the SELECT inserted into core.allocated_cells
    drop_valued: Statement
    line_view: Statement  # CREATE OR REPLACE VIEW core.allocated_costs (lines x their cell's pieces)
    run_costs: Statement  # the SELECT inserted into core.ml_run_costs
    frames: dict[str, pl.DataFrame]  # registered for core.allocated_costs, from the rules alone
    run_cost_frames: dict[str, pl.DataFrame]  # registered for core.ml_run_costs, from the rules alone

    def allocation_statements(self) -> list[Statement]:
        """core.allocated_costs' statements in execution order."""
        drivers = [s for pair in self.drivers.values() for s in pair]
        return [self.macros, self.cells, self.fx_needs, *drivers, self.charges, self.allocate, self.drop_valued,
                self.line_view]


def _statement(
    name: str, title: str, template: str, values: dict[str, object], insert_into: str | None = None, **context
) -> Statement:
    sql = render(template, **context)
    names = bound_names(sql)
    missing = sorted(names - WINDOW - set(values))
    if missing:  # a template and its context disagree: our bug, caught when the plan is rendered
        raise RuntimeError(f"allocation/sql/{template}: no value for parameter(s) {missing}")
    # Only the parameters the statement names: DuckDB refuses others.
    params = {n: values[n] for n in sorted(names - WINDOW)}
    return Statement(name, title, sql, params, bool(names & WINDOW), insert_into)


def _driver_statements(rules: Rules) -> dict[str, tuple[Statement, Statement]]:
    used = sorted({p.driver for p in rules.pools if p.driver and p.driver in rules.drivers})
    out = {}
    for name in used:
        sql = rules.drivers[name].sql
        if sql is None:  # a CSV driver: its rows were read with the rules
            continue
        # The driver's SQL is the rules' own text (one SELECT, validated); it binds only the window.
        probe = render("driver_probe.sql", driver_sql=sql)
        rows = render("driver_usage.sql", driver_sql=sql)
        out[name] = (
            Statement(f"driver {name}: columns", f"the columns drivers.{name}.sql returns (no rows)", probe),
            Statement(f"driver {name}: rows", f"drivers.{name}.sql in the window (-> _mlc_driver_usage)",
                      rows, window=True),
        )  # fmt: skip
    return out


def render_plan(rules: Rules, sha256: str, reporting: str) -> AllocationPlan:
    """Every statement of both allocation assets for these rules (uncached; see allocation_plan)."""
    charges, values = charge_context(rules, reporting)
    values |= {"cost_basis": rules.cost_basis, "rules_hash": sha256,
               "match_run_resource": rules.runs.match_resource_id}  # fmt: skip
    run_dims = run_dimension_context(rules)
    allocated = [c for c, _ in cells_schema.ALLOCATED_CELLS_COLUMNS]
    run_costs = [c for c, _ in ML_RUN_COSTS_COLUMNS]
    return AllocationPlan(
        rules_sha256=sha256,
        reporting=reporting,
        macros=_statement("macros", "exact integer helpers: money <-> 10^-12 units, a x n / d rounded "
                          "half-even", "macros.sql", values),
        cells=_statement("stage 0", "the window's lines of core.focus_costs grouped to cost cells, one scan: "
                         "the window's rows of core.cost_cells", "cells.sql", values, insert_into="core.cost_cells",
                         key=list(cells_schema.CELL_KEY), period=list(cells_schema.CELL_PERIOD),
                         sums=list(cells_schema.CELL_SUMS)),
        fx_needs=_statement("fx needs", "the (day, currency) pairs needing a rate from the rates file "
                            "(-> _mlc_fx)", "fx_needs.sql", values),
        drivers=_driver_statements(rules),
        charges=_statement("stage 1", "once per charge: owner, value in the reporting currency, pool "
                           "(-> TEMP TABLE _mlc_valued)", "charges.sql", values, **charges),
        allocate=_statement("stage 2", "the pieces of every cost cell: the window's rows of "
                            "core.allocated_cells", "allocate.sql", values,
                            insert_into="core.allocated_cells", columns=allocated, run_dims=run_dims),
        drop_valued=_statement("cleanup", "drop the stage 1 table", "drop_valued.sql", values),
        line_view=line_view_statement("core", "core.focus_costs"),
        run_costs=_statement("run costs", "cost of MLflow runs per day: the window's rows of "
                             "core.ml_run_costs", "run_costs.sql", values, insert_into="core.ml_run_costs",
                             columns=run_costs, run_dims=run_dims),
        frames={**fallback_frames(rules), **pool_frames(rules, reporting)},
        run_cost_frames={"_mlc_rates": rates_frame(rules)},
    )  # fmt: skip


def line_view_statement(schema: str, focus: str) -> Statement:
    """The view `<schema>.allocated_costs` over `focus` and the schema's cell tables (rules-independent)."""
    return _statement("line view", f"{schema}.allocated_costs: each line of {focus} split as its cost cell was "
                      "(a view)", "allocated_costs_view.sql", {}, schema=schema, focus=focus,
                      key=list(cells_schema.CELL_KEY), columns=[c for c, _ in allocated_schema.ALLOCATED_COLUMNS])


def allocation_plan(loaded: LoadedRules, reporting: str) -> AllocationPlan:
    """The plan of these rules and reporting currency: rendered on first use, then kept (a few at most)."""
    key = (loaded.sha256, reporting)
    with _lock:
        plan = _cache.get(key)
        if plan is not None:
            _cache.move_to_end(key)
            _stats["hits"] += 1
            return plan
    plan = render_plan(loaded.rules, loaded.sha256, reporting)
    with _lock:
        _stats["renders"] += 1
        _cache[key] = plan
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return plan


def cache_info() -> dict[str, int]:
    """How often allocation_plan found a plan (`hits`) and rendered one (`renders`), and how many it keeps."""
    with _lock:
        return {**_stats, "size": len(_cache)}
