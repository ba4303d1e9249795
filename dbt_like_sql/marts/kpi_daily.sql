-- Every KPI of docs/kpis.md in one long, BI-friendly table: (date, scope_type, scope_id, kpi, value, unit).
-- Grain: one row per (date, scope_type, scope_id, kpi). date is a UTC day; scope_type is org (scope_id 'all'),
-- project, workload, pool, experiment, start_hour, estimator, model or model_version; value is DECIMAL(38, 12):
-- money exact in the reporting currency, ratios in [0, 1] and hours rounded to 12 decimals; unit names the unit
-- (a currency code, 'ratio', 'hours', 'runs', 'flag', 'stddev', 'quadrant', '<currency> per GPU-hour', ...).
-- The union of marts.kpi_cost_daily (charge-day cost KPIs), marts.kpi_run_daily (by run start day) and
-- marts.kpi_model_daily (quality for money, quadrant, cycle time); the BI snapshot adds wide views of it.
-- partitioned_by: date
SELECT date, scope_type, scope_id, kpi, value, unit
FROM marts.kpi_cost_daily
WHERE date >= $start_date AND date < $end_date
UNION ALL
SELECT date, scope_type, scope_id, kpi, value, unit
FROM marts.kpi_run_daily
WHERE date >= $start_date AND date < $end_date
UNION ALL
SELECT date, scope_type, scope_id, kpi, value, unit
FROM marts.kpi_model_daily
WHERE date >= $start_date AND date < $end_date
