"""The allocation engine: core.focus_costs (+ core.ml_runs) for a window of days -> core.allocated_costs.

Small inputs are prepared in Python and registered as frames (the FX rates the window needs, fallback maps,
pools and targets, table drivers); everything else runs in DuckDB, in two statements:
1. stage 1 (charges_sql), once per charge, into a temp table: owner from tags or fallbacks, the value in the
   reporting currency, the first pool whose selector matches;
2. stage 2 (below), one INSERT ... SELECT in the same transaction as the window's delete (partition_writes):
   direct charges stay whole or are split among the runs on their dedicated resource (run_pieces_sql); pooled
   charges are split among the pool's weights for the day (pool_weights_sql), idle and fallbacks included; every
   split is exact by largest remainder on narrow integer rows (split_sql); `__unallocated__` keeps the rest.
Precedence: the first matching pool wins; otherwise tags, then fallbacks; otherwise `__unallocated__`.
A failure anywhere writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from mlcost_pipeline.allocation import allocated_schema as schema
from mlcost_pipeline.allocation.charges_sql import charge_stage_sql
from mlcost_pipeline.allocation.currency import RateBook, fx_plan, install_macros
from mlcost_pipeline.allocation.dimensions_sql import dimension_params, fallback_frames
from mlcost_pipeline.allocation.drivers import driver_usage
from mlcost_pipeline.allocation.pool_weights_sql import POOL_WEIGHT_CTES
from mlcost_pipeline.allocation.pools_sql import pool_frames
from mlcost_pipeline.allocation.rules import LoadedRules
from mlcost_pipeline.allocation.run_pieces_sql import DIRECT_RUN_CTES, direct_piece_select, runs_cte
from mlcost_pipeline.allocation.split_sql import largest_remainder_ctes, shares_ctes
from mlcost_pipeline.warehouse.partition_writes import replace_window_sql

_ONE = "CAST(1 AS DECIMAL(38,12))"


@dataclass(frozen=True)
class AllocationResult:
    rows: int
    reporting_currency: str


def _frames(con: duckdb.DuckDBPyConnection, loaded: LoadedRules, start: date, end: date, reporting: str):
    rules = loaded.rules
    book = RateBook(loaded.fx_rates, rules.currency.max_rate_age_days)
    frames: dict[str, pl.DataFrame] = {
        "_mlc_fx": fx_plan(con, start, end, reporting, book, rules.currency.use_provider_rates, rules.cost_basis,
                           loaded.fx_rates_file),
        **fallback_frames(rules),
        **pool_frames(rules, reporting),
        "_mlc_driver_usage": driver_usage(con, loaded, start, end),
    }  # fmt: skip
    return frames


def _lineage(method_id: str, ratio: str, unit: str, quantity: str, share: str, p: str) -> str:
    """The FOCUS 1.3 columns of a piece, from its method id, ratio, usage and target columns (prefix `p`)."""
    target = f"{p}project <> '{schema.UNALLOCATED}'"
    tags = " || ".join(f"coalesce(',\"x_{d}\":' || to_json({p}{d}), '')"
                       for d in ("model", "team", "environment", "cost_center", "run_id"))  # fmt: skip
    return f"""{method_id} AS AllocatedMethodId,
        CASE WHEN {method_id} IS NOT NULL THEN
            '{{"Elements":[{{"AllocatedRatio":' || CAST({ratio} AS VARCHAR)
            || ',"UsageUnit":' || coalesce(to_json({unit}), 'null')
            || ',"UsageQuantity":' || coalesce(CAST({quantity} AS VARCHAR), 'null')
            || '}}],"x_Share":"' || {share} || '","x_CostBasis":"' || $cost_basis || '"}}' END AS AllocatedMethodDetails,
        CASE WHEN {target} THEN coalesce({p}run_id, {p}project || coalesce('/' || {p}model, '')) END
            AS AllocatedResourceId,
        CASE WHEN {target} THEN '{{"x_project":' || to_json({p}project) || {tags} || '}}' END AS AllocatedTags"""


def allocation_sql(loaded: LoadedRules, reporting: str) -> tuple[str, dict[str, object]]:
    """Stage 2: the SELECT producing core.allocated_costs rows for [$start, $end) from `_mlc_valued`."""
    rules = loaded.rules
    basis = rules.cost_basis
    columns = ", ".join(f'"{c}"' for c, _ in schema.ALLOCATED_COLUMNS)
    sql = f"""
WITH direct AS (
    SELECT * FROM _mlc_valued WHERE pool_idx IS NULL AND day >= $start AND day < $end
), {runs_cte(rules)}, {DIRECT_RUN_CTES}, pool_charges AS (
    SELECT v.*, CASE WHEN p.scope = 'provider' THEN v.ProviderName ELSE '' END AS scope_key,
           abs(mlc_units(v.charge_amount)) AS ua, abs(mlc_units(v.charge_reporting)) AS ur
    FROM _mlc_valued AS v JOIN _mlc_pools AS p USING (pool_idx)
), {POOL_WEIGHT_CTES}, {shares_ctes("all_weights", "pool_idx, day, scope_key", "pool_w")},
{shares_ctes("rid_shares", "cid", "rid_w")}, pool_out AS (
    SELECT w.pool_idx, w.day, w.scope_key, w.pno, w.p, w.ptotal,
           row_number() OVER (ORDER BY w.pool_idx, w.day, w.scope_key, w.pno) AS wid,
           w.project, w.model, w.team, w.environment, w.cost_center, w.run_id,
           CASE WHEN w.run_id IS NOT NULL THEN 'pool_share' END AS run_basis,
           'pool:' || p.pool_id AS rule_id, p.method, w.ratio,
           {_lineage("'pool:' || p.pool_id", "w.ratio",
                     "CASE WHEN w.share IN ('cost', 'usage', 'idle') THEN p.unit END",
                     "CASE WHEN w.share IN ('cost', 'usage', 'idle') THEN w.qty END", "w.share", "w.")}
    FROM pool_w AS w JOIN _mlc_pools AS p USING (pool_idx)
), split_in AS (
    SELECT c.cid, 'pool' AS src, w.wid, w.pno, w.p, w.ptotal, c.ua, c.ur
    FROM pool_charges AS c JOIN pool_out AS w USING (pool_idx, day, scope_key)
    UNION ALL
    SELECT d.cid, 'rid', NULL, w.pno, w.p, w.ptotal, abs(mlc_units(d.charge_amount)),
           abs(mlc_units(d.charge_reporting))
    FROM direct AS d JOIN rid_w AS w USING (cid)
), {largest_remainder_ctes("split_in", "split")}, direct_pieces AS (
    SELECT {direct_piece_select("t", "'run:tag'", "'whole'")},
           0 AS piece, d.charge_amount AS amount, d.charge_reporting AS amount_reporting, {_ONE} AS ratio
    FROM direct AS d LEFT JOIN tag_runs AS t USING (cid)
    WHERE NOT EXISTS (SELECT 1 FROM rid_w AS h WHERE h.cid = d.cid)
    UNION ALL
    SELECT {direct_piece_select("h", "'run:resource_overlap'", "h.share",
                                "mlc_money(mlc_round_div(CAST(h.qty AS HUGEINT) * 10000, 36))")},
           h.pno, mlc_money(CASE WHEN d.charge_amount < 0 THEN -s.a_units ELSE s.a_units END),
           mlc_money(CASE WHEN d.charge_reporting < 0 THEN -s.r_units ELSE s.r_units END), h.ratio
    FROM split AS s JOIN direct AS d ON d.cid = s.cid JOIN rid_w AS h ON h.cid = s.cid AND h.pno = s.pno
    WHERE s.src = 'rid'
)
SELECT {columns} FROM (
    SELECT x_LineId, CAST(piece AS INTEGER) AS piece, day AS charge_date, currency AS billing_currency, amount,
        $reporting AS reporting_currency, amount_reporting, fx_rate, fx_source, $cost_basis AS cost_basis,
        project, model, team, environment, cost_center, run_id, run_basis, rule_id, method, ratio,
        $rules_hash AS rules_hash, ProviderName AS provider, ServiceName AS service_name,
        ServiceCategory AS service_category, SubAccountId AS sub_account_id, ResourceId AS resource_id,
        x_SourceSystem, {_lineage("method_id", "ratio", "usage_unit", "usage_quantity", "share", "")}
    FROM direct_pieces
    UNION ALL BY NAME
    SELECT c.x_LineId, CAST(w.pno AS INTEGER) AS piece, c.day AS charge_date, c.currency AS billing_currency,
        mlc_money(CASE WHEN c.charge_amount < 0 THEN -s.a_units ELSE s.a_units END) AS amount,
        $reporting AS reporting_currency,
        mlc_money(CASE WHEN c.charge_reporting < 0 THEN -s.r_units ELSE s.r_units END) AS amount_reporting,
        c.fx_rate, c.fx_source, $cost_basis AS cost_basis, w.project, w.model, w.team, w.environment,
        w.cost_center, w.run_id, w.run_basis, w.rule_id, w.method, w.ratio, $rules_hash AS rules_hash,
        c.ProviderName AS provider, c.ServiceName AS service_name, c.ServiceCategory AS service_category,
        c.SubAccountId AS sub_account_id, c.ResourceId AS resource_id, c.x_SourceSystem,
        w.AllocatedMethodId, w.AllocatedMethodDetails, w.AllocatedResourceId, w.AllocatedTags
    FROM split AS s JOIN pool_charges AS c ON c.cid = s.cid JOIN pool_out AS w ON w.wid = s.wid
    WHERE s.src = 'pool'
)
"""  # noqa: S608 (only our own column names and constants are formatted in; rule values are bound)
    params: dict[str, object] = {
        "reporting": reporting,
        "cost_basis": basis,
        "rules_hash": loaded.sha256,
        **dimension_params(rules, ("project", "model")),  # the runs' own project and model
        "match_run_resource": rules.runs.match_resource_id,
    }
    return sql, params


def allocate_window(
    con: duckdb.DuckDBPyConnection, loaded: LoadedRules, start: date, end: date, reporting: str
) -> AllocationResult:
    """Replace core.allocated_costs for [start, end) with the allocation of that window's charges."""
    schema.ensure_columns(con)
    install_macros(con)
    frames = _frames(con, loaded, start, end, reporting)
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        stage1, params1 = charge_stage_sql(loaded, reporting)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _mlc_valued AS {stage1}", {"start": start, "end": end, **params1})
        sql, params = allocation_sql(loaded, reporting)
        n = replace_window_sql(con, "core.allocated_costs", "charge_date", start, end, sql, params)
    finally:
        con.execute("DROP TABLE IF EXISTS _mlc_valued")
        for name in frames:
            con.unregister(name)
    return AllocationResult(rows=n, reporting_currency=reporting)
