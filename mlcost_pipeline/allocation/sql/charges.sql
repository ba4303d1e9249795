{#- Stage 1 of the allocation, once per cost cell of the window: owner, reporting-currency value and pool.

    Source: `cost_input` (_input.sql: the window's core.cost_cells; a cell is a "charge" here, every line of it
    has the same values in the columns read). Output (a temp table, so the later steps, which read it several
    times, never recompute the tag parsing): one row per cell with
    - `cid` (the cell's key: a compact key for the per-charge split), `cell_key`, `line_count`, the columns the
      rules can select on;
    - `owner_<dimension>` from tags, else fallbacks, and `owner_rule` naming what gave the project;
    - `charge_amount` (the cost basis), `charge_reporting` (converted once, exact), `fx_rate`, `fx_source` and
      the conversion's `fx_num / fx_den` (the per-line view converts each line with it);
    - `pool_idx`: the first pool whose selector matches (NULL: a direct charge), `run_tag`: a run id named by
      a tag.
    Each dimension's raw value is read first and normalized in a second step, so no expression is evaluated
    twice. Fallbacks apply per dimension when no tag gives it, most specific first: a resource-id pattern
    (first matching pattern in file order), the resource group (case-insensitive), the account (SubAccountId).

    Context (charges_sql.charge_context): basis, tag_struct, as_tagged, dimensions (name -> normalize,
    positions), all_dimensions, fallback_patterns, run_tag_positions, pools (per pool, its id and its
    selector's conditions). -#}
{% import "_input.sql" as input %}
{% import "_dimensions.sql" as dims %}
{% import "_money.sql" as money %}
{% macro condition(c) -%}
{% if c.kind == "in" %}list_contains(${{ c.param }}, {{ c.column }})
{%- elif c.kind == "in_lower" %}list_contains(${{ c.param }}, lower({{ c.column }}))
{%- elif c.kind == "regex" %}regexp_matches({{ c.column }}, ${{ c.param }})
{%- elif c.kind == "unowned" %}owner_project IS NULL
{%- elif c.kind == "tag_present" %}struct_extract_at(tg, {{ c.position }}) IS NOT NULL
{%- elif c.kind == "tag_in" %}list_contains(${{ c.param }}, trim(struct_extract_at(tg, {{ c.position }})))
{%- endif %}
{%- endmacro %}
{#- The index (as text) of the first resource-id fallback pattern matching ResourceId, or NULL. -#}
{% macro resource_id_index(n) -%}
{% if n %}CASE {% for i in range(n) %}WHEN regexp_matches(ResourceId, $fb_rid_{{ i }}) THEN '{{ i }}' {% endfor %}END
{%- else %}CAST(NULL AS VARCHAR){% endif %}
{%- endmacro %}
CREATE OR REPLACE TEMP TABLE _mlc_valued AS
WITH {{ input.cost_input() }}, charges AS (
    SELECT f.cid, f.cell_key, f.line_count, f.x_ChargeDate AS day, f.BillingCurrency AS currency,
           f."{{ basis }}" AS charge_amount, f.ProviderName, f.ServiceName, f.ServiceCategory, f.SubAccountId,
           f.ResourceId, f.x_ResourceGroupName, f.ChargeCategory, f.ChargePeriodStart, f.ChargePeriodEnd,
           f.ConsumedQuantity, f.ConsumedUnit, f.SkuId, f.x_SourceSystem, f.x_CurrencyConversionRate,
           {{ "json_transform(lower(f.Tags), $tag_struct)" if tag_struct else "NULL" }} AS tg
{%- if as_tagged %},
           {{ dims.tag_entries("f.Tags") }} AS tag_entries
{%- endif %}

    FROM cost_input AS f
), raw AS (
    SELECT *,
{% for name, d in dimensions.items() %}
        {{ dims.first_struct_value(d.positions) if d.normalize else dims.first_tag_value(name) }} AS raw_{{ name }},
{% endfor %}
        {{ resource_id_index(fallback_patterns) }} AS rid_idx,
        {{ dims.first_struct_value(run_tag_positions) if run_tag_positions else "CAST(NULL AS VARCHAR)" }} AS run_tag
    FROM charges
), tagged AS (
    SELECT * EXCLUDE ({% for name in dimensions %}raw_{{ name }}{{ ", " if not loop.last }}{% endfor %}),
{% for name in all_dimensions %}
        {{ dims.canonical(name, dimensions[name].normalize, "raw_" ~ name) if name in dimensions
           else "CAST(NULL AS VARCHAR)" }} AS tag_{{ name }}{{ "," if not loop.last }}
{% endfor %}
    FROM raw
), owned AS (
    SELECT c.*,
{% for name in all_dimensions %}
        coalesce(tag_{{ name }}, fb_rid.{{ name }}, fb_rg.{{ name }}, fb_acct.{{ name }}) AS owner_{{ name }},
{% endfor %}
        CASE WHEN tag_project IS NOT NULL THEN 'tag:project'
             WHEN fb_rid.project IS NOT NULL THEN 'fallback:resource_id:' || fb_rid.key
             WHEN fb_rg.project IS NOT NULL THEN 'fallback:resource_group'
             WHEN fb_acct.project IS NOT NULL THEN 'fallback:account' END AS owner_rule
    FROM tagged AS c
    LEFT JOIN _mlc_fb_rid AS fb_rid ON fb_rid.key = c.rid_idx
    LEFT JOIN _mlc_fb_rg AS fb_rg ON fb_rg.key = lower(c.x_ResourceGroupName)
    LEFT JOIN _mlc_fb_acct AS fb_acct ON fb_acct.key = c.SubAccountId
), rated AS (
    SELECT o.*,
        CASE WHEN o.currency = $reporting THEN 'same'
             WHEN $provider_ok AND coalesce(o.x_CurrencyConversionRate, 0) > 0 THEN 'provider'
             ELSE fx.fx_source END AS fx_source,
        CASE WHEN o.currency <> $reporting AND NOT ($provider_ok AND coalesce(o.x_CurrencyConversionRate, 0) > 0)
             THEN fx.fx_num ELSE CAST(1 AS DECIMAL(38,12)) END AS fx_num,
        CASE WHEN o.currency = $reporting THEN CAST(1 AS DECIMAL(38,12))
             WHEN $provider_ok AND coalesce(o.x_CurrencyConversionRate, 0) > 0 THEN o.x_CurrencyConversionRate
             ELSE fx.fx_den END AS fx_den
    FROM owned AS o LEFT JOIN _mlc_fx AS fx ON fx.day = o.day AND fx.currency = o.currency
), pooled AS (
    SELECT * EXCLUDE (tg, {{ "tag_entries, " if as_tagged }}
                      {%- for name in all_dimensions %}tag_{{ name }}, {% endfor %}rid_idx),
{% if pools %}
        -- the first matching pool, in file order; DuckDB evaluates AND left to right on the rows still selected,
        -- so the cheap tests go first; a NULL is false
        CASE
{% for pool in pools %}
            WHEN {% for c in pool.conditions %}{{ "\n             AND " if not loop.first }}({{ condition(c) }}){% endfor +%}
                THEN {{ loop.index0 }}  -- pool {{ pool.id }}
{% endfor %}
        END AS pool_idx
{% else %}
        CAST(NULL AS INTEGER) AS pool_idx
{% endif %}
    FROM rated
)
-- The exact conversion costs 128-bit arithmetic: only rows in another currency pay for it.
SELECT *, charge_amount AS charge_reporting, CAST(1 AS DECIMAL(38,12)) AS fx_rate
FROM pooled WHERE fx_source = 'same'
UNION ALL
SELECT *, {{ money.converted("charge_amount", "fx_num", "fx_den") }} AS charge_reporting,
    {{ money.converted("CAST(1 AS DECIMAL(38,12))", "fx_num", "fx_den") }} AS fx_rate
FROM pooled WHERE fx_source IS DISTINCT FROM 'same'
