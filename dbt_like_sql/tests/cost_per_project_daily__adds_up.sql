-- Conservation: for every day in the mart and every currency, the mart's total equals the allocated total
-- to the last stored decimal. Returns one row per (charge_date, billing_currency) that differs, including a
-- currency present on one side only. Days not yet materialized in the mart are not compared.
-- asset: marts.cost_per_project_daily
WITH mart_totals AS (
    SELECT charge_date, billing_currency, sum(amount) AS mart_amount
    FROM marts.cost_per_project_daily
    GROUP BY charge_date, billing_currency
),
allocated_totals AS (
    SELECT charge_date, billing_currency, sum(amount) AS allocated_amount
    FROM core.allocated_cells
    WHERE charge_date IN (SELECT charge_date FROM marts.cost_per_project_daily)
    GROUP BY charge_date, billing_currency
)
SELECT
    coalesce(m.charge_date, a.charge_date) AS charge_date,
    coalesce(m.billing_currency, a.billing_currency) AS billing_currency,
    m.mart_amount,
    a.allocated_amount
FROM mart_totals AS m
FULL OUTER JOIN allocated_totals AS a
    ON m.charge_date = a.charge_date AND m.billing_currency IS NOT DISTINCT FROM a.billing_currency
WHERE m.mart_amount IS DISTINCT FROM a.allocated_amount
ORDER BY charge_date, billing_currency
