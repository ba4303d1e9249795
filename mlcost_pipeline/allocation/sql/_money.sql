{#- Exact money in SQL (see macros.sql): amount x num / den rounded half-even to 12 decimals. -#}
{% macro converted(amount, num, den) %}mlc_money(mlc_muldiv(mlc_units({{ amount }}), mlc_units({{ num }}), mlc_units({{ den }}))){% endmacro %}
