{#- core.ml_run_costs for [$start, $end) from core.allocated_cells and core.ml_runs (DESIGN.md §5).

    Grain: (charge_date, run_id, cost_source). Billed amounts (`direct`, `pool_share`) are sums of the run's
    pieces; an `estimate` (is_estimate) only on a run-day with neither: the rate card's price of the run's
    instance time (hourly x gpu_count / GPUs per instance x hours that day), converted with `_mlc_rate_fx`.

    Context (plan.py): columns (core.ml_run_costs, in order), run_dims (project/model dimensions or none). -#}
{% import "_runs.sql" as runs %}
{% import "_money.sql" as money %}
{% from "_columns.sql" import quoted %}
{#- the rate card's price of the run's time that day: hourly x GPUs used / GPUs per instance x hours -#}
{% set card_price -%}
mlc_money(mlc_muldiv(mlc_units(k.hourly), CAST(coalesce(d.run_gpu_count, k.gpus) AS HUGEINT) * d.us,
                                                CAST(k.gpus AS HUGEINT) * 3600000000))
{%- endset %}
WITH {{ runs.runs_cte(run_dims) }}, day_bounds AS (
    SELECT day, CAST(day AS TIMESTAMP) AS ds, CAST(day AS TIMESTAMP) + INTERVAL 1 DAY AS de FROM _mlc_rate_fx
), run_days AS (
    SELECT b.day, r.*, date_diff('microsecond', greatest(r.run_start, b.ds), least(coalesce(r.run_end, b.de), b.de))
           AS us
    FROM day_bounds AS b JOIN runs AS r ON r.run_start < b.de AND coalesce(r.run_end, b.de) > b.ds
), billed AS (
    SELECT day, run_id, cost_source, sum(amount) AS amount, CAST(sum(lines) AS BIGINT) AS line_count,
           string_agg(DISTINCT AllocatedMethodId, ',' ORDER BY AllocatedMethodId) AS rule_ids
    FROM (
        -- a cell's lines count once per run and source, however many of its pieces the run has
        SELECT charge_date AS day, run_id, run_basis AS cost_source, amount_reporting AS amount, AllocatedMethodId,
               CASE WHEN row_number() OVER (PARTITION BY charge_date, run_id, run_basis, cid) = 1
                    THEN line_count ELSE 0 END AS lines
        FROM core.allocated_cells
        WHERE charge_date >= $start AND charge_date < $end AND run_id IS NOT NULL AND reporting_currency = $reporting
    )
    GROUP BY ALL
), costs AS (
    SELECT b.day, b.run_id, b.cost_source, false AS is_estimate, b.amount, b.line_count, b.rule_ids,
           CAST(NULL AS VARCHAR) AS note
    FROM billed AS b
    UNION ALL
    SELECT d.day, d.run_id, 'estimate', true,
           {{ money.converted(card_price, "x.fx_num", "x.fx_den") }},
           0, NULL,
           CASE WHEN k.instance_type IS NULL
                THEN 'no rate-card price for instance type ' || coalesce(d.run_instance_type, '(none)') END
    FROM run_days AS d
    LEFT JOIN _mlc_rates AS k ON k.instance_type = d.run_instance_type
    JOIN _mlc_rate_fx AS x ON x.day = d.day
    WHERE d.us > 0 AND NOT EXISTS (SELECT 1 FROM billed AS b WHERE b.day = d.day AND b.run_id = d.run_id)
)
SELECT {{ quoted(columns) }} FROM (
    SELECT c.day AS charge_date, c.run_id, m.experiment_name, m.run_name, m.status,
           coalesce(r.run_project, '__unallocated__') AS project, r.run_model AS model,
           m.instance_type, c.cost_source, c.is_estimate, c.amount AS amount_reporting,
           $reporting AS reporting_currency,
           mlc_money(mlc_round_div(CAST(coalesce(d.run_gpu_count, 0) AS HUGEINT) * coalesce(d.us, 0) * 10000, 36))
               AS gpu_hours,
           c.line_count, c.rule_ids, c.note, $rules_hash AS rules_hash
    FROM costs AS c
    LEFT JOIN runs AS r USING (run_id)
    LEFT JOIN core.ml_runs AS m USING (run_id)
    LEFT JOIN run_days AS d ON d.day = c.day AND d.run_id = c.run_id
)
ORDER BY charge_date, run_id, cost_source
