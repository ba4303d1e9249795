-- Conservation: per (charge_date, model, project, billing_currency) the version mart's rows (every version and
-- the NULL version) add up to marts.cost_per_model_daily.amount to the last stored decimal. Returns the groups
-- that differ. Days not materialized in both marts are not compared.
-- asset: marts.cost_per_model_version_daily
WITH versions AS (
    SELECT charge_date, model, project, billing_currency, sum(amount) AS amount
    FROM marts.cost_per_model_version_daily
    GROUP BY ALL
),
models AS (
    SELECT charge_date, model, project, billing_currency, amount
    FROM marts.cost_per_model_daily
    WHERE charge_date IN (SELECT charge_date FROM marts.cost_per_model_version_daily)
)
SELECT coalesce(v.charge_date, m.charge_date) AS charge_date, coalesce(v.model, m.model) AS model,
       coalesce(v.project, m.project) AS project, coalesce(v.billing_currency, m.billing_currency) AS billing_currency,
       v.amount AS version_amount, m.amount AS model_amount
FROM versions AS v
FULL OUTER JOIN models AS m
    ON v.charge_date = m.charge_date AND v.model = m.model AND v.project = m.project
   AND v.billing_currency IS NOT DISTINCT FROM m.billing_currency
WHERE v.amount IS DISTINCT FROM m.amount
  AND coalesce(v.charge_date, m.charge_date) IN (SELECT charge_date FROM marts.cost_per_model_daily)
ORDER BY ALL
