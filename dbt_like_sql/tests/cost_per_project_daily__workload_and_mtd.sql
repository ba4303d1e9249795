-- On every row of the project mart the eight workload columns add up to amount, and month-to-date is the running
-- sum of amount (and amount_reporting) over the same (project, provider, billing_currency) from the first of the
-- month, for months the mart holds from their first day. Returns the rows that differ.
-- asset: marts.cost_per_project_daily
WITH expected AS (
    SELECT
        *,
        sum(amount) OVER month_so_far AS expected_mtd,
        sum(amount_reporting) OVER month_so_far AS expected_mtd_reporting,
        min(charge_date) OVER (PARTITION BY date_trunc('month', charge_date)) AS month_first_day
    FROM marts.cost_per_project_daily
    WINDOW month_so_far AS (
        PARTITION BY project, provider, billing_currency, reporting_currency, date_trunc('month', charge_date)
        ORDER BY charge_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    )
)
SELECT charge_date, project, provider, billing_currency, amount, mtd_amount, expected_mtd
FROM expected
WHERE amount IS DISTINCT FROM training_amount + serving_amount + storage_amount + orchestration_amount
          + monitoring_amount + tooling_amount + data_pipeline_amount + other_amount
   OR (month_first_day = date_trunc('month', charge_date)
       AND (mtd_amount IS DISTINCT FROM expected_mtd OR mtd_amount_reporting IS DISTINCT FROM expected_mtd_reporting))
ORDER BY charge_date, project, provider, billing_currency
