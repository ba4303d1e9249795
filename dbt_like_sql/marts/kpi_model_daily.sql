-- The model KPIs of marts.kpi_daily (query that table; docs/kpis.md defines every KPI): quality for money over a
-- trailing 30-day window, and cycle time per registered version.
-- Grain: one row per (date, scope_type, scope_id, kpi). For scope model/<model>, every day of the window on which
-- the model has runs started in the 30 days ending that day (marts.cost_per_run; cost = their total_amount in the
-- reporting currency; best = the highest value among their FINISHED runs, from marts.run_metrics):
--   run_cost_30d             cost of the model's runs
--   quality_best_30d         best value of the quality metric (MLCOST_KPI_QUALITY_METRIC, $quality_metric)
--   <metric>_per_<currency>  best value of each metric of MLCOST_KPI_METRICS ($kpi_metrics) / run_cost_30d
--   cost_per_quality_point   run_cost_30d / quality_best_30d
--   cost_quality_quadrant    1 high quality, low cost; 2 high quality, high cost; 3 low quality, low cost;
--                            4 low quality, high cost; "high"/"low" against that day's median over the models
--                            that have both figures (quality >= median is high, cost <= median is low)
-- For scope model_version/<model_name>/v<version> (marts.model_version_runs):
--   cycle_time_to_registration_hours  first run start -> registration, dated the registration day
--   cycle_time_to_production_hours    registration -> production alias, dated the production day
--   cycle_time_total_hours            first run start -> production alias, dated the production day
-- partitioned_by: date
WITH days AS (
    SELECT CAST(d AS DATE) AS date
    FROM generate_series(CAST($start_date AS TIMESTAMP), CAST($end_date AS TIMESTAMP) - INTERVAL 1 DAY,
                         INTERVAL 1 DAY) AS t(d)
),
currency AS (
    SELECT min(reporting_currency) AS unit FROM marts.cost_per_run WHERE reporting_currency IS NOT NULL
),
model_cost AS (
    SELECT d.date, r.model, sum(r.total_amount) AS cost
    FROM days AS d
    JOIN marts.cost_per_run AS r
        ON r.run_date <= d.date AND r.run_date > d.date - INTERVAL 30 DAY AND r.model IS NOT NULL
    GROUP BY ALL
),
model_best AS (
    SELECT d.date, m.model, m.metric, max(m.value) AS best, bool_or(m.is_quality_metric) AS is_quality_metric
    FROM days AS d
    JOIN marts.run_metrics AS m
        ON m.run_date <= d.date AND m.run_date > d.date - INTERVAL 30 DAY AND m.model IS NOT NULL
       AND m.status = 'FINISHED'
    GROUP BY ALL
),
quality AS (
    SELECT c.date, c.model, c.cost, b.best AS quality
    FROM model_cost AS c
    JOIN model_best AS b ON b.date = c.date AND b.model = c.model AND b.is_quality_metric
),
medians AS (
    SELECT date, median(cost) AS cost_median, median(quality) AS quality_median FROM quality GROUP BY date
),
version_cycle AS (
    SELECT model_name, model_version, min(run_start) AS first_run_start, min(registered_at) AS registered_at,
           min(production_at) AS production_at
    FROM marts.model_version_runs
    GROUP BY model_name, model_version
),
kpis (date, scope_type, scope_id, kpi, value, unit) AS (
    SELECT date, 'model', model, 'run_cost_30d', CAST(cost AS DECIMAL(38, 12)), (SELECT unit FROM currency) FROM model_cost
    UNION ALL
    SELECT date, 'model', model, 'quality_best_30d', CAST(quality AS DECIMAL(38, 12)), $quality_metric FROM quality
    UNION ALL
    SELECT b.date, 'model', b.model, b.metric || '_per_' || lower((SELECT unit FROM currency)), CAST(b.best / nullif(c.cost, 0) AS DECIMAL(38, 12)),
           b.metric || ' per ' || (SELECT unit FROM currency)
    FROM model_best AS b JOIN model_cost AS c USING (date, model)
    WHERE c.cost > 0
    UNION ALL
    SELECT date, 'model', model, 'cost_per_quality_point', CAST(cost / nullif(quality, 0) AS DECIMAL(38, 12)),
           (SELECT unit FROM currency) || ' per ' || $quality_metric
    FROM quality WHERE quality > 0
    UNION ALL
    SELECT q.date, 'model', q.model, 'cost_quality_quadrant',
           CAST(CASE WHEN q.quality >= m.quality_median THEN (CASE WHEN q.cost <= m.cost_median THEN 1 ELSE 2 END)
                ELSE (CASE WHEN q.cost <= m.cost_median THEN 3 ELSE 4 END) END AS DECIMAL(38, 12)),
           'quadrant'
    FROM quality AS q JOIN medians AS m USING (date)
    UNION ALL
    SELECT CAST(registered_at AS DATE), 'model_version', model_name || '/v' || model_version,
           'cycle_time_to_registration_hours', CAST(epoch(registered_at - first_run_start) / 3600 AS DECIMAL(38, 12)), 'hours'
    FROM version_cycle
    UNION ALL
    SELECT CAST(production_at AS DATE), 'model_version', model_name || '/v' || model_version,
           'cycle_time_to_production_hours', CAST(epoch(production_at - registered_at) / 3600 AS DECIMAL(38, 12)), 'hours'
    FROM version_cycle WHERE production_at IS NOT NULL
    UNION ALL
    SELECT CAST(production_at AS DATE), 'model_version', model_name || '/v' || model_version,
           'cycle_time_total_hours', CAST(epoch(production_at - first_run_start) / 3600 AS DECIMAL(38, 12)), 'hours'
    FROM version_cycle WHERE production_at IS NOT NULL
)
SELECT CAST(date AS DATE) AS date, scope_type, scope_id, kpi, CAST(value AS DECIMAL(38, 12)) AS value, unit
FROM kpis
WHERE value IS NOT NULL AND date >= $start_date AND date < $end_date
