-- Cost per ML model per day, from marts.allocated_costs_by_workload (the allocation's pieces with their workload).
-- Grain: one row per (charge_date, model, project, billing_currency); exact decimals in the billing currency.
-- Only cost that names a model is listed: cost without a model (shared infrastructure, unallocated cost) is in
-- marts.cost_per_project_daily; the two marts' totals differ by exactly that unmodelled cost.
-- line_count: source charges (lines of core.focus_costs) contributing. amount_reporting: the same cost in reporting_currency.
-- Workload split of `amount` (billing currency; the five add up to amount exactly): training_amount,
-- serving_amount, storage_amount, data_pipeline_amount, and other_amount (orchestration, monitoring, tooling and
-- other). The category of each piece is decided in marts.allocated_costs_by_workload (see docs/kpis.md).
-- partitioned_by: charge_date
SELECT
    charge_date,
    model,
    project,
    billing_currency,
    CAST(sum(amount) AS DECIMAL(38, 12)) AS amount,
    CAST(sum(cell_lines) AS BIGINT) AS line_count,
    reporting_currency,
    CAST(sum(amount_reporting) AS DECIMAL(38, 12)) AS amount_reporting,
    CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'training'), 0) AS DECIMAL(38, 12))
        AS training_amount,
    CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'serving'), 0) AS DECIMAL(38, 12))
        AS serving_amount,
    CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'storage'), 0) AS DECIMAL(38, 12))
        AS storage_amount,
    CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'data_pipeline'), 0) AS DECIMAL(38, 12))
        AS data_pipeline_amount,
    CAST(coalesce(sum(amount) FILTER (
        WHERE workload_category NOT IN ('training', 'serving', 'storage', 'data_pipeline')), 0) AS DECIMAL(38, 12))
        AS other_amount
FROM (
    -- a cell's lines count once per model and project, however many of its pieces they have
    SELECT *, CASE WHEN row_number() OVER (PARTITION BY charge_date, cid, model, project) = 1 THEN line_count ELSE 0 END
                  AS cell_lines
    FROM marts.allocated_costs_by_workload
    WHERE charge_date >= $start_date AND charge_date < $end_date
      AND model IS NOT NULL
)
GROUP BY charge_date, model, project, billing_currency, reporting_currency
