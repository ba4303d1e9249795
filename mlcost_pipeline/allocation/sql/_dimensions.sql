{#- Dimension values of a charge (or a run) from its tags: the dimension's keys in order, first non-blank
    value wins, then trim, lower-case, `_`/spaces to `-` (when the dimension normalizes), then the alias map.

    Charges parse their tags once into `tg`, a struct of the keys the rules read (dimensions_sql.TagKeys gives
    each key's position): keys match in any case because the JSON is lower-cased first, so values come out
    lower-cased, which normalization does anyway. A dimension with `normalize: false` reads its original
    values from the MAP entries instead (`$dim_<name>_keys`). -#}

{% macro first_struct_value(positions) -%}
coalesce({% for i in positions %}nullif(trim(struct_extract_at(tg, {{ i }})), ''){{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro first_tag_value(name, entries="tag_entries") -%}
list_filter(list_transform($dim_{{ name }}_keys, lambda k: list_filter({{ entries }}, lambda e: lower(e.key) = k)[1].value), lambda v: v IS NOT NULL AND trim(v) <> '')[1]
{%- endmacro %}

{% macro canonical(name, normalize, value) -%}
{% set v %}{% if normalize %}regexp_replace(lower(trim({{ value }})), '[_[:space:]]+', '-', 'g'){% else %}{{ value }}{% endif %}{% endset -%}
coalesce($dim_{{ name }}_to[list_position($dim_{{ name }}_from, {{ v }})], {{ v }})
{%- endmacro %}

{% macro tag_entries(column) -%}
map_entries(coalesce(CAST({{ column }} AS MAP(VARCHAR, VARCHAR)), MAP {}))
{%- endmacro %}

{#- The canonical value of one dimension from a list of {key, value} tag entries, or NULL (runs' tags). -#}
{% macro from_entries(name, dim, entries) -%}
{% if dim is none %}CAST(NULL AS VARCHAR){% else %}{{ canonical(name, dim.normalize, first_tag_value(name, entries)) }}{% endif %}
{%- endmacro %}
