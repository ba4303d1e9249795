-- Cost per ML model version per day: marts.cost_per_model_daily split by the registered version each run led to
-- (marts.model_version_runs).
-- Grain: one row per (charge_date, model, project, model_version, billing_currency); exact decimals in the billing
-- currency. A piece of cost belongs to a version when it belongs to a run linked to that version; everything else
-- of the model (serving, storage, runs that led to no version yet) has model_version NULL. So per
-- (charge_date, model, project, billing_currency) the rows add up to marts.cost_per_model_daily.amount exactly.
-- model_name: the registry's name of the model; run_count: distinct runs contributing; training_amount: the part
-- whose workload category is training.
-- partitioned_by: charge_date
SELECT
    p.charge_date,
    p.model,
    p.project,
    p.model_version,
    p.model_name,
    p.billing_currency,
    CAST(sum(p.amount) AS DECIMAL(38, 12)) AS amount,
    CAST(coalesce(sum(p.amount) FILTER (WHERE p.workload_category = 'training'), 0) AS DECIMAL(38, 12))
        AS training_amount,
    count(DISTINCT p.run_id) AS run_count,
    CAST(sum(p.cell_lines) AS BIGINT) AS line_count,
    p.reporting_currency,
    CAST(sum(p.amount_reporting) AS DECIMAL(38, 12)) AS amount_reporting
FROM (
    -- a cell's lines count once per group, however many of its pieces the group has
    SELECT w.*, v.model_version, v.model_name,
           CASE WHEN row_number() OVER (PARTITION BY w.charge_date, w.cid, w.model, w.project, v.model_version) = 1
                THEN w.line_count ELSE 0 END AS cell_lines
    FROM marts.allocated_costs_by_workload AS w
    LEFT JOIN marts.model_version_runs AS v ON v.run_id = w.run_id
    WHERE w.charge_date >= $start_date AND w.charge_date < $end_date
      AND w.model IS NOT NULL
) AS p
GROUP BY p.charge_date, p.model, p.project, p.model_version, p.model_name, p.billing_currency, p.reporting_currency
