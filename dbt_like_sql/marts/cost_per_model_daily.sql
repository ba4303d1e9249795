-- Cost per ML model per day, from core.allocated_costs.
-- Grain: one row per (charge_date, model, project, billing_currency); exact decimals in the billing currency.
-- Only cost that names a model is listed: cost without a model (shared infrastructure, unallocated cost) is in
-- marts.cost_per_project_daily; the two marts' totals differ by exactly that unmodelled cost.
-- line_count: source charges (distinct x_LineId) contributing. amount_reporting: the same cost in reporting_currency.
-- partitioned_by: charge_date
SELECT
    charge_date,
    model,
    project,
    billing_currency,
    CAST(sum(amount) AS DECIMAL(38, 12)) AS amount,
    count(DISTINCT x_LineId) AS line_count,
    reporting_currency,
    CAST(sum(amount_reporting) AS DECIMAL(38, 12)) AS amount_reporting
FROM core.allocated_costs
WHERE charge_date >= $start_date AND charge_date < $end_date
  AND model IS NOT NULL
GROUP BY charge_date, model, project, billing_currency, reporting_currency
