-- Conservation: each run's billed and estimated amounts in the mart equal the sums of its rows in
-- core.ml_run_costs, to the last stored decimal. Returns one row per run_id that differs.
-- asset: marts.cost_per_run
WITH source AS (
    SELECT run_id,
           coalesce(sum(amount_reporting) FILTER (WHERE NOT is_estimate), 0) AS billed,
           coalesce(sum(amount_reporting) FILTER (WHERE is_estimate), 0) AS estimated
    FROM core.ml_run_costs
    GROUP BY run_id
)
SELECT m.run_id, m.billed_amount, s.billed, m.estimate_amount, s.estimated
FROM marts.cost_per_run AS m
LEFT JOIN source AS s USING (run_id)
WHERE m.billed_amount IS DISTINCT FROM coalesce(s.billed, 0)
   OR m.estimate_amount IS DISTINCT FROM coalesce(s.estimated, 0)
ORDER BY m.run_id
