-- Budget status per budget and calendar month (UTC): month-to-date actual cost, a month-end forecast, and each as
-- a percent of the budget (docs/budgets.md). Budgets come from core.budgets (the budgets file, MLCOST_BUDGETS).
-- Grain: one row per (month, budget_id), for every month with allocated cost and every budget; a budget whose
-- project spent nothing that month has a row with 0.
-- as_of_date: the last day with allocated cost in the month (any project); data_from: the first such day (a month
-- whose first days are not loaded reports only what is loaded).
-- actual_amount: sum of the allocated amount_reporting (core.allocated_cells) of the budget's project (and model, if the budget
-- names one) from the 1st of the month to as_of_date; only rows in the budget's currency count (the reporting
-- currency, checked when the budgets are loaded).
-- forecast_amount: actual_amount + trailing_amount / trailing_days x days_remaining. trailing_amount is the
-- budget's cost over the trailing_days calendar days ending on as_of_date (7, or fewer when less history is loaded;
-- it may reach into the previous month, which steadies the first days of a month). The division is rounded half
-- away from zero to 12 decimals in integer arithmetic: DuckDB divides decimals as DOUBLE, and money is exact.
-- When the month is complete (days_remaining = 0) the forecast is the actual.
-- actual_pct, forecast_pct: percent of budget_amount, rounded half away from zero to 2 decimals (display only:
-- the WARN / ERROR levels of marts.budget_alerts compare the exact amounts with warn_pct and error_pct).
WITH loaded_days AS (
    SELECT DISTINCT charge_date FROM core.allocated_cells
),
months AS (
    SELECT
        CAST(date_trunc('month', charge_date) AS DATE) AS month,
        min(charge_date) AS data_from,
        max(charge_date) AS as_of_date
    FROM loaded_days
    GROUP BY 1
),
scoped AS (
    -- A month override (core.budgets.month) wins over the budget's default (month IS NULL).
    SELECT
        m.month, m.data_from, m.as_of_date,
        CAST(least(7, m.as_of_date - (SELECT min(charge_date) FROM loaded_days) + 1) AS INTEGER) AS trailing_days,
        d.budget_id, d.project, d.model, d.currency, d.warn_pct, d.error_pct,
        coalesce(o.amount, d.amount) AS budget_amount
    FROM months AS m
    CROSS JOIN core.budgets AS d
    LEFT JOIN core.budgets AS o ON o.budget_id = d.budget_id AND o.month = m.month
    WHERE d.month IS NULL
),
daily AS (
    SELECT d.budget_id, a.charge_date, sum(a.amount_reporting) AS amount
    FROM core.budgets AS d
    JOIN core.allocated_cells AS a
        ON a.project = d.project
        AND (d.model IS NULL OR a.model = d.model)
        AND a.reporting_currency = d.currency
    WHERE d.month IS NULL
    GROUP BY ALL
),
measured AS (
    SELECT
        s.*,
        CAST(coalesce(sum(x.amount) FILTER (WHERE x.charge_date >= s.month), 0) AS DECIMAL(38, 12)) AS actual_amount,
        CAST(coalesce(sum(x.amount) FILTER (WHERE x.charge_date > s.as_of_date - s.trailing_days), 0)
            AS DECIMAL(38, 12)) AS trailing_amount
    FROM scoped AS s
    LEFT JOIN daily AS x
        ON x.budget_id = s.budget_id
        AND x.charge_date <= s.as_of_date
        AND x.charge_date >= least(s.month, s.as_of_date - s.trailing_days + 1)
    GROUP BY ALL
),
units AS (
    -- Amounts as integer counts of 10^-12 (exact for DECIMAL(38,12)), so divisions can be rounded exactly.
    SELECT
        *,
        day(last_day(month)) AS days_in_month,
        day(as_of_date) AS days_elapsed,
        CAST(last_day(month) - as_of_date AS INTEGER) AS days_remaining,
        CAST(actual_amount * 1000000000000 AS HUGEINT) AS actual_units,
        CAST(trailing_amount * 1000000000000 AS HUGEINT) AS trailing_units,
        CAST(budget_amount * 1000000000000 AS HUGEINT) AS budget_units
    FROM measured
),
forecast AS (
    SELECT
        *,
        actual_units + sign(trailing_units) * ((2 * abs(trailing_units) * days_remaining + trailing_days)
            // (2 * trailing_days)) AS forecast_units
    FROM units
)
SELECT
    month,
    budget_id,
    project,
    model,
    currency,
    CAST(budget_amount AS DECIMAL(38, 12)) AS budget_amount,
    data_from,
    as_of_date,
    days_in_month,
    days_elapsed,
    days_remaining,
    actual_amount,
    trailing_days,
    trailing_amount,
    CAST(CAST(forecast_units AS DECIMAL(38, 0)) * CAST('0.000000000001' AS DECIMAL(13, 12)) AS DECIMAL(38, 12))
        AS forecast_amount,
    CAST(CAST(sign(actual_units) * ((2 * abs(actual_units) * 10000 + budget_units) // (2 * budget_units))
        AS DECIMAL(38, 0)) * CAST('0.01' AS DECIMAL(3, 2)) AS DECIMAL(38, 2)) AS actual_pct,
    CAST(CAST(sign(forecast_units) * ((2 * abs(forecast_units) * 10000 + budget_units) // (2 * budget_units))
        AS DECIMAL(38, 0)) * CAST('0.01' AS DECIMAL(3, 2)) AS DECIMAL(38, 2)) AS forecast_pct,
    warn_pct,
    error_pct
FROM forecast
