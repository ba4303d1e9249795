-- No run has negative GPU-hours, duration or cost. Returns the runs that do.
-- asset: marts.cost_per_run
SELECT run_id, duration_hours, gpu_hours, direct_amount, pool_share_amount, estimate_amount
FROM marts.cost_per_run
WHERE gpu_hours < 0 OR duration_hours < 0 OR direct_amount < 0 OR pool_share_amount < 0 OR estimate_amount < 0
ORDER BY run_id
