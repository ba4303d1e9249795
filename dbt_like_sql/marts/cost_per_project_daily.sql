-- Cost per project per day, from core.allocated_costs (after the allocation rules).
-- Grain: one row per (charge_date, project, provider, billing_currency). Amounts are exact decimals in the
-- billing currency; currencies are never summed together (amount_reporting converts each charge first).
-- amount: all allocated cost; tagged_amount: the part owned through resource tags (method = 'tag');
-- line_count: source charges (distinct x_LineId) contributing. Unowned cost appears as project '__unallocated__',
-- paid-but-unused shared capacity as '__idle__'. amount_reporting: the same cost in reporting_currency (summing it
-- over providers and currencies gives the project-day figure `mlcost explain` shows, to the last decimal).
-- partitioned_by: charge_date
SELECT
    charge_date,
    project,
    provider,
    billing_currency,
    CAST(sum(amount) AS DECIMAL(38, 12)) AS amount,
    CAST(coalesce(sum(amount) FILTER (WHERE method = 'tag'), 0) AS DECIMAL(38, 12)) AS tagged_amount,
    count(DISTINCT x_LineId) AS line_count,
    reporting_currency,
    CAST(sum(amount_reporting) AS DECIMAL(38, 12)) AS amount_reporting
FROM core.allocated_costs
WHERE charge_date >= $start_date AND charge_date < $end_date
GROUP BY charge_date, project, provider, billing_currency, reporting_currency
