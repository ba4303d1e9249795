-- Cost of every MLflow run, from core.ml_runs and core.ml_run_costs (all days of the run summed).
-- Grain: one row per run_id of core.ml_runs, including runs with no cost row (their amounts are 0, not NULL).
-- Amounts are exact decimals in reporting_currency (the warehouse's one reporting currency):
--   direct_amount      billed: the run's own charges (tagged with the run id, or its dedicated resource);
--   pool_share_amount  billed: its GPU-hour share of shared pools;
--   billed_amount      direct_amount + pool_share_amount;
--   estimate_amount    rate-card estimate for days no charge covers (is_estimate true when any day is estimated;
--                      unpriced_estimate_days counts estimated days with no rate-card price, amount unknown);
--   total_amount       billed_amount + estimate_amount.
-- project and model: as allocation resolved them (the run's tags through the dimension rules); for a run without
-- a cost row, its raw project / model tag. duration_hours and gpu_hours: of the whole run (NULL while running).
-- metrics: JSON object of the MLflow metrics named in config (MLCOST_KPI_METRICS, bound as $kpi_metrics) that the
-- run logged, latest value each; quality_metric: the value of MLCOST_KPI_QUALITY_METRIC ($quality_metric), DOUBLE,
-- NULL when not logged. The same values in long form: marts.run_metrics.
WITH costs AS (
    SELECT
        run_id,
        CAST(coalesce(sum(amount_reporting) FILTER (WHERE cost_source = 'direct'), 0) AS DECIMAL(38, 12))
            AS direct_amount,
        CAST(coalesce(sum(amount_reporting) FILTER (WHERE cost_source = 'pool_share'), 0) AS DECIMAL(38, 12))
            AS pool_share_amount,
        CAST(coalesce(sum(amount_reporting) FILTER (WHERE is_estimate), 0) AS DECIMAL(38, 12)) AS estimate_amount,
        coalesce(bool_or(is_estimate), false) AS is_estimate,
        count(*) FILTER (WHERE is_estimate AND amount_reporting IS NULL) AS unpriced_estimate_days,
        count(DISTINCT charge_date) AS cost_days,
        min(project) AS project,
        min(model) AS model,
        min(reporting_currency) AS reporting_currency
    FROM core.ml_run_costs
    GROUP BY run_id
)
SELECT
    r.run_id,
    r.run_name,
    r.experiment_id,
    r.experiment_name,
    r.status,
    coalesce(c.project, r.project_tag) AS project,
    coalesce(c.model, r.model_tag) AS model,
    r.workload,
    r.estimator,
    r.instance_type,
    r.gpu_count,
    r.start_time,
    r.end_time,
    r.x_RunDate AS run_date,
    r.duration_hours,
    r.gpu_hours,
    coalesce(c.direct_amount, 0) AS direct_amount,
    coalesce(c.pool_share_amount, 0) AS pool_share_amount,
    CAST(coalesce(c.direct_amount, 0) + coalesce(c.pool_share_amount, 0) AS DECIMAL(38, 12)) AS billed_amount,
    coalesce(c.estimate_amount, 0) AS estimate_amount,
    coalesce(c.is_estimate, false) AS is_estimate,
    coalesce(c.unpriced_estimate_days, 0) AS unpriced_estimate_days,
    CAST(coalesce(c.direct_amount, 0) + coalesce(c.pool_share_amount, 0) + coalesce(c.estimate_amount, 0)
         AS DECIMAL(38, 12)) AS total_amount,
    c.reporting_currency,
    coalesce(c.cost_days, 0) AS cost_days,
    (SELECT json_group_object(m.name, TRY_CAST(r.metrics ->> m.name AS DOUBLE))
     FROM unnest($kpi_metrics) AS m(name)
     WHERE TRY_CAST(r.metrics ->> m.name AS DOUBLE) IS NOT NULL) AS metrics,
    TRY_CAST(r.metrics ->> $quality_metric AS DOUBLE) AS quality_metric
FROM core.ml_runs AS r
LEFT JOIN costs AS c USING (run_id)
