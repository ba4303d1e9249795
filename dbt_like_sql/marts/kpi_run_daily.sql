-- The run KPIs of marts.kpi_daily (query that table; docs/kpis.md defines every KPI), from marts.cost_per_run.
-- Grain: one row per (date, scope_type, scope_id, kpi); date is the UTC day the runs started (run_date). Money is
-- the runs' total_amount (billed + estimate, exact; unit = the reporting currency).
--   runs_started          org, project, experiment, start_hour/<00..23>, estimator/<name or (none)>: run count
--   run_hours             org, project, experiment: hours of the runs that have ended
--   avg_run_hours         experiment: run_hours / ended runs
--   cost_per_training_hour  org, project: cost of ended training runs / their hours (a run is training unless its
--                         workload tag says serving or data pipeline)
--   cost_per_gpu_hour     org, project: cost of ended runs with GPU-hours / those GPU-hours
--   failed_run_cost       org, project: cost of runs that ended FAILED or KILLED (waste)
--   failed_run_share      org, project: failed_run_cost / the cost of all the day's runs
--   cost_per_finished_run, cost_per_failed_run  org: average cost of a FINISHED / a FAILED or KILLED run
-- partitioned_by: date
WITH runs AS (
    SELECT
        *,
        end_time IS NOT NULL AND duration_hours IS NOT NULL AS ended,
        status IN ('FAILED', 'KILLED') AS failed,
        coalesce(replace(replace(lower(trim(workload)), '-', '_'), ' ', '_'), '') NOT IN (
            'serving', 'inference', 'batch_inference', 'online_inference', 'prediction', 'endpoint',
            'data_pipeline', 'data', 'etl', 'feature_engineering', 'features', 'preprocessing', 'ingestion'
        ) AS training
    FROM marts.cost_per_run
    WHERE run_date >= $start_date AND run_date < $end_date
),
currency AS (
    SELECT min(reporting_currency) AS unit FROM marts.cost_per_run WHERE reporting_currency IS NOT NULL
),
scoped AS (
    SELECT 'org' AS scope_type, 'all' AS scope_id, * FROM runs
    UNION ALL
    SELECT 'project', coalesce(project, '(none)'), * FROM runs
    UNION ALL
    SELECT 'experiment', experiment_name, * FROM runs
    UNION ALL
    SELECT 'start_hour', lpad(CAST(hour(start_time) AS VARCHAR), 2, '0'), * FROM runs
    UNION ALL
    SELECT 'estimator', coalesce(estimator, '(none)'), * FROM runs
),
agg AS (
    SELECT
        run_date AS date,
        scope_type,
        scope_id,
        count(*) AS runs_started,
        count(*) FILTER (WHERE ended) AS ended_runs,
        coalesce(sum(duration_hours) FILTER (WHERE ended), 0) AS run_hours,
        sum(total_amount) FILTER (WHERE ended AND training) AS training_cost,
        sum(duration_hours) FILTER (WHERE ended AND training) AS training_hours,
        sum(total_amount) FILTER (WHERE ended AND gpu_hours > 0) AS gpu_cost,
        sum(gpu_hours) FILTER (WHERE ended AND gpu_hours > 0) AS gpu_hours,
        coalesce(sum(total_amount) FILTER (WHERE failed), 0) AS failed_cost,
        sum(total_amount) AS run_cost,
        avg(total_amount) FILTER (WHERE status = 'FINISHED') AS cost_per_finished_run,
        avg(total_amount) FILTER (WHERE failed) AS cost_per_failed_run
    FROM scoped
    GROUP BY ALL
),
kpis (date, scope_type, scope_id, kpi, value, unit) AS (
    SELECT date, scope_type, scope_id, 'runs_started', CAST(runs_started AS DECIMAL(38, 12)), 'runs' FROM agg
    UNION ALL
    SELECT date, scope_type, scope_id, 'run_hours', CAST(run_hours AS DECIMAL(38, 12)), 'hours'
    FROM agg WHERE scope_type IN ('org', 'project', 'experiment')
    UNION ALL
    SELECT date, scope_type, scope_id, 'avg_run_hours', CAST(run_hours / nullif(ended_runs, 0) AS DECIMAL(38, 12)), 'hours'
    FROM agg WHERE scope_type = 'experiment' AND ended_runs > 0
    UNION ALL
    SELECT date, scope_type, scope_id, 'cost_per_training_hour', CAST(training_cost / nullif(training_hours, 0) AS DECIMAL(38, 12)),
           (SELECT unit FROM currency) || ' per hour'
    FROM agg WHERE scope_type IN ('org', 'project') AND training_hours > 0
    UNION ALL
    SELECT date, scope_type, scope_id, 'cost_per_gpu_hour', CAST(gpu_cost / nullif(gpu_hours, 0) AS DECIMAL(38, 12)),
           (SELECT unit FROM currency) || ' per GPU-hour'
    FROM agg WHERE scope_type IN ('org', 'project') AND gpu_hours > 0
    UNION ALL
    SELECT date, scope_type, scope_id, 'failed_run_cost', CAST(failed_cost AS DECIMAL(38, 12)), (SELECT unit FROM currency)
    FROM agg WHERE scope_type IN ('org', 'project')
    UNION ALL
    SELECT date, scope_type, scope_id, 'failed_run_share', CAST(failed_cost / nullif(run_cost, 0) AS DECIMAL(38, 12)), 'ratio'
    FROM agg WHERE scope_type IN ('org', 'project') AND run_cost > 0
    UNION ALL
    SELECT date, scope_type, scope_id, 'cost_per_finished_run', CAST(cost_per_finished_run AS DECIMAL(38, 12)), (SELECT unit FROM currency)
    FROM agg WHERE scope_type = 'org'
    UNION ALL
    SELECT date, scope_type, scope_id, 'cost_per_failed_run', CAST(cost_per_failed_run AS DECIMAL(38, 12)), (SELECT unit FROM currency)
    FROM agg WHERE scope_type = 'org'
)
SELECT CAST(date AS DATE) AS date, scope_type, scope_id, kpi, CAST(value AS DECIMAL(38, 12)) AS value, unit
FROM kpis
WHERE value IS NOT NULL
