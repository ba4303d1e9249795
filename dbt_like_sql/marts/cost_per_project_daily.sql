-- Cost per project per day, from marts.allocated_costs_by_workload (the allocation's pieces, amounts unchanged,
-- with each piece's workload category).
-- Grain: one row per (charge_date, project, provider, billing_currency). Amounts are exact decimals in the
-- billing currency; currencies are never summed together (amount_reporting converts each charge first).
-- amount: all allocated cost; tagged_amount: the part owned through resource tags (method = 'tag');
-- line_count: source charges (lines of core.focus_costs) contributing. Unowned cost appears as project '__unallocated__',
-- paid-but-unused shared capacity as '__idle__'. amount_reporting: the same cost in reporting_currency (summing it
-- over providers and currencies gives the project-day figure `mlcost explain` shows, to the last decimal).
-- Workload split of amount (the eight add up to amount exactly): training_amount, serving_amount,
-- storage_amount, orchestration_amount, monitoring_amount, tooling_amount, data_pipeline_amount, other_amount.
-- Month-to-date: mtd_amount / mtd_amount_reporting sum the same (project, provider, billing_currency) from the
-- first of charge_date's month through charge_date (read from earlier partitions of the month).
-- partitioned_by: charge_date
WITH pieces AS (
    SELECT
        *,
        -- a cell's lines count once per project, however many of its pieces the project has
        CASE WHEN row_number() OVER (PARTITION BY charge_date, cid, project) = 1 THEN line_count ELSE 0 END
            AS cell_lines
    FROM marts.allocated_costs_by_workload
    WHERE charge_date >= date_trunc('month', CAST($start_date AS DATE)) AND charge_date < $end_date
),
daily AS (
    SELECT
        charge_date,
        project,
        provider,
        billing_currency,
        CAST(sum(amount) AS DECIMAL(38, 12)) AS amount,
        CAST(coalesce(sum(amount) FILTER (WHERE method = 'tag'), 0) AS DECIMAL(38, 12)) AS tagged_amount,
        CAST(sum(cell_lines) AS BIGINT) AS line_count,
        reporting_currency,
        CAST(sum(amount_reporting) AS DECIMAL(38, 12)) AS amount_reporting,
        CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'training'), 0) AS DECIMAL(38, 12))
            AS training_amount,
        CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'serving'), 0) AS DECIMAL(38, 12))
            AS serving_amount,
        CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'storage'), 0) AS DECIMAL(38, 12))
            AS storage_amount,
        CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'orchestration'), 0) AS DECIMAL(38, 12))
            AS orchestration_amount,
        CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'monitoring'), 0) AS DECIMAL(38, 12))
            AS monitoring_amount,
        CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'tooling'), 0) AS DECIMAL(38, 12))
            AS tooling_amount,
        CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'data_pipeline'), 0) AS DECIMAL(38, 12))
            AS data_pipeline_amount,
        CAST(coalesce(sum(amount) FILTER (WHERE workload_category = 'other'), 0) AS DECIMAL(38, 12))
            AS other_amount
    FROM pieces
    GROUP BY charge_date, project, provider, billing_currency, reporting_currency
),
with_mtd AS (
    SELECT
        *,
        CAST(sum(amount) OVER month_so_far AS DECIMAL(38, 12)) AS mtd_amount,
        CAST(sum(amount_reporting) OVER month_so_far AS DECIMAL(38, 12)) AS mtd_amount_reporting
    FROM daily
    WINDOW month_so_far AS (
        PARTITION BY project, provider, billing_currency, reporting_currency, date_trunc('month', charge_date)
        ORDER BY charge_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    )
)
SELECT *
FROM with_mtd
WHERE charge_date >= $start_date AND charge_date < $end_date
