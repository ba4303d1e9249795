{#- Our own column names (a fixed list), double-quoted, comma-separated, wrapped. -#}
{% macro quoted(columns) -%}
{{ columns | map("tojson") | join(", ") | wordwrap(100, break_long_words=False, wrapstring="\n       ", break_on_hyphens=False) }}
{%- endmacro %}
