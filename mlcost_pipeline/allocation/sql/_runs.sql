{#- MLflow runs in the allocation SQL: the runs relation, and direct charges split among the runs they served.

    A direct charge (no pool took it) belongs to a run when (DESIGN.md §5):
    - one of its tags (`runs.direct_tag_keys`, e.g. `mlflow_run_id`) names the run: the whole charge is the
      run's;
    - else its ResourceId is a run's dedicated `resource_id` (case-insensitive) and the run overlaps the
      charge period: each such run gets the charge in proportion to its overlap, and the period no run used
      stays with the charge's owner as a remainder piece (run_id NULL). A run still running counts until the
      end of the period.
    A run's project and model come from the run's own tags through the same dimension rules as charges; they
    are used only where the charge has no owner. -#}
{% import "_dimensions.sql" as dims %}

{#- `runs`: every run in core.ml_runs with its canonical project/model (usage and direct matching). -#}
{% macro runs_cte(run_dims) -%}
runs AS (
    SELECT run_id, start_time AS run_start, end_time AS run_end, lower(resource_id) AS run_rid,
           cluster AS run_cluster, instance_type AS run_instance_type, gpu_count AS run_gpu_count,
           {{ dims.from_entries("project", run_dims.project, "run_tag_entries") }} AS run_project,
           {{ dims.from_entries("model", run_dims.model, "run_tag_entries") }} AS run_model
    FROM (SELECT *, {{ dims.tag_entries("tags") }} AS run_tag_entries FROM core.ml_runs)
)
{%- endmacro %}

{#- Direct charges on runs: named by a run tag (whole), or on a run's dedicated resource (by overlap). -#}
{% macro direct_run_ctes() -%}
tag_runs AS (
    SELECT d.cid, r.run_id, r.run_project, r.run_model
    FROM direct AS d JOIN runs AS r ON lower(r.run_id) = d.run_tag
), rid_runs AS (
    SELECT d.cid, r.run_id, r.run_project, r.run_model,
           date_diff('microsecond', greatest(d.ChargePeriodStart, r.run_start),
                     least(d.ChargePeriodEnd, coalesce(r.run_end, d.ChargePeriodEnd))) AS overlap_us,
           date_diff('microsecond', d.ChargePeriodStart, d.ChargePeriodEnd) AS period_us
    FROM direct AS d JOIN runs AS r ON r.run_rid = lower(d.ResourceId)
    WHERE $match_run_resource
      AND d.ChargePeriodStart < coalesce(r.run_end, d.ChargePeriodEnd) AND r.run_start < d.ChargePeriodEnd
      AND NOT EXISTS (SELECT 1 FROM tag_runs AS t WHERE t.cid = d.cid)
), rid_shares AS (
    SELECT cid, run_id, run_project, run_model, CAST(overlap_us AS DECIMAL(38,12)) AS qty, 'run' AS share,
           'run|' || run_id AS sort_key
    FROM rid_runs
    UNION ALL
    SELECT cid, NULL, NULL, NULL, CAST(greatest(max(period_us) - sum(overlap_us), 0) AS DECIMAL(38,12)),
           'remainder', 'remainder|'
    FROM rid_runs GROUP BY cid HAVING max(period_us) > sum(overlap_us)
)
{%- endmacro %}

{#- The piece columns of a direct charge `d` (on the run `r`, if any), in the pieces' shape. `how` is the SQL
    literal naming the run match ('run:tag' or 'run:resource_overlap'); `hours` the piece's hours of the
    charge period (reported as its usage in AllocatedMethodDetails). -#}
{% macro direct_piece_columns(r, how, share, hours="CAST(NULL AS DECIMAL(38,12))") -%}
{% set run_owned %}d.owner_project IS NULL AND {{ r }}.run_id IS NOT NULL{% endset -%}
d.cid, d.line_count, d.day, d.currency, d.fx_rate, d.fx_source, d.fx_num, d.fx_den,
        coalesce(d.owner_project, {{ r }}.run_project, '__unallocated__') AS project,
        coalesce(d.owner_model, {{ r }}.run_model) AS model,
        d.owner_team AS team, d.owner_environment AS environment, d.owner_cost_center AS cost_center,
        {{ r }}.run_id, CASE WHEN {{ r }}.run_id IS NOT NULL THEN 'direct' END AS run_basis,
        CASE WHEN d.owner_rule IS NOT NULL THEN d.owner_rule WHEN {{ run_owned }} THEN {{ how }} ELSE 'unallocated' END
            AS rule_id,
        CASE WHEN d.owner_rule LIKE 'tag:%' THEN 'tag' WHEN d.owner_rule IS NOT NULL THEN 'fallback'
             WHEN {{ run_owned }} THEN 'run' ELSE 'unallocated' END AS method,
        CASE WHEN {{ r }}.run_id IS NOT NULL OR {{ share }} = 'remainder' THEN {{ how }} ELSE d.owner_rule END AS method_id,
        {{ share }} AS share, CASE WHEN {{ hours }} IS NOT NULL THEN 'Hours' END AS usage_unit,
        {{ hours }} AS usage_quantity,
        d.ProviderName, d.ServiceName, d.ServiceCategory, d.SubAccountId, d.ResourceId, d.x_SourceSystem
{%- endmacro %}
