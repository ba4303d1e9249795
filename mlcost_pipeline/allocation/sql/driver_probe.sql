{#- The columns a SQL driver returns (no rows): drivers.py checks that day, project, quantity are there. -#}
SELECT * FROM ({{ driver_sql }}) AS _driver LIMIT 0
