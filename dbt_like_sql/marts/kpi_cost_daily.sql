-- The cost KPIs of marts.kpi_daily (that table is the one to query; docs/kpis.md defines every KPI).
-- Grain: one row per (date, scope_type, scope_id, kpi); date is the UTC charge day. Money is the sum of
-- amount_reporting (exact, unit = the reporting currency); shares are ratios in [0, 1] rounded to 12 decimals.
--   spend              scope org/all, project/<p>, workload/<category> (all eight categories, 0 when none)
--   spend_mtd          org, project: month-to-date through the day
--   tag_coverage       org, project: share owned through resource tags (method 'tag')
--   unallocated_share  org: share owned by '__unallocated__'
--   spot_share         org, project: share of compute cost (ServiceCategory Compute, AI and Machine Learning)
--                      priced as spot / preemptible (FOCUS PricingCategory 'Dynamic'); days with compute cost
--   gpu_pool_idle_share  pool/<pool id>: share of a usage-split GPU pool's cost kept as '__idle__'
--   gpu_utilization    pool/<pool id>: GPU-hours used by runs / GPU-hours paid, for pools that keep idle time
--   spend_baseline, spend_anomaly_score, spend_anomaly, spend_dod_change: org, project; see docs/kpis.md
--   (trailing 14 days before the day, at least 7 of them in the warehouse; z-score of the day against them).
-- partitioned_by: date
WITH pieces AS (
    SELECT p.*
    FROM marts.allocated_costs_by_workload AS p
    WHERE p.charge_date >= $start_date AND p.charge_date < $end_date
),
currency AS (
    SELECT min(reporting_currency) AS unit FROM pieces
),
scoped AS (  -- every piece twice: once for the organisation, once for its project
    SELECT 'org' AS scope_type, 'all' AS scope_id, * FROM pieces
    UNION ALL
    SELECT 'project', project, * FROM pieces
),
shares AS (
    SELECT
        charge_date AS date,
        scope_type,
        scope_id,
        sum(amount_reporting) AS total,
        sum(amount_reporting) FILTER (WHERE method = 'tag') AS tagged,
        sum(amount_reporting) FILTER (WHERE project = '__unallocated__') AS unallocated,
        sum(amount_reporting) FILTER (WHERE service_category IN ('Compute', 'AI and Machine Learning')) AS compute,
        sum(amount_reporting) FILTER (WHERE service_category IN ('Compute', 'AI and Machine Learning')
                                        AND pricing_category = 'Dynamic') AS spot
    FROM scoped
    GROUP BY ALL
),
categories (category) AS (
    VALUES ('training'), ('serving'), ('storage'), ('orchestration'), ('monitoring'), ('tooling'),
           ('data_pipeline'), ('other')
),
workload_spend AS (
    SELECT d.date, c.category, coalesce(sum(p.amount_reporting), 0) AS spend
    FROM (SELECT DISTINCT charge_date AS date FROM pieces) AS d
    CROSS JOIN categories AS c
    LEFT JOIN pieces AS p ON p.charge_date = d.date AND p.workload_category = c.category
    GROUP BY ALL
),
-- History for month-to-date and anomalies, from the project mart (earlier partitions): days the warehouse holds.
history AS (
    SELECT charge_date AS date, project, sum(amount_reporting) AS spend
    FROM marts.cost_per_project_daily
    WHERE charge_date >= least(date_trunc('month', CAST($start_date AS DATE)),
                               CAST($start_date AS DATE) - INTERVAL 14 DAY)
      AND charge_date < $end_date
    GROUP BY ALL
),
history_days AS (
    SELECT DISTINCT date FROM history
),
scope_history AS (  -- every (day, scope) the warehouse covers, 0 when the scope had no cost that day
    SELECT d.date, 'org' AS scope_type, 'all' AS scope_id, coalesce(sum(h.spend), 0) AS spend, true AS present
    FROM history_days AS d LEFT JOIN history AS h USING (date)
    GROUP BY ALL
    UNION ALL
    SELECT d.date, 'project', p.project, coalesce(h.spend, 0), h.project IS NOT NULL
    FROM history_days AS d
    CROSS JOIN (SELECT DISTINCT project FROM history) AS p
    LEFT JOIN history AS h ON h.date = d.date AND h.project = p.project
),
scope_days AS (
    SELECT
        t.date,
        t.scope_type,
        t.scope_id,
        t.spend,
        sum(h.spend) FILTER (WHERE h.date >= date_trunc('month', t.date) AND h.date <= t.date) AS mtd,
        count(h.date) FILTER (WHERE h.date < t.date AND h.date >= t.date - INTERVAL 14 DAY) AS base_days,
        avg(h.spend) FILTER (WHERE h.date < t.date AND h.date >= t.date - INTERVAL 14 DAY) AS base_mean,
        stddev_samp(h.spend) FILTER (WHERE h.date < t.date AND h.date >= t.date - INTERVAL 14 DAY) AS base_sd,
        max(h.spend) FILTER (WHERE h.date = t.date - INTERVAL 1 DAY) AS previous_day
    FROM scope_history AS t
    JOIN scope_history AS h USING (scope_type, scope_id)
    WHERE t.date >= $start_date AND t.date < $end_date AND t.present  -- a project's rows: days it has cost
    GROUP BY t.date, t.scope_type, t.scope_id, t.spend
),
gpu_pieces AS (
    SELECT
        charge_date AS date,
        substr(rule_id, 6) AS pool,
        project,
        model,
        run_id,
        AllocatedMethodDetails ->> 'x_Share' AS share,
        amount_reporting,
        TRY_CAST(AllocatedMethodDetails ->> '$.Elements[0].UsageQuantity' AS DOUBLE) AS gpu_hours
    FROM core.allocated_cells
    WHERE charge_date >= $start_date AND charge_date < $end_date
      AND method = 'proportional_usage' AND rule_id LIKE 'pool:%'
      AND AllocatedMethodDetails ->> '$.Elements[0].UsageUnit' = 'GPU-hours'
),
gpu_targets AS (  -- each target's GPU-hours of the pool-day, repeated on every charge of the pool: taken once
    SELECT date, pool, project, model, run_id, share, max(gpu_hours) AS gpu_hours
    FROM gpu_pieces
    GROUP BY ALL
),
gpu_pools AS (
    SELECT
        c.date,
        c.pool,
        c.total,
        c.idle,
        h.used_hours,
        h.idle_hours,
        h.fallback_to_idle
    FROM (SELECT date, pool, sum(amount_reporting) AS total,
                 coalesce(sum(amount_reporting) FILTER (WHERE project = '__idle__'), 0) AS idle
          FROM gpu_pieces GROUP BY ALL) AS c
    JOIN (SELECT date, pool,
                 coalesce(sum(gpu_hours) FILTER (WHERE share = 'usage'), 0) AS used_hours,
                 sum(gpu_hours) FILTER (WHERE share = 'idle') AS idle_hours,
                 bool_and(share = 'fallback' AND project = '__idle__') AS fallback_to_idle
          FROM gpu_targets GROUP BY ALL) AS h USING (date, pool)
),
kpis (date, scope_type, scope_id, kpi, value, unit) AS (
    SELECT date, scope_type, scope_id, 'spend', CAST(total AS DECIMAL(38, 12)), (SELECT unit FROM currency) FROM shares
    UNION ALL
    SELECT date, 'workload', category, 'spend', CAST(spend AS DECIMAL(38, 12)), (SELECT unit FROM currency) FROM workload_spend
    UNION ALL
    SELECT date, scope_type, scope_id, 'tag_coverage', CAST(coalesce(tagged, 0) / nullif(total, 0) AS DECIMAL(38, 12)), 'ratio'
    FROM shares WHERE total <> 0
    UNION ALL
    SELECT date, scope_type, scope_id, 'unallocated_share', CAST(coalesce(unallocated, 0) / nullif(total, 0) AS DECIMAL(38, 12)), 'ratio'
    FROM shares WHERE total <> 0 AND scope_type = 'org'
    UNION ALL
    SELECT date, scope_type, scope_id, 'spot_share', CAST(coalesce(spot, 0) / nullif(compute, 0) AS DECIMAL(38, 12)), 'ratio'
    FROM shares WHERE compute <> 0
    UNION ALL
    SELECT date, 'pool', pool, 'gpu_pool_idle_share', CAST(idle / nullif(total, 0) AS DECIMAL(38, 12)), 'ratio' FROM gpu_pools WHERE total <> 0
    UNION ALL
    SELECT date, 'pool', pool, 'gpu_utilization',
           CAST(CASE WHEN fallback_to_idle THEN 0 ELSE used_hours / nullif(used_hours + idle_hours, 0) END AS DECIMAL(38, 12)), 'ratio'
    FROM gpu_pools WHERE fallback_to_idle OR used_hours + idle_hours > 0
    UNION ALL
    SELECT date, scope_type, scope_id, 'spend_mtd', CAST(mtd AS DECIMAL(38, 12)), (SELECT unit FROM currency) FROM scope_days
    UNION ALL
    SELECT date, scope_type, scope_id, 'spend_dod_change', CAST(spend - previous_day AS DECIMAL(38, 12)), (SELECT unit FROM currency)
    FROM scope_days WHERE previous_day IS NOT NULL
    UNION ALL
    SELECT date, scope_type, scope_id, 'spend_baseline', CAST(base_mean AS DECIMAL(38, 12)), (SELECT unit FROM currency)
    FROM scope_days WHERE base_days >= 7
    UNION ALL
    SELECT date, scope_type, scope_id, 'spend_anomaly_score', CAST((spend - base_mean) / nullif(base_sd, 0) AS DECIMAL(38, 12)), 'stddev'
    FROM scope_days WHERE base_days >= 7 AND base_sd > 0
    UNION ALL
    SELECT date, scope_type, scope_id, 'spend_anomaly',
           CAST(CASE WHEN abs(spend - base_mean) >= 0.1 * abs(base_mean)
                 AND (base_sd = 0 OR abs(spend - base_mean) >= 3 * base_sd) THEN 1 ELSE 0 END AS DECIMAL(38, 12)), 'flag'
    FROM scope_days WHERE base_days >= 7
)
SELECT CAST(date AS DATE) AS date, scope_type, scope_id, kpi, CAST(value AS DECIMAL(38, 12)) AS value, unit
FROM kpis
WHERE value IS NOT NULL
