{#- Stage 2 of the allocation: the SELECT producing core.allocated_cells rows (the pieces of each cost cell)
    for [$start, $end) from `_mlc_valued`; it runs as `INSERT INTO core.allocated_cells BY NAME <this>` in the
    allocation's transaction. Each piece keeps its integer weight `p` of `ptotal` and the cell's conversion, so
    the view core.allocated_costs (allocated_costs_view.sql) splits every line of the cell the same way.

    Direct charges stay whole or are split among the runs on their dedicated resource (_runs.sql); pooled
    charges are split among the pool's weights for the day (_pool_weights.sql), idle and fallbacks included;
    every split is exact by largest remainder on narrow integer rows (_split.sql); `__unallocated__` keeps the
    rest.

    Context (plan.py): columns (core.allocated_cells, in order), run_dims (project/model dimensions or none).
    -#}
{% import "_runs.sql" as runs %}
{% import "_pool_weights.sql" as weights %}
{% import "_split.sql" as split %}
{% from "_columns.sql" import quoted %}
{#- The FOCUS 1.3 columns of a piece, from its method id, ratio, usage and target columns (prefix `p`). -#}
{% macro lineage(method_id, ratio, unit, quantity, share, p) -%}
{% set target %}{{ p }}project <> '__unallocated__'{% endset -%}
{{ method_id }} AS AllocatedMethodId,
        CASE WHEN {{ method_id }} IS NOT NULL THEN
            '{"Elements":[{"AllocatedRatio":' || CAST({{ ratio }} AS VARCHAR)
            || ',"UsageUnit":' || coalesce(to_json({{ unit }}), 'null')
            || ',"UsageQuantity":' || coalesce(CAST({{ quantity }} AS VARCHAR), 'null')
            || '}],"x_Share":"' || {{ share }} || '","x_CostBasis":"' || $cost_basis || '"}'
            END AS AllocatedMethodDetails,
        CASE WHEN {{ target }} THEN coalesce({{ p }}run_id, {{ p }}project || coalesce('/' || {{ p }}model, '')) END
            AS AllocatedResourceId,
        CASE WHEN {{ target }} THEN '{"x_project":' || to_json({{ p }}project)
{% for d in ("model", "team", "environment", "cost_center", "run_id") %}
            || coalesce(',"x_{{ d }}":' || to_json({{ p }}{{ d }}), '')
{% endfor %}
            || '}' END AS AllocatedTags
{%- endmacro %}
WITH direct AS (
    SELECT * FROM _mlc_valued WHERE pool_idx IS NULL AND day >= $start AND day < $end
), {{ runs.runs_cte(run_dims) }}, {{ runs.direct_run_ctes() }}, pool_charges AS (
    SELECT v.*, CASE WHEN p.scope = 'provider' THEN v.ProviderName ELSE '' END AS scope_key,
           abs(mlc_units(v.charge_amount)) AS ua, abs(mlc_units(v.charge_reporting)) AS ur
    FROM _mlc_valued AS v JOIN _mlc_pools AS p USING (pool_idx)
{% set pool_shares = split.shares("all_weights", "pool_idx, day, scope_key", "pool_w") %}
{% set run_shares = split.shares("rid_shares", "cid", "rid_w") %}
), {{ weights.pool_weight_ctes() }}, {{ pool_shares }}, {{ run_shares }}, pool_out AS (
    SELECT w.pool_idx, w.day, w.scope_key, w.pno, w.p, w.ptotal,
           row_number() OVER (ORDER BY w.pool_idx, w.day, w.scope_key, w.pno) AS wid,
           w.project, w.model, w.team, w.environment, w.cost_center, w.run_id,
           CASE WHEN w.run_id IS NOT NULL THEN 'pool_share' END AS run_basis,
           'pool:' || p.pool_id AS rule_id, p.method, w.ratio,
           {{ lineage("'pool:' || p.pool_id", "w.ratio",
                      "CASE WHEN w.share IN ('cost', 'usage', 'idle') THEN p.unit END",
                      "CASE WHEN w.share IN ('cost', 'usage', 'idle') THEN w.qty END", "w.share", "w.") }}
    FROM pool_w AS w JOIN _mlc_pools AS p USING (pool_idx)
), split_in AS (
    SELECT c.cid, 'pool' AS src, w.wid, w.pno, w.p, w.ptotal, c.ua, c.ur
    FROM pool_charges AS c JOIN pool_out AS w USING (pool_idx, day, scope_key)
    UNION ALL
    SELECT d.cid, 'rid', NULL, w.pno, w.p, w.ptotal, abs(mlc_units(d.charge_amount)),
           abs(mlc_units(d.charge_reporting))
    FROM direct AS d JOIN rid_w AS w USING (cid)
), {{ split.largest_remainder("split_in", "split") }}, direct_pieces AS (
    SELECT {{ runs.direct_piece_columns("t", "'run:tag'", "'whole'") }},
        0 AS piece, d.charge_amount AS amount, d.charge_reporting AS amount_reporting, CAST(1 AS DECIMAL(38,12)) AS ratio,
        CAST(1 AS HUGEINT) AS p, CAST(1 AS HUGEINT) AS ptotal
    FROM direct AS d LEFT JOIN tag_runs AS t USING (cid)
    WHERE NOT EXISTS (SELECT 1 FROM rid_w AS h WHERE h.cid = d.cid)
    UNION ALL
    SELECT {{ runs.direct_piece_columns("h", "'run:resource_overlap'", "h.share",
                                        "mlc_money(mlc_round_div(CAST(h.qty AS HUGEINT) * 10000, 36))") }},
        h.pno, mlc_money(CASE WHEN d.charge_amount < 0 THEN -s.a_units ELSE s.a_units END),
        mlc_money(CASE WHEN d.charge_reporting < 0 THEN -s.r_units ELSE s.r_units END), h.ratio, h.p, h.ptotal
    FROM split AS s JOIN direct AS d ON d.cid = s.cid JOIN rid_w AS h ON h.cid = s.cid AND h.pno = s.pno
    WHERE s.src = 'rid'
)
SELECT {{ quoted(columns) }} FROM (
    SELECT cid, CAST(piece AS INTEGER) AS piece, line_count, p, ptotal, fx_num, fx_den,
        day AS charge_date, currency AS billing_currency, amount,
        $reporting AS reporting_currency, amount_reporting, fx_rate, fx_source, $cost_basis AS cost_basis,
        project, model, team, environment, cost_center, run_id, run_basis, rule_id, method, ratio,
        $rules_hash AS rules_hash, ProviderName AS provider, ServiceName AS service_name,
        ServiceCategory AS service_category, SubAccountId AS sub_account_id, ResourceId AS resource_id,
        x_SourceSystem, {{ lineage("method_id", "ratio", "usage_unit", "usage_quantity", "share", "") }}
    FROM direct_pieces
    UNION ALL BY NAME
    SELECT c.cid, CAST(w.pno AS INTEGER) AS piece, c.line_count, w.p, w.ptotal, c.fx_num, c.fx_den,
        c.day AS charge_date, c.currency AS billing_currency,
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
