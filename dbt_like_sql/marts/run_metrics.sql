-- The MLflow metrics named in config, one row per run and metric: the long form of marts.cost_per_run.metrics,
-- so the metric list (MLCOST_KPI_METRICS, bound as $kpi_metrics) can change without changing any table's columns.
-- Grain: one row per (run_id, metric) the run logged (latest value, DOUBLE). is_quality_metric: the metric is
-- MLCOST_KPI_QUALITY_METRIC ($quality_metric), the one used for cost per quality point and the quadrant.
-- Run attributes (model, project, status, run_date, total_amount in reporting_currency) come from
-- marts.cost_per_run, so a per-dollar figure needs no join.
SELECT
    c.run_id,
    m.name AS metric,
    TRY_CAST(r.metrics ->> m.name AS DOUBLE) AS value,
    m.name = $quality_metric AS is_quality_metric,
    c.experiment_name,
    c.project,
    c.model,
    c.status,
    c.run_date,
    c.total_amount,
    c.reporting_currency
FROM marts.cost_per_run AS c
JOIN core.ml_runs AS r USING (run_id)
CROSS JOIN unnest($kpi_metrics) AS m(name)
WHERE TRY_CAST(r.metrics ->> m.name AS DOUBLE) IS NOT NULL
