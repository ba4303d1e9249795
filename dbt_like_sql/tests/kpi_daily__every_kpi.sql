-- Completeness: every day marts.kpi_daily holds carries every KPI that applies to it (docs/kpis.md says when each
-- applies). Expected rows are derived from the inputs, not from the KPI SQL: cost KPIs on every day with allocated
-- cost (per project on its days; spot share on days with compute cost); a GPU pool's idle share on each day the
-- pool split cost by GPU-hours, its utilization when it kept idle hours; anomaly KPIs once 7 of the 14 days
-- before hold cost; run KPIs on each day runs started; model KPIs for each model on each day it started runs;
-- a per-dollar KPI for each metric named in config ($kpi_metrics) that a model's finished run logged that day;
-- cycle time for each version registered or promoted that day. Returns the missing (date, scope_type, scope_id,
-- kpi) rows.
-- asset: marts.kpi_daily
WITH days AS (
    SELECT DISTINCT date FROM marts.kpi_daily
),
currency AS (  -- as kpi_model_daily names it: a day may have run estimates and no billed cost at all
    SELECT lower(min(reporting_currency)) AS unit FROM marts.cost_per_run WHERE reporting_currency IS NOT NULL
),
cost_days AS (
    SELECT DISTINCT charge_date AS date FROM core.allocated_cells WHERE charge_date IN (SELECT date FROM days)
),
covered_days AS (
    SELECT DISTINCT charge_date AS date FROM marts.cost_per_project_daily
),
runs AS (
    SELECT * FROM marts.cost_per_run WHERE run_date IN (SELECT date FROM days)
),
expected (date, scope_type, scope_id, kpi) AS (
    SELECT d.date, 'org', 'all', k.kpi
    FROM cost_days AS d
    CROSS JOIN (VALUES ('spend'), ('spend_mtd'), ('tag_coverage'), ('unallocated_share')) AS k(kpi)
    UNION ALL
    SELECT d.date, 'workload', c.category, 'spend'
    FROM cost_days AS d
    CROSS JOIN (VALUES ('training'), ('serving'), ('storage'), ('orchestration'), ('monitoring'), ('tooling'),
                       ('data_pipeline'), ('other')) AS c(category)
    UNION ALL
    SELECT DISTINCT a.charge_date, 'project', a.project, k.kpi
    FROM core.allocated_cells AS a
    CROSS JOIN (VALUES ('spend'), ('spend_mtd'), ('tag_coverage')) AS k(kpi)
    WHERE a.charge_date IN (SELECT date FROM days)
    UNION ALL
    SELECT DISTINCT charge_date, 'org', 'all', 'spot_share'
    FROM core.allocated_cells
    WHERE charge_date IN (SELECT date FROM days) AND service_category IN ('Compute', 'AI and Machine Learning')
    UNION ALL
    SELECT DISTINCT charge_date, 'pool', substr(rule_id, 6), 'gpu_utilization'
    FROM core.allocated_cells
    WHERE charge_date IN (SELECT date FROM days) AND method = 'proportional_usage'
      AND AllocatedMethodDetails ->> '$.Elements[0].UsageUnit' = 'GPU-hours'
      AND AllocatedMethodDetails ->> 'x_Share' = 'idle'
    UNION ALL
    SELECT DISTINCT charge_date, 'pool', substr(rule_id, 6), 'gpu_pool_idle_share'
    FROM core.allocated_cells
    WHERE charge_date IN (SELECT date FROM days) AND method = 'proportional_usage'
      AND AllocatedMethodDetails ->> '$.Elements[0].UsageUnit' = 'GPU-hours'
    UNION ALL
    SELECT d.date, 'org', 'all', k.kpi
    FROM cost_days AS d
    CROSS JOIN (VALUES ('spend_anomaly'), ('spend_baseline')) AS k(kpi)
    WHERE (SELECT count(*) FROM covered_days AS h WHERE h.date < d.date AND h.date >= d.date - INTERVAL 14 DAY) >= 7
    UNION ALL
    SELECT DISTINCT r.run_date, 'org', 'all', k.kpi
    FROM runs AS r
    CROSS JOIN (VALUES ('runs_started'), ('run_hours'), ('failed_run_cost')) AS k(kpi)
    UNION ALL
    SELECT DISTINCT run_date, 'experiment', experiment_name, 'runs_started' FROM runs
    UNION ALL
    SELECT DISTINCT run_date, 'start_hour', lpad(CAST(hour(start_time) AS VARCHAR), 2, '0'), 'runs_started' FROM runs
    UNION ALL
    SELECT DISTINCT run_date, 'estimator', coalesce(estimator, '(none)'), 'runs_started' FROM runs
    UNION ALL
    SELECT DISTINCT run_date, 'org', 'all', 'cost_per_gpu_hour' FROM runs WHERE gpu_hours > 0 AND end_time IS NOT NULL
    UNION ALL
    SELECT DISTINCT run_date, 'model', model, 'run_cost_30d' FROM runs WHERE model IS NOT NULL
    UNION ALL
    SELECT DISTINCT m.run_date, 'model', m.model, m.metric || '_per_' || (SELECT unit FROM currency)
    FROM marts.run_metrics AS m
    WHERE m.run_date IN (SELECT date FROM days) AND m.status = 'FINISHED' AND m.model IS NOT NULL
      AND list_contains($kpi_metrics, m.metric)
      AND (SELECT sum(total_amount) FROM runs AS r WHERE r.model = m.model AND r.run_date = m.run_date) > 0
    UNION ALL
    SELECT DISTINCT m.run_date, 'model', m.model, k.kpi
    FROM marts.run_metrics AS m
    CROSS JOIN (VALUES ('quality_best_30d'), ('cost_quality_quadrant')) AS k(kpi)
    WHERE m.run_date IN (SELECT date FROM days) AND m.status = 'FINISHED' AND m.model IS NOT NULL
      AND m.is_quality_metric
    UNION ALL
    SELECT DISTINCT CAST(registered_at AS DATE), 'model_version', model_name || '/v' || model_version,
           'cycle_time_to_registration_hours'
    FROM marts.model_version_runs WHERE CAST(registered_at AS DATE) IN (SELECT date FROM days)
    UNION ALL
    SELECT DISTINCT CAST(production_at AS DATE), 'model_version', model_name || '/v' || model_version,
           'cycle_time_total_hours'
    FROM marts.model_version_runs WHERE CAST(production_at AS DATE) IN (SELECT date FROM days)
)
SELECT e.date, e.scope_type, e.scope_id, e.kpi
FROM (SELECT DISTINCT * FROM expected) AS e
LEFT JOIN marts.kpi_daily AS k USING (date, scope_type, scope_id, kpi)
WHERE k.kpi IS NULL
ORDER BY ALL
