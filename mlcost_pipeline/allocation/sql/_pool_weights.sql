{#- Weights of each pool's targets per day, in DuckDB SQL: who shares a pooled charge, and how much.

    Input relations: `pool_charges` (charges a pool took, with `scope_key`: '' or the provider for scope
    provider), `pool_days`, `direct` (charges no pool took), `runs`, and the registered frames `_mlc_pools`,
    `_mlc_targets`, `_mlc_driver_usage`. Output: `all_weights(pool_idx, day, scope_key, project, model, team,
    environment, cost_center, run_id, qty, share, tno)`, every qty > 0, and at least one row for every pool
    day:
    - even / fixed: the listed targets, weight 1 / their percentage (`share` target);
    - proportional_cost: each project's direct cost that day in the reporting currency, floored at 0, all
      providers or the charge's provider (scope), only listed targets when targets are listed (`share` cost);
    - proportional_usage: the driver's quantity that day at the pool's grain (`share` usage) and, with idle
      `keep`, the capacity no one used as `__idle__` (`share` idle). GPU-hours are gpu_count x the run's
      overlap with the UTC day, exact to 12 decimals; a run without a project tag counts as `__unallocated__`.
    - a pool day whose weights are all zero or absent falls back (`share` fallback): even among targets, all
      to `__idle__`, or all to `__unallocated__`. Cost is never dropped.
    All quantities are exact decimals, so sums (and hence the split) do not depend on row order. -#}
{% macro pool_weight_ctes() -%}
pool_days AS (
    SELECT DISTINCT pool_idx, day, scope_key FROM pool_charges
), pool_day_bounds AS (
    SELECT DISTINCT pool_idx, day, CAST(day AS TIMESTAMP) AS day_start,
           CAST(day AS TIMESTAMP) + INTERVAL 1 DAY AS day_end
    FROM pool_days
), run_usage AS (
    SELECT b.pool_idx, b.day, coalesce(r.run_project, '__unallocated__') AS project, r.run_model AS model, r.run_id,
           mlc_money(mlc_round_div(CAST(r.run_gpu_count AS HUGEINT)
               * date_diff('microsecond', greatest(r.run_start, b.day_start),
                           least(coalesce(r.run_end, b.day_end), b.day_end)) * 10000, 36)) AS qty
    FROM pool_day_bounds AS b
    JOIN _mlc_pools AS p USING (pool_idx)
    JOIN runs AS r ON r.run_start < b.day_end AND coalesce(r.run_end, b.day_end) > b.day_start
    WHERE p.driver = 'gpu_hours' AND coalesce(r.run_gpu_count, 0) > 0
      AND (p.run_cluster IS NULL OR r.run_cluster = p.run_cluster)
      AND (p.run_instance_regex IS NULL OR coalesce(regexp_matches(r.run_instance_type, p.run_instance_regex), false))
), table_usage AS (
    SELECT b.pool_idx, b.day, u.project, u.model, CAST(NULL AS VARCHAR) AS run_id, u.quantity AS qty
    FROM pool_day_bounds AS b
    JOIN _mlc_pools AS p USING (pool_idx)
    JOIN _mlc_driver_usage AS u ON u.driver = p.driver AND u.day = b.day
), usage AS (
    SELECT u.pool_idx, u.day, u.project,
           CASE WHEN p.grain <> 'project' THEN u.model END AS model,
           CASE WHEN p.grain = 'run' THEN u.run_id END AS run_id,
           sum(u.qty) AS qty
    FROM (SELECT * FROM run_usage UNION ALL SELECT * FROM table_usage) AS u JOIN _mlc_pools AS p USING (pool_idx)
    GROUP BY ALL
), used AS (
    SELECT pool_idx, day, sum(qty) AS used FROM usage GROUP BY ALL
), consumed AS (
    SELECT c.pool_idx, c.day, sum(c.ConsumedQuantity) AS quantity
    FROM pool_charges AS c JOIN _mlc_pools AS p USING (pool_idx)
    WHERE p.cap_from_cq AND c.ConsumedQuantity IS NOT NULL
      AND (len(p.cap_skus) = 0 OR list_contains(p.cap_skus, c.SkuId))
      AND (p.cap_unit IS NULL OR c.ConsumedUnit = p.cap_unit)
    GROUP BY ALL
), idle AS (
    SELECT u.pool_idx, u.day,
           greatest(coalesce(p.cap_per_day,
                             mlc_money(mlc_muldiv(mlc_units(k.quantity), mlc_units(p.cap_num),
                                                  mlc_units(p.cap_den))), 0) - u.used, 0) AS qty
    FROM used AS u JOIN _mlc_pools AS p USING (pool_idx)
    LEFT JOIN consumed AS k USING (pool_idx, day)
    WHERE p.idle = 'keep' AND u.used > 0
), direct_cost AS (
    SELECT day, ProviderName AS provider, owner_project AS project, sum(charge_reporting) AS cost
    FROM direct WHERE owner_project IS NOT NULL GROUP BY ALL
), weights AS (
    SELECT d.pool_idx, d.day, d.scope_key, t.project, t.model, t.team, t.environment, t.cost_center,
           CAST(NULL AS VARCHAR) AS run_id, t.weight AS qty, 'target' AS share, t.target_no AS tno
    FROM pool_days AS d JOIN _mlc_pools AS p USING (pool_idx) JOIN _mlc_targets AS t USING (pool_idx)
    WHERE p.method IN ('even', 'fixed')
    UNION ALL
    SELECT d.pool_idx, d.day, d.scope_key, c.project, NULL, NULL, NULL, NULL, NULL,
           greatest(sum(c.cost), 0), 'cost', 0
    FROM pool_days AS d JOIN _mlc_pools AS p USING (pool_idx) JOIN direct_cost AS c ON c.day = d.day
    WHERE p.method = 'proportional_cost' AND (d.scope_key = '' OR c.provider = d.scope_key)
      AND (NOT p.has_targets
           OR EXISTS (SELECT 1 FROM _mlc_targets AS t WHERE t.pool_idx = d.pool_idx AND t.project = c.project))
    GROUP BY d.pool_idx, d.day, d.scope_key, c.project
    UNION ALL
    SELECT pool_idx, day, '', project, model, NULL, NULL, NULL, run_id, qty, 'usage', 0 FROM usage
    UNION ALL
    SELECT pool_idx, day, '', '__idle__', NULL, NULL, NULL, NULL, NULL, qty, 'idle', 0 FROM idle
), positive AS (
    SELECT * FROM weights WHERE qty > 0
), uncovered AS (
    SELECT d.* FROM pool_days AS d
    WHERE NOT EXISTS (SELECT 1 FROM positive AS w
                      WHERE w.pool_idx = d.pool_idx AND w.day = d.day AND w.scope_key = d.scope_key)
), all_weights_raw AS (
    SELECT * FROM positive
    UNION ALL
    SELECT d.pool_idx, d.day, d.scope_key, t.project, t.model, t.team, t.environment, t.cost_center, NULL,
           CAST(1 AS DECIMAL(38,12)), 'fallback', t.target_no
    FROM uncovered AS d JOIN _mlc_pools AS p USING (pool_idx) JOIN _mlc_targets AS t USING (pool_idx)
    WHERE p.fallback = 'even'
    UNION ALL
    SELECT d.pool_idx, d.day, d.scope_key,
           CASE WHEN p.fallback = 'idle' THEN '__idle__' ELSE '__unallocated__' END, NULL, NULL, NULL, NULL, NULL,
           CAST(1 AS DECIMAL(38,12)), 'fallback', 0
    FROM uncovered AS d JOIN _mlc_pools AS p USING (pool_idx)
    WHERE p.fallback IN ('idle', 'unallocated')
), all_weights AS (
    SELECT *, concat_ws('|', CASE share WHEN 'idle' THEN '1' WHEN 'fallback' THEN '2' ELSE '0' END,
                        lpad(CAST(tno AS VARCHAR), 6, '0'), project, coalesce(model, ''), coalesce(team, ''),
                        coalesce(environment, ''), coalesce(cost_center, ''), coalesce(run_id, '')) AS sort_key
    FROM all_weights_raw
)
{%- endmacro %}
