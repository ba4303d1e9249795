-- Every run has a cost row: each run_id of core.ml_runs appears exactly once in marts.cost_per_run, and the mart
-- holds no other run. Returns one row per run_id that is missing, duplicated or unknown.
-- asset: marts.cost_per_run
WITH mart AS (
    SELECT run_id, count(*) AS mart_rows FROM marts.cost_per_run GROUP BY run_id
),
runs AS (
    SELECT DISTINCT run_id FROM core.ml_runs
)
SELECT coalesce(r.run_id, m.run_id) AS run_id, coalesce(m.mart_rows, 0) AS mart_rows, r.run_id IS NOT NULL AS in_ml_runs
FROM runs AS r
FULL OUTER JOIN mart AS m ON m.run_id = r.run_id
WHERE m.mart_rows IS DISTINCT FROM 1 OR r.run_id IS NULL
ORDER BY run_id
