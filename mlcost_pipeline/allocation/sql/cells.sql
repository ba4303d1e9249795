{#- core.cost_cells for [$start, $end): the window's lines of core.focus_costs grouped to cost cells, in one scan.

    Key: the columns the rules and marts read (`key`, cells_schema.CELL_KEY) and, only for a resource an MLflow
    run names as its dedicated resource (when the rules match runs by resource), the charge period: a run's
    direct cost is split by its overlap with each hour; a line in another currency than the reporting one is a
    cell of its own (`x_LineId` set), so it is converted once as a line, as the line-grain allocation did. Sums: the four cost metrics and the consumed quantity;
    `line_count` the lines. `cid`: the day (days since 1970) x 2^32 + the cell's number in its day in key order,
    unique in the warehouse and the same on every rerun of the day. Runs as `INSERT INTO core.cost_cells BY NAME
    <this>` in the allocation's transaction.

    Context (plan.py): key, period, sums (column names). -#}
{% from "_cell_key.sql" import cell_key %}
{% from "_columns.sql" import quoted %}
WITH run_resources AS (
    SELECT DISTINCT lower(resource_id) AS rid FROM core.ml_runs WHERE $match_run_resource AND resource_id IS NOT NULL
), grouped AS (
    SELECT {{ quoted(key) }},
{% for c in period %}
           CASE WHEN lower(ResourceId) IN (SELECT rid FROM run_resources) THEN "{{ c }}" END AS "{{ c }}",
{% endfor %}
           -- a line in another currency is converted as itself (amount_reporting converts each charge first)
           CASE WHEN BillingCurrency <> $reporting THEN x_LineId END AS x_LineId,
{% for c in sums %}
           sum("{{ c }}") AS "{{ c }}",
{% endfor %}
           count(*) AS line_count
    FROM core.focus_costs WHERE x_ChargeDate >= $start AND x_ChargeDate < $end
    GROUP BY ALL
), keyed AS (
    SELECT {{ cell_key(key) }} AS cell_key, * FROM grouped
)
SELECT CAST(date_diff('day', DATE '1970-01-01', x_ChargeDate) AS BIGINT) * 4294967296
       + row_number() OVER (PARTITION BY x_ChargeDate ORDER BY cell_key, {{ quoted(period) }}, x_LineId) AS cid,
       *
FROM keyed
