-- Conservation: for every day in the mart and every currency, the model mart's total equals the allocated cost
-- that names a model, and on every row the workload split (training + serving + storage + data_pipeline + other)
-- equals amount, to the last stored decimal. Returns the differing (charge_date, billing_currency) totals and
-- rows (model NULL on a total). Days not yet materialized in the mart are not compared.
-- asset: marts.cost_per_model_daily
WITH mart_totals AS (
    SELECT charge_date, billing_currency, sum(amount) AS mart_amount
    FROM marts.cost_per_model_daily
    GROUP BY charge_date, billing_currency
),
allocated_totals AS (
    SELECT charge_date, billing_currency, sum(amount) AS allocated_amount
    FROM core.allocated_cells
    WHERE model IS NOT NULL AND charge_date IN (SELECT charge_date FROM marts.cost_per_model_daily)
    GROUP BY charge_date, billing_currency
)
SELECT
    coalesce(m.charge_date, a.charge_date) AS charge_date,
    coalesce(m.billing_currency, a.billing_currency) AS billing_currency,
    CAST(NULL AS VARCHAR) AS model,
    m.mart_amount AS amount,
    a.allocated_amount AS expected
FROM mart_totals AS m
FULL OUTER JOIN allocated_totals AS a
    ON m.charge_date = a.charge_date AND m.billing_currency IS NOT DISTINCT FROM a.billing_currency
WHERE m.mart_amount IS DISTINCT FROM a.allocated_amount
UNION ALL
SELECT charge_date, billing_currency, model, amount,
       training_amount + serving_amount + storage_amount + data_pipeline_amount + other_amount
FROM marts.cost_per_model_daily
WHERE amount IS DISTINCT FROM training_amount + serving_amount + storage_amount + data_pipeline_amount + other_amount
ORDER BY charge_date, billing_currency, model
