-- Conservation: for every day in marts.kpi_daily, the spend KPIs add up to core.allocated_cells in the reporting
-- currency, to the last stored decimal: org spend = the day's allocated total; each project's spend = its
-- allocated total; the eight workload spends sum to the org spend. Returns one row per differing
-- (date, scope_type, scope_id); scope_id 'sum' is the sum of the workload rows.
-- asset: marts.kpi_daily
WITH days AS (
    SELECT DISTINCT date FROM marts.kpi_daily WHERE kpi = 'spend'
),
allocated AS (
    SELECT charge_date AS date, 'org' AS scope_type, 'all' AS scope_id, sum(amount_reporting) AS expected
    FROM core.allocated_cells WHERE charge_date IN (SELECT date FROM days) GROUP BY ALL
    UNION ALL
    SELECT charge_date, 'project', project, sum(amount_reporting)
    FROM core.allocated_cells WHERE charge_date IN (SELECT date FROM days) GROUP BY ALL
    UNION ALL
    SELECT charge_date, 'workload', 'sum', sum(amount_reporting)
    FROM core.allocated_cells WHERE charge_date IN (SELECT date FROM days) GROUP BY ALL
),
kpi AS (
    SELECT date, scope_type, scope_id, value FROM marts.kpi_daily
    WHERE kpi = 'spend' AND scope_type IN ('org', 'project')
    UNION ALL
    SELECT date, 'workload', 'sum', sum(value) FROM marts.kpi_daily
    WHERE kpi = 'spend' AND scope_type = 'workload' GROUP BY ALL
)
SELECT coalesce(a.date, k.date) AS date, coalesce(a.scope_type, k.scope_type) AS scope_type,
       coalesce(a.scope_id, k.scope_id) AS scope_id, k.value AS kpi_spend, a.expected AS allocated
FROM allocated AS a
FULL OUTER JOIN kpi AS k USING (date, scope_type, scope_id)
WHERE coalesce(k.value, 0) <> coalesce(a.expected, 0)  -- no row and a zero total agree
ORDER BY ALL
