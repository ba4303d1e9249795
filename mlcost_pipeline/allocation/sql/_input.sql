{#- The input relation of the allocation: one row per cost cell of the window (core.cost_cells, written by
    cells.sql in the same transaction), with `cid`, its key unique within the window that the per-charge split
    partitions on, and `line_count`, the core.focus_costs lines it sums. -#}
{% macro cost_input() %}cost_input AS (
    SELECT * FROM core.cost_cells WHERE x_ChargeDate >= $start AND x_ChargeDate < $end
){% endmacro %}
