-- Conservation: for every day in the mart and every currency, the workload mart's total equals the allocated
-- total to the last stored decimal (every piece has exactly one category). Returns one row per
-- (charge_date, billing_currency) that differs. Days not yet materialized in the mart are not compared.
-- asset: marts.allocated_costs_by_workload
WITH mart_totals AS (
    SELECT charge_date, billing_currency, sum(amount) AS mart_amount, count(*) AS mart_pieces
    FROM marts.allocated_costs_by_workload
    GROUP BY charge_date, billing_currency
),
allocated_totals AS (
    SELECT charge_date, billing_currency, sum(amount) AS allocated_amount, count(*) AS allocated_pieces
    FROM core.allocated_cells
    WHERE charge_date IN (SELECT charge_date FROM marts.allocated_costs_by_workload)
    GROUP BY charge_date, billing_currency
)
SELECT
    coalesce(m.charge_date, a.charge_date) AS charge_date,
    coalesce(m.billing_currency, a.billing_currency) AS billing_currency,
    m.mart_amount,
    a.allocated_amount,
    m.mart_pieces,
    a.allocated_pieces
FROM mart_totals AS m
FULL OUTER JOIN allocated_totals AS a
    ON m.charge_date = a.charge_date AND m.billing_currency IS NOT DISTINCT FROM a.billing_currency
WHERE m.mart_amount IS DISTINCT FROM a.allocated_amount OR m.mart_pieces IS DISTINCT FROM a.allocated_pieces
ORDER BY charge_date, billing_currency
