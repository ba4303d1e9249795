{#- A SQL driver's rows in the window, typed; `model` is NULL when the query returns no such column (the empty
    branch of the UNION BY NAME supplies it). Quantities are checked (>= 0) in drivers.py. -#}
SELECT CAST(day AS DATE), CAST(project AS VARCHAR), CAST(model AS VARCHAR), CAST(quantity AS DECIMAL(38,12))
FROM (
    SELECT * FROM (SELECT CAST(NULL AS VARCHAR) AS model LIMIT 0)
    UNION ALL BY NAME
    SELECT * FROM ({{ driver_sql }})
) AS _driver
WHERE CAST(day AS DATE) >= $start AND CAST(day AS DATE) < $end
