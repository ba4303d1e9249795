-- Cost and run time per MLflow experiment, from marts.cost_per_run.
-- Grain: one row per (experiment_id, experiment_name). Amounts are exact decimals in reporting_currency, sums of
-- the runs' amounts (see marts.cost_per_run): billed_amount, estimate_amount, total_amount, and failed_amount,
-- the total cost of runs that ended FAILED or KILLED (waste). duration_hours and gpu_hours sum the finished runs' hours (runs still going
-- have none yet). projects: the distinct projects of its runs, comma-separated (an experiment may span several).
SELECT
    experiment_id,
    experiment_name,
    string_agg(DISTINCT project, ',' ORDER BY project) AS projects,
    count(*) AS run_count,
    count(*) FILTER (WHERE status = 'FINISHED') AS finished_runs,
    count(*) FILTER (WHERE status IN ('FAILED', 'KILLED')) AS failed_runs,
    count(*) FILTER (WHERE is_estimate) AS estimated_runs,
    min(start_time) AS first_run_start,
    max(end_time) AS last_run_end,
    CAST(coalesce(sum(duration_hours), 0) AS DECIMAL(38, 12)) AS duration_hours,
    CAST(coalesce(sum(gpu_hours), 0) AS DECIMAL(38, 12)) AS gpu_hours,
    CAST(sum(billed_amount) AS DECIMAL(38, 12)) AS billed_amount,
    CAST(sum(estimate_amount) AS DECIMAL(38, 12)) AS estimate_amount,
    CAST(sum(total_amount) AS DECIMAL(38, 12)) AS total_amount,
    CAST(coalesce(sum(total_amount) FILTER (WHERE status IN ('FAILED', 'KILLED')), 0) AS DECIMAL(38, 12))
        AS failed_amount,
    min(reporting_currency) AS reporting_currency
FROM marts.cost_per_run
GROUP BY experiment_id, experiment_name
