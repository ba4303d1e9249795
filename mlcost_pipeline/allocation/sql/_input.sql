{#- The input relation of the allocation: one row per charge of the window, with `cid`, a compact key unique
    within the window that the per-charge split partitions on. Today a line item of core.focus_costs (its
    rowid); cost cells (one row per distinct combination of the columns the rules and marts read, costs
    summed) replace this one line. -#}
{% macro cost_input() %}cost_input AS (
    SELECT rowid AS cid, * FROM core.focus_costs WHERE x_ChargeDate >= $start AND x_ChargeDate < $end
){% endmacro %}
