{#- A cell's key without its charge period, as one md5: the same text for a line of core.focus_costs and for the
    cell it was summed into (the columns hold the same values), so a line finds its cell by (day, cell_key) and,
    for a run-owned resource, its period. NULLs stay distinct from every value (a JSON array of texts). -#}
{% macro cell_key(columns, p="") -%}
md5(to_json(list_value({% for c in columns if c != "x_ChargeDate" %}CAST({{ p }}"{{ c }}" AS VARCHAR){{ ", " if not loop.last }}{% endfor %})))
{%- endmacro %}
