-- mlcost sql: what the allocation runs for one window of days, in execution order.
-- rules sha256 82f4f73fa1c10f61390724dbb25bc4ee9ef39e33043818f47d266f56ca9823bc; reporting currency USD.
-- Rendered once per rules file and reporting currency from mlcost_pipeline/allocation/sql/*.sql;
-- each window binds $start/$end and registers the frames below.
--
-- Frames from the rules:
--   _mlc_fb_rid (key, project, model, team, environment, cost_center): 1 row(s)
--     {"key": "0", "project": "data-platform", "model": null, "team": "platform", "environment": null, "cost_center": null}
--   _mlc_fb_rg (key, project, model, team, environment, cost_center): 0 row(s)
--   _mlc_fb_acct (key, project, model, team, environment, cost_center): 3 row(s)
--     {"key": "acme-forecasting", "project": "demand-forecast", "model": null, "team": null, "environment": null, "cost_center": null}
--     {"key": "acme-search", "project": "search-ranking", "model": null, "team": null, "environment": null, "cost_center": null}
--     {"key": "acme-recsys-prod", "project": "recsys", "model": null, "team": null, "environment": null, "cost_center": null}
--   _mlc_pools (pool_idx, pool_id, method, driver, unit, grain, idle, fallback, scope, has_targets, cap_per_day, cap_from_cq, cap_skus, cap_unit, cap_num, cap_den, run_cluster, run_instance_regex): 9 row(s)
--     {"pool_idx": 0, "pool_id": "aws-shared-gpu", "method": "proportional_usage", "driver": "gpu_hours", "unit": "GPU-hours", "grain": "run", "idle": "keep", "fallback": "idle", "scope": "all", "has_targets": false, "cap_per_day": null, "cap_from_cq": true, "cap_skus": [], "cap_unit": null, "cap_num": "8.000000000000", "cap_den": "1.000000000000", "run_cluster": "gpu-shared", "run_instance_regex": "^(p4d|g5)\\."}
--     {"pool_idx": 1, "pool_id": "gcp-shared-gpu", "method": "proportional_usage", "driver": "gpu_hours", "unit": "GPU-hours", "grain": "run", "idle": "keep", "fallback": "idle", "scope": "all", "has_targets": false, "cap_per_day": null, "cap_from_cq": true, "cap_skus": ["A1C0-0001-GPU1"], "cap_unit": "seconds", "cap_num": "1.000000000000", "cap_den": "3600.000000000000", "run_cluster": "gpu-shared", "run_instance_regex": "^a2-"}
--     {"pool_idx": 2, "pool_id": "azure-shared-gpu", "method": "proportional_usage", "driver": "gpu_hours", "unit": "GPU-hours", "grain": "model", "idle": "share", "fallback": "even", "scope": "all", "has_targets": true, "cap_per_day": null, "cap_from_cq": false, "cap_skus": [], "cap_unit": null, "cap_num": "1.000000000000", "cap_den": "1.000000000000", "run_cluster": "gpu-shared", "run_instance_regex": "^Standard_"}
--     {"pool_idx": 3, "pool_id": "gcp-shared-bucket", "method": "fixed", "driver": null, "unit": null, "grain": "project", "idle": null, "fallback": null, "scope": "all", "has_targets": true, "cap_per_day": null, "cap_from_cq": false, "cap_skus": [], "cap_unit": null, "cap_num": "1.000000000000", "cap_den": "1.000000000000", "run_cluster": null, "run_instance_regex": null}
--     {"pool_idx": 4, "pool_id": "oci-network", "method": "even", "driver": null, "unit": null, "grain": "project", "idle": null, "fallback": null, "scope": "all", "has_targets": true, "cap_per_day": null, "cap_from_cq": false, "cap_skus": [], "cap_unit": null, "cap_num": "1.000000000000", "cap_den": "1.000000000000", "run_cluster": null, "run_instance_regex": null}
--     {"pool_idx": 5, "pool_id": "research-scratch-storage", "method": "proportional_usage", "driver": "scratch_storage_gb", "unit": "GB", "grain": "project", "idle": "share", "fallback": "unallocated", "scope": "all", "has_targets": false, "cap_per_day": null, "cap_from_cq": false, "cap_skus": [], "cap_unit": null, "cap_num": "1.000000000000", "cap_den": "1.000000000000", "run_cluster": null, "run_instance_regex": null}
--     {"pool_idx": 6, "pool_id": "azure-platform", "method": "proportional_usage", "driver": "mlflow_runs", "unit": "runs", "grain": "project", "idle": "share", "fallback": "unallocated", "scope": "all", "has_targets": false, "cap_per_day": null, "cap_from_cq": false, "cap_skus": [], "cap_unit": null, "cap_num": "1.000000000000", "cap_den": "1.000000000000", "run_cluster": null, "run_instance_regex": null}
--     {"pool_idx": 7, "pool_id": "platform-overhead", "method": "proportional_cost", "driver": null, "unit": "USD", "grain": "project", "idle": null, "fallback": "unallocated", "scope": "all", "has_targets": false, "cap_per_day": null, "cap_from_cq": false, "cap_skus": [], "cap_unit": null, "cap_num": "1.000000000000", "cap_den": "1.000000000000", "run_cluster": null, "run_instance_regex": null}
--     {"pool_idx": 8, "pool_id": "tax", "method": "proportional_cost", "driver": null, "unit": "USD", "grain": "project", "idle": null, "fallback": "unallocated", "scope": "provider", "has_targets": false, "cap_per_day": null, "cap_from_cq": false, "cap_skus": [], "cap_unit": null, "cap_num": "1.000000000000", "cap_den": "1.000000000000", "run_cluster": null, "run_instance_regex": null}
--   _mlc_targets (pool_idx, target_no, project, model, team, environment, cost_center, weight): 8 row(s)
--     {"pool_idx": 2, "target_no": 0, "project": "llm-assistant", "model": null, "team": null, "environment": null, "cost_center": null, "weight": "1.000000000000"}
--     {"pool_idx": 2, "target_no": 1, "project": "vision-qa", "model": null, "team": null, "environment": null, "cost_center": null, "weight": "1.000000000000"}
--     {"pool_idx": 2, "target_no": 2, "project": "churn", "model": null, "team": null, "environment": null, "cost_center": null, "weight": "1.000000000000"}
--     {"pool_idx": 3, "target_no": 0, "project": "recsys", "model": null, "team": null, "environment": null, "cost_center": null, "weight": "50.000000000000"}
--     {"pool_idx": 3, "target_no": 1, "project": "churn", "model": null, "team": null, "environment": null, "cost_center": null, "weight": "30.000000000000"}
--     {"pool_idx": 3, "target_no": 2, "project": "search-ranking", "model": null, "team": null, "environment": null, "cost_center": null, "weight": "20.000000000000"}
--     {"pool_idx": 4, "target_no": 0, "project": "vision-qa", "model": null, "team": null, "environment": null, "cost_center": null, "weight": "1.000000000000"}
--     {"pool_idx": 4, "target_no": 1, "project": "data-platform", "model": null, "team": null, "environment": null, "cost_center": null, "weight": "1.000000000000"}
--   _mlc_rates (instance_type, hourly, gpus): 6 row(s)
--     {"instance_type": "BM.GPU.A10.4", "hourly": "8.000000000000", "gpus": 4}
--     {"instance_type": "Standard_NC24ads_A100_v4", "hourly": "3.673000000000", "gpus": 1}
--     {"instance_type": "a2-highgpu-1g", "hourly": "3.313240000000", "gpus": 1}
--     {"instance_type": "g5.12xlarge", "hourly": "5.672000000000", "gpus": 4}
--     {"instance_type": "g5.xlarge", "hourly": "1.006000000000", "gpus": 1}
--     {"instance_type": "p4d.24xlarge", "hourly": "32.772600000000", "gpus": 8}
-- Frames computed per window:
--   _mlc_fx: per (day, billing currency) of the window, the rates file's rate ('fx needs' and the file)
--   _mlc_driver_usage: per (driver, day, project, model), the table drivers' quantities (CSV rows, 'driver' statements), project and model normalized like tags
--   _mlc_rate_fx: per day of the window, the rate converting the run rate card to the reporting currency

-- ========== core.cost_cells, core.allocated_cells (allocation.engine.allocate_window) ==========
-- Stages 0 to 2 run in one transaction; each INSERT follows a DELETE of its table's window.
-- core.allocated_costs is the view of the last statement (created before the transaction).

-- [1] macros: exact integer helpers: money <-> 10^-12 units, a x n / d rounded half-even
-- binds: nothing
-- money <-> integer units of 10^-12 (whole part and fraction separately: a product with 10^12 would overflow)
CREATE OR REPLACE TEMP MACRO mlc_units(x) AS
    CAST(trunc(x) AS HUGEINT) * 1000000000000 + CAST((x - trunc(x)) * 1000000000000 AS HUGEINT);
CREATE OR REPLACE TEMP MACRO mlc_money(u) AS
    CAST(CAST(u AS DECIMAL(38,0)) * CAST(0.000000000001 AS DECIMAL(13,12)) AS DECIMAL(38,12));
-- for a, n >= 0 and d > 0: the quotient and remainder of a x n / d
CREATE OR REPLACE TEMP MACRO mlc_q(a, n, d) AS (a // d) * n + ((a % d) * n) // d;
CREATE OR REPLACE TEMP MACRO mlc_r(a, n, d) AS ((a % d) * n) % d;
-- signed a: a x n / d rounded half-even
CREATE OR REPLACE TEMP MACRO mlc_muldiv(a, n, d) AS sign(a) * (mlc_q(abs(a), n, d) + CASE
    WHEN 2 * mlc_r(abs(a), n, d) > d OR (2 * mlc_r(abs(a), n, d) = d AND mlc_q(abs(a), n, d) % 2 = 1)
    THEN 1 ELSE 0 END);
CREATE OR REPLACE TEMP MACRO mlc_round_div(p, d) AS mlc_muldiv(p, 1, d);

-- [2] stage 0: the window's lines of core.focus_costs grouped to cost cells, one scan: the window's rows of core.cost_cells
-- binds: $start, $end: the window [start, end)
--        $match_run_resource = true
--        $reporting = 'USD'
INSERT INTO core.cost_cells BY NAME
WITH run_resources AS (
    SELECT DISTINCT lower(resource_id) AS rid FROM core.ml_runs WHERE $match_run_resource AND resource_id IS NOT NULL
), grouped AS (
    SELECT "x_ChargeDate", "BillingCurrency", "ProviderName", "BillingAccountId", "SubAccountId",
       "ServiceName", "ServiceCategory", "RegionId", "ResourceId", "x_ResourceGroupName", "ChargeCategory",
       "PricingCategory", "SkuId", "ConsumedUnit", "x_SourceSystem", "x_CurrencyConversionRate", "Tags",
           CASE WHEN lower(ResourceId) IN (SELECT rid FROM run_resources) THEN "ChargePeriodStart" END AS "ChargePeriodStart",
           CASE WHEN lower(ResourceId) IN (SELECT rid FROM run_resources) THEN "ChargePeriodEnd" END AS "ChargePeriodEnd",
           -- a line in another currency is converted as itself (amount_reporting converts each charge first)
           CASE WHEN BillingCurrency <> $reporting THEN x_LineId END AS x_LineId,
           sum("BilledCost") AS "BilledCost",
           sum("EffectiveCost") AS "EffectiveCost",
           sum("ListCost") AS "ListCost",
           sum("ContractedCost") AS "ContractedCost",
           sum("ConsumedQuantity") AS "ConsumedQuantity",
           count(*) AS line_count
    FROM core.focus_costs WHERE x_ChargeDate >= $start AND x_ChargeDate < $end
    GROUP BY ALL
), keyed AS (
    SELECT md5(to_json(list_value(CAST("BillingCurrency" AS VARCHAR), CAST("ProviderName" AS VARCHAR), CAST("BillingAccountId" AS VARCHAR), CAST("SubAccountId" AS VARCHAR), CAST("ServiceName" AS VARCHAR), CAST("ServiceCategory" AS VARCHAR), CAST("RegionId" AS VARCHAR), CAST("ResourceId" AS VARCHAR), CAST("x_ResourceGroupName" AS VARCHAR), CAST("ChargeCategory" AS VARCHAR), CAST("PricingCategory" AS VARCHAR), CAST("SkuId" AS VARCHAR), CAST("ConsumedUnit" AS VARCHAR), CAST("x_SourceSystem" AS VARCHAR), CAST("x_CurrencyConversionRate" AS VARCHAR), CAST("Tags" AS VARCHAR)))) AS cell_key, * FROM grouped
)
SELECT CAST(date_diff('day', DATE '1970-01-01', x_ChargeDate) AS BIGINT) * 4294967296
       + row_number() OVER (PARTITION BY x_ChargeDate ORDER BY cell_key, "ChargePeriodStart", "ChargePeriodEnd", x_LineId) AS cid,
       *
FROM keyed;

-- [3] fx needs: the (day, currency) pairs needing a rate from the rates file (-> _mlc_fx)
-- binds: $start, $end: the window [start, end)
--        $provider_ok = true
WITH cost_input AS (
    SELECT * FROM core.cost_cells WHERE x_ChargeDate >= $start AND x_ChargeDate < $end
)
SELECT x_ChargeDate, BillingCurrency,
       CAST(coalesce(sum(line_count) FILTER (WHERE NOT ($provider_ok AND coalesce(x_CurrencyConversionRate, 0) > 0)), 0)
            AS BIGINT),
       CAST(sum(line_count) AS BIGINT)
FROM cost_input GROUP BY ALL ORDER BY ALL;

-- [4] driver mlflow_runs: columns: the columns drivers.mlflow_runs.sql returns (no rows)
-- binds: nothing
SELECT * FROM (SELECT x_RunDate AS day, project_tag AS project, count(*) AS quantity FROM core.ml_runs WHERE project_tag IS NOT NULL GROUP BY ALL) AS _driver LIMIT 0;

-- [5] driver mlflow_runs: rows: drivers.mlflow_runs.sql in the window (-> _mlc_driver_usage)
-- binds: $start, $end: the window [start, end)
SELECT CAST(day AS DATE), CAST(project AS VARCHAR), CAST(model AS VARCHAR), CAST(quantity AS DECIMAL(38,12))
FROM (
    SELECT * FROM (SELECT CAST(NULL AS VARCHAR) AS model LIMIT 0)
    UNION ALL BY NAME
    SELECT * FROM (SELECT x_RunDate AS day, project_tag AS project, count(*) AS quantity FROM core.ml_runs WHERE project_tag IS NOT NULL GROUP BY ALL)
) AS _driver
WHERE CAST(day AS DATE) >= $start AND CAST(day AS DATE) < $end;

-- [6] stage 1: once per charge: owner, value in the reporting currency, pool (-> TEMP TABLE _mlc_valued)
-- binds: $start, $end: the window [start, end)
--        $dim_cost_center_from = []
--        $dim_cost_center_to = []
--        $dim_environment_from = []
--        $dim_environment_to = []
--        $dim_model_from = []
--        $dim_model_to = []
--        $dim_project_from = ['churn-pred']
--        $dim_project_to = ['churn']
--        $dim_team_from = []
--        $dim_team_to = []
--        $fb_rid_0 = '^ocid1\.bucket\.oc1\.[a-z0-9-]+\.acme-oci-logs$'
--        $pool0_accounts = ['222222222222']
--        $pool0_providers = ['AWS']
--        $pool0_services = ['Amazon Elastic Compute Cloud - Compute']
--        $pool1_providers = ['Google Cloud']
--        $pool1_tag0_values = ['gpu-shared']
--        $pool2_resource_groups = ['rg-shared-gpu']
--        $pool3_accounts = ['acme-shared-ml']
--        $pool3_services = ['Cloud Storage']
--        $pool4_providers = ['Oracle']
--        $pool4_services = ['Networking']
--        $pool5_accounts = ['222222222222']
--        $pool5_services = ['Amazon Simple Storage Service']
--        $pool6_resource_groups = ['rg-platform']
--        $pool7_accounts = ['333333333333']
--        $pool7_charge_categories = ['Usage']
--        $pool8_charge_categories = ['Tax']
--        $provider_ok = true
--        $reporting = 'USD'
--        $tag_struct = '{"project": "VARCHAR", "proj": "VARCHAR", "model": "VARCHAR", "ml_model": "VARCHAR", "model_name": "VARCHAR", "team": "VARCHAR", "goog-project:team": "VARCHAR", "env": "VARCHAR", "environment": "VARCHAR", "goog-project:env": "VARCHAR", "cost_center": "VARCHAR", "costcenter": "VARCHAR", "cluster": "VARCHAR", "mlflow_run_id": "VARCHAR"}'
CREATE OR REPLACE TEMP TABLE _mlc_valued AS
WITH cost_input AS (
    SELECT * FROM core.cost_cells WHERE x_ChargeDate >= $start AND x_ChargeDate < $end
), charges AS (
    SELECT f.cid, f.cell_key, f.line_count, f.x_ChargeDate AS day, f.BillingCurrency AS currency,
           f."EffectiveCost" AS charge_amount, f.ProviderName, f.ServiceName, f.ServiceCategory, f.SubAccountId,
           f.ResourceId, f.x_ResourceGroupName, f.ChargeCategory, f.ChargePeriodStart, f.ChargePeriodEnd,
           f.ConsumedQuantity, f.ConsumedUnit, f.SkuId, f.x_SourceSystem, f.x_CurrencyConversionRate,
           json_transform(lower(f.Tags), $tag_struct) AS tg
    FROM cost_input AS f
), raw AS (
    SELECT *,
        coalesce(nullif(trim(struct_extract_at(tg, 1)), ''), nullif(trim(struct_extract_at(tg, 2)), '')) AS raw_project,
        coalesce(nullif(trim(struct_extract_at(tg, 3)), ''), nullif(trim(struct_extract_at(tg, 4)), ''), nullif(trim(struct_extract_at(tg, 5)), '')) AS raw_model,
        coalesce(nullif(trim(struct_extract_at(tg, 6)), ''), nullif(trim(struct_extract_at(tg, 7)), '')) AS raw_team,
        coalesce(nullif(trim(struct_extract_at(tg, 8)), ''), nullif(trim(struct_extract_at(tg, 9)), ''), nullif(trim(struct_extract_at(tg, 10)), '')) AS raw_environment,
        coalesce(nullif(trim(struct_extract_at(tg, 11)), ''), nullif(trim(struct_extract_at(tg, 12)), '')) AS raw_cost_center,
        CASE WHEN regexp_matches(ResourceId, $fb_rid_0) THEN '0' END AS rid_idx,
        coalesce(nullif(trim(struct_extract_at(tg, 14)), '')) AS run_tag
    FROM charges
), tagged AS (
    SELECT * EXCLUDE (raw_project, raw_model, raw_team, raw_environment, raw_cost_center),
        coalesce($dim_project_to[list_position($dim_project_from, regexp_replace(lower(trim(raw_project)), '[_[:space:]]+', '-', 'g'))], regexp_replace(lower(trim(raw_project)), '[_[:space:]]+', '-', 'g')) AS tag_project,
        coalesce($dim_model_to[list_position($dim_model_from, regexp_replace(lower(trim(raw_model)), '[_[:space:]]+', '-', 'g'))], regexp_replace(lower(trim(raw_model)), '[_[:space:]]+', '-', 'g')) AS tag_model,
        coalesce($dim_team_to[list_position($dim_team_from, regexp_replace(lower(trim(raw_team)), '[_[:space:]]+', '-', 'g'))], regexp_replace(lower(trim(raw_team)), '[_[:space:]]+', '-', 'g')) AS tag_team,
        coalesce($dim_environment_to[list_position($dim_environment_from, regexp_replace(lower(trim(raw_environment)), '[_[:space:]]+', '-', 'g'))], regexp_replace(lower(trim(raw_environment)), '[_[:space:]]+', '-', 'g')) AS tag_environment,
        coalesce($dim_cost_center_to[list_position($dim_cost_center_from, regexp_replace(lower(trim(raw_cost_center)), '[_[:space:]]+', '-', 'g'))], regexp_replace(lower(trim(raw_cost_center)), '[_[:space:]]+', '-', 'g')) AS tag_cost_center
    FROM raw
), owned AS (
    SELECT c.*,
        coalesce(tag_project, fb_rid.project, fb_rg.project, fb_acct.project) AS owner_project,
        coalesce(tag_model, fb_rid.model, fb_rg.model, fb_acct.model) AS owner_model,
        coalesce(tag_team, fb_rid.team, fb_rg.team, fb_acct.team) AS owner_team,
        coalesce(tag_environment, fb_rid.environment, fb_rg.environment, fb_acct.environment) AS owner_environment,
        coalesce(tag_cost_center, fb_rid.cost_center, fb_rg.cost_center, fb_acct.cost_center) AS owner_cost_center,
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
    SELECT * EXCLUDE (tg, tag_project, tag_model, tag_team, tag_environment, tag_cost_center, rid_idx),
        -- the first matching pool, in file order; DuckDB evaluates AND left to right on the rows still selected,
        -- so the cheap tests go first; a NULL is false
        CASE
            WHEN (list_contains($pool0_providers, ProviderName))
             AND (list_contains($pool0_services, ServiceName))
             AND (list_contains($pool0_accounts, SubAccountId))
             AND (owner_project IS NULL)
                THEN 0  -- pool aws-shared-gpu
            WHEN (list_contains($pool1_providers, ProviderName))
             AND (list_contains($pool1_tag0_values, trim(struct_extract_at(tg, 13))))
                THEN 1  -- pool gcp-shared-gpu
            WHEN (list_contains($pool2_resource_groups, lower(x_ResourceGroupName)))
                THEN 2  -- pool azure-shared-gpu
            WHEN (list_contains($pool3_services, ServiceName))
             AND (list_contains($pool3_accounts, SubAccountId))
             AND (owner_project IS NULL)
                THEN 3  -- pool gcp-shared-bucket
            WHEN (list_contains($pool4_providers, ProviderName))
             AND (list_contains($pool4_services, ServiceName))
                THEN 4  -- pool oci-network
            WHEN (list_contains($pool5_services, ServiceName))
             AND (list_contains($pool5_accounts, SubAccountId))
             AND (owner_project IS NULL)
                THEN 5  -- pool research-scratch-storage
            WHEN (list_contains($pool6_resource_groups, lower(x_ResourceGroupName)))
                THEN 6  -- pool azure-platform
            WHEN (list_contains($pool7_accounts, SubAccountId))
             AND (list_contains($pool7_charge_categories, ChargeCategory))
                THEN 7  -- pool platform-overhead
            WHEN (list_contains($pool8_charge_categories, ChargeCategory))
                THEN 8  -- pool tax
        END AS pool_idx
    FROM rated
)
-- The exact conversion costs 128-bit arithmetic: only rows in another currency pay for it.
SELECT *, charge_amount AS charge_reporting, CAST(1 AS DECIMAL(38,12)) AS fx_rate
FROM pooled WHERE fx_source = 'same'
UNION ALL
SELECT *, mlc_money(mlc_muldiv(mlc_units(charge_amount), mlc_units(fx_num), mlc_units(fx_den))) AS charge_reporting,
    mlc_money(mlc_muldiv(mlc_units(CAST(1 AS DECIMAL(38,12))), mlc_units(fx_num), mlc_units(fx_den))) AS fx_rate
FROM pooled WHERE fx_source IS DISTINCT FROM 'same';

-- [7] stage 2: the pieces of every cost cell: the window's rows of core.allocated_cells
-- binds: $start, $end: the window [start, end)
--        $cost_basis = 'EffectiveCost'
--        $dim_model_from = []
--        $dim_model_keys = ['model', 'ml_model', 'model_name']
--        $dim_model_to = []
--        $dim_project_from = ['churn-pred']
--        $dim_project_keys = ['project', 'proj']
--        $dim_project_to = ['churn']
--        $match_run_resource = true
--        $reporting = 'USD'
--        $rules_hash = '82f4f73fa1c10f61390724dbb25bc4ee9ef39e33043818f47d266f56ca9823bc'
INSERT INTO core.allocated_cells BY NAME
WITH direct AS (
    SELECT * FROM _mlc_valued WHERE pool_idx IS NULL AND day >= $start AND day < $end
), runs AS (
    SELECT run_id, start_time AS run_start, end_time AS run_end, lower(resource_id) AS run_rid,
           cluster AS run_cluster, instance_type AS run_instance_type, gpu_count AS run_gpu_count,
           coalesce($dim_project_to[list_position($dim_project_from, regexp_replace(lower(trim(list_filter(list_transform($dim_project_keys, lambda k: list_filter(run_tag_entries, lambda e: lower(e.key) = k)[1].value), lambda v: v IS NOT NULL AND trim(v) <> '')[1])), '[_[:space:]]+', '-', 'g'))], regexp_replace(lower(trim(list_filter(list_transform($dim_project_keys, lambda k: list_filter(run_tag_entries, lambda e: lower(e.key) = k)[1].value), lambda v: v IS NOT NULL AND trim(v) <> '')[1])), '[_[:space:]]+', '-', 'g')) AS run_project,
           coalesce($dim_model_to[list_position($dim_model_from, regexp_replace(lower(trim(list_filter(list_transform($dim_model_keys, lambda k: list_filter(run_tag_entries, lambda e: lower(e.key) = k)[1].value), lambda v: v IS NOT NULL AND trim(v) <> '')[1])), '[_[:space:]]+', '-', 'g'))], regexp_replace(lower(trim(list_filter(list_transform($dim_model_keys, lambda k: list_filter(run_tag_entries, lambda e: lower(e.key) = k)[1].value), lambda v: v IS NOT NULL AND trim(v) <> '')[1])), '[_[:space:]]+', '-', 'g')) AS run_model
    FROM (SELECT *, map_entries(coalesce(CAST(tags AS MAP(VARCHAR, VARCHAR)), MAP {})) AS run_tag_entries FROM core.ml_runs)
), tag_runs AS (
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
), pool_charges AS (
    SELECT v.*, CASE WHEN p.scope = 'provider' THEN v.ProviderName ELSE '' END AS scope_key,
           abs(mlc_units(v.charge_amount)) AS ua, abs(mlc_units(v.charge_reporting)) AS ur
    FROM _mlc_valued AS v JOIN _mlc_pools AS p USING (pool_idx)
), pool_days AS (
    SELECT DISTINCT pool_idx, day, scope_key FROM pool_charges
), pool_day_bounds AS (
    SELECT DISTINCT pool_idx, day, CAST(day AS TIMESTAMP) AS day_start,
           CAST(day AS TIMESTAMP) + INTERVAL 1 DAY AS day_end
    FROM pool_days
), run_usage AS (
    SELECT b.pool_idx, b.day, coalesce(r.run_project, '__unallocated__') AS project, r.run_model AS model, r.run_id,
           mlc_money(mlc_round_div(CAST(r.run_gpu_count AS HUGEINT)
               * date_diff('microsecond', greatest(r.run_start, b.day_start),
                           least(coalesce(r.run_end, b.day_end), b.day_end)) * 10000, 36)) AS qty
    FROM pool_day_bounds AS b
    JOIN _mlc_pools AS p USING (pool_idx)
    JOIN runs AS r ON r.run_start < b.day_end AND coalesce(r.run_end, b.day_end) > b.day_start
    WHERE p.driver = 'gpu_hours' AND coalesce(r.run_gpu_count, 0) > 0
      AND (p.run_cluster IS NULL OR r.run_cluster = p.run_cluster)
      AND (p.run_instance_regex IS NULL OR coalesce(regexp_matches(r.run_instance_type, p.run_instance_regex), false))
), table_usage AS (
    SELECT b.pool_idx, b.day, u.project, u.model, CAST(NULL AS VARCHAR) AS run_id, u.quantity AS qty
    FROM pool_day_bounds AS b
    JOIN _mlc_pools AS p USING (pool_idx)
    JOIN _mlc_driver_usage AS u ON u.driver = p.driver AND u.day = b.day
), usage AS (
    SELECT u.pool_idx, u.day, u.project,
           CASE WHEN p.grain <> 'project' THEN u.model END AS model,
           CASE WHEN p.grain = 'run' THEN u.run_id END AS run_id,
           sum(u.qty) AS qty
    FROM (SELECT * FROM run_usage UNION ALL SELECT * FROM table_usage) AS u JOIN _mlc_pools AS p USING (pool_idx)
    GROUP BY ALL
), used AS (
    SELECT pool_idx, day, sum(qty) AS used FROM usage GROUP BY ALL
), consumed AS (
    SELECT c.pool_idx, c.day, sum(c.ConsumedQuantity) AS quantity
    FROM pool_charges AS c JOIN _mlc_pools AS p USING (pool_idx)
    WHERE p.cap_from_cq AND c.ConsumedQuantity IS NOT NULL
      AND (len(p.cap_skus) = 0 OR list_contains(p.cap_skus, c.SkuId))
      AND (p.cap_unit IS NULL OR c.ConsumedUnit = p.cap_unit)
    GROUP BY ALL
), idle AS (
    SELECT u.pool_idx, u.day,
           greatest(coalesce(p.cap_per_day,
                             mlc_money(mlc_muldiv(mlc_units(k.quantity), mlc_units(p.cap_num),
                                                  mlc_units(p.cap_den))), 0) - u.used, 0) AS qty
    FROM used AS u JOIN _mlc_pools AS p USING (pool_idx)
    LEFT JOIN consumed AS k USING (pool_idx, day)
    WHERE p.idle = 'keep' AND u.used > 0
), direct_cost AS (
    SELECT day, ProviderName AS provider, owner_project AS project, sum(charge_reporting) AS cost
    FROM direct WHERE owner_project IS NOT NULL GROUP BY ALL
), weights AS (
    SELECT d.pool_idx, d.day, d.scope_key, t.project, t.model, t.team, t.environment, t.cost_center,
           CAST(NULL AS VARCHAR) AS run_id, t.weight AS qty, 'target' AS share, t.target_no AS tno
    FROM pool_days AS d JOIN _mlc_pools AS p USING (pool_idx) JOIN _mlc_targets AS t USING (pool_idx)
    WHERE p.method IN ('even', 'fixed')
    UNION ALL
    SELECT d.pool_idx, d.day, d.scope_key, c.project, NULL, NULL, NULL, NULL, NULL,
           greatest(sum(c.cost), 0), 'cost', 0
    FROM pool_days AS d JOIN _mlc_pools AS p USING (pool_idx) JOIN direct_cost AS c ON c.day = d.day
    WHERE p.method = 'proportional_cost' AND (d.scope_key = '' OR c.provider = d.scope_key)
      AND (NOT p.has_targets
           OR EXISTS (SELECT 1 FROM _mlc_targets AS t WHERE t.pool_idx = d.pool_idx AND t.project = c.project))
    GROUP BY d.pool_idx, d.day, d.scope_key, c.project
    UNION ALL
    SELECT pool_idx, day, '', project, model, NULL, NULL, NULL, run_id, qty, 'usage', 0 FROM usage
    UNION ALL
    SELECT pool_idx, day, '', '__idle__', NULL, NULL, NULL, NULL, NULL, qty, 'idle', 0 FROM idle
), positive AS (
    SELECT * FROM weights WHERE qty > 0
), uncovered AS (
    SELECT d.* FROM pool_days AS d
    WHERE NOT EXISTS (SELECT 1 FROM positive AS w
                      WHERE w.pool_idx = d.pool_idx AND w.day = d.day AND w.scope_key = d.scope_key)
), all_weights_raw AS (
    SELECT * FROM positive
    UNION ALL
    SELECT d.pool_idx, d.day, d.scope_key, t.project, t.model, t.team, t.environment, t.cost_center, NULL,
           CAST(1 AS DECIMAL(38,12)), 'fallback', t.target_no
    FROM uncovered AS d JOIN _mlc_pools AS p USING (pool_idx) JOIN _mlc_targets AS t USING (pool_idx)
    WHERE p.fallback = 'even'
    UNION ALL
    SELECT d.pool_idx, d.day, d.scope_key,
           CASE WHEN p.fallback = 'idle' THEN '__idle__' ELSE '__unallocated__' END, NULL, NULL, NULL, NULL, NULL,
           CAST(1 AS DECIMAL(38,12)), 'fallback', 0
    FROM uncovered AS d JOIN _mlc_pools AS p USING (pool_idx)
    WHERE p.fallback IN ('idle', 'unallocated')
), all_weights AS (
    SELECT *, concat_ws('|', CASE share WHEN 'idle' THEN '1' WHEN 'fallback' THEN '2' ELSE '0' END,
                        lpad(CAST(tno AS VARCHAR), 6, '0'), project, coalesce(model, ''), coalesce(team, ''),
                        coalesce(environment, ''), coalesce(cost_center, ''), coalesce(run_id, '')) AS sort_key
    FROM all_weights_raw
), pool_w_p AS (
    SELECT *, CAST(row_number() OVER (PARTITION BY pool_idx, day, scope_key ORDER BY sort_key) - 1 AS INTEGER) AS pno,
           CAST(round(CAST(qty AS DOUBLE) / CAST(sum(qty) OVER (PARTITION BY pool_idx, day, scope_key) AS DOUBLE)
                      * 1000000000000000) AS HUGEINT) AS p
    FROM all_weights
), pool_w_t AS (
    SELECT *, sum(p) OVER (PARTITION BY pool_idx, day, scope_key) AS ptotal,
           mlc_q(CAST(1000000000000 AS HUGEINT), p, sum(p) OVER (PARTITION BY pool_idx, day, scope_key)) AS _q1,
           mlc_r(CAST(1000000000000 AS HUGEINT), p, sum(p) OVER (PARTITION BY pool_idx, day, scope_key)) AS _m1
    FROM pool_w_p
), pool_w AS (
    SELECT * EXCLUDE (_q1, _m1),
           mlc_money(_q1 + CASE WHEN row_number() OVER (PARTITION BY pool_idx, day, scope_key ORDER BY _m1 DESC, pno)
                                     <= 1000000000000 - sum(_q1) OVER (PARTITION BY pool_idx, day, scope_key) THEN 1 ELSE 0 END)
               AS ratio
    FROM pool_w_t
), rid_w_p AS (
    SELECT *, CAST(row_number() OVER (PARTITION BY cid ORDER BY sort_key) - 1 AS INTEGER) AS pno,
           CAST(round(CAST(qty AS DOUBLE) / CAST(sum(qty) OVER (PARTITION BY cid) AS DOUBLE)
                      * 1000000000000000) AS HUGEINT) AS p
    FROM rid_shares
), rid_w_t AS (
    SELECT *, sum(p) OVER (PARTITION BY cid) AS ptotal,
           mlc_q(CAST(1000000000000 AS HUGEINT), p, sum(p) OVER (PARTITION BY cid)) AS _q1,
           mlc_r(CAST(1000000000000 AS HUGEINT), p, sum(p) OVER (PARTITION BY cid)) AS _m1
    FROM rid_w_p
), rid_w AS (
    SELECT * EXCLUDE (_q1, _m1),
           mlc_money(_q1 + CASE WHEN row_number() OVER (PARTITION BY cid ORDER BY _m1 DESC, pno)
                                     <= 1000000000000 - sum(_q1) OVER (PARTITION BY cid) THEN 1 ELSE 0 END)
               AS ratio
    FROM rid_w_t
), pool_out AS (
    SELECT w.pool_idx, w.day, w.scope_key, w.pno, w.p, w.ptotal,
           row_number() OVER (ORDER BY w.pool_idx, w.day, w.scope_key, w.pno) AS wid,
           w.project, w.model, w.team, w.environment, w.cost_center, w.run_id,
           CASE WHEN w.run_id IS NOT NULL THEN 'pool_share' END AS run_basis,
           'pool:' || p.pool_id AS rule_id, p.method, w.ratio,
           'pool:' || p.pool_id AS AllocatedMethodId,
        CASE WHEN 'pool:' || p.pool_id IS NOT NULL THEN
            '{"Elements":[{"AllocatedRatio":' || CAST(w.ratio AS VARCHAR)
            || ',"UsageUnit":' || coalesce(to_json(CASE WHEN w.share IN ('cost', 'usage', 'idle') THEN p.unit END), 'null')
            || ',"UsageQuantity":' || coalesce(CAST(CASE WHEN w.share IN ('cost', 'usage', 'idle') THEN w.qty END AS VARCHAR), 'null')
            || '}],"x_Share":"' || w.share || '","x_CostBasis":"' || $cost_basis || '"}'
            END AS AllocatedMethodDetails,
        CASE WHEN w.project <> '__unallocated__' THEN coalesce(w.run_id, w.project || coalesce('/' || w.model, '')) END
            AS AllocatedResourceId,
        CASE WHEN w.project <> '__unallocated__' THEN '{"x_project":' || to_json(w.project)
            || coalesce(',"x_model":' || to_json(w.model), '')
            || coalesce(',"x_team":' || to_json(w.team), '')
            || coalesce(',"x_environment":' || to_json(w.environment), '')
            || coalesce(',"x_cost_center":' || to_json(w.cost_center), '')
            || coalesce(',"x_run_id":' || to_json(w.run_id), '')
            || '}' END AS AllocatedTags
    FROM pool_w AS w JOIN _mlc_pools AS p USING (pool_idx)
), split_in AS (
    SELECT c.cid, 'pool' AS src, w.wid, w.pno, w.p, w.ptotal, c.ua, c.ur
    FROM pool_charges AS c JOIN pool_out AS w USING (pool_idx, day, scope_key)
    UNION ALL
    SELECT d.cid, 'rid', NULL, w.pno, w.p, w.ptotal, abs(mlc_units(d.charge_amount)),
           abs(mlc_units(d.charge_reporting))
    FROM direct AS d JOIN rid_w AS w USING (cid)
), split_f AS (
    SELECT cid, src, wid, pno, ua, ur, CAST(p AS BIGINT) AS n, CAST(ptotal AS BIGINT) AS d,
           CAST(ua AS BIGINT) // CAST(ptotal AS BIGINT) AS wa, CAST(ua AS BIGINT) % CAST(ptotal AS BIGINT) AS ra,
           CAST(ur AS BIGINT) // CAST(ptotal AS BIGINT) AS wr, CAST(ur AS BIGINT) % CAST(ptotal AS BIGINT) AS rr
    FROM split_in WHERE ua < 4611686018427387904 AND ur < 4611686018427387904 AND ptotal < 9007199254740992 AND p <= ptotal
), split_e AS (
    SELECT *, CAST(floor(CAST(ra AS DOUBLE) * CAST(n AS DOUBLE) / CAST(d AS DOUBLE)) AS BIGINT) AS ea,
              CAST(floor(CAST(rr AS DOUBLE) * CAST(n AS DOUBLE) / CAST(d AS DOUBLE)) AS BIGINT) AS er
    FROM split_f
), split_x AS (
    SELECT *, CAST(ra AS HUGEINT) * n - CAST(ea AS HUGEINT) * d AS xa,
              CAST(rr AS HUGEINT) * n - CAST(er AS HUGEINT) * d AS xr
    FROM split_e
), split_c AS (
    SELECT *, CASE WHEN xa < 0 THEN CASE WHEN xa >= -d THEN -1 WHEN xa >= -2 * d THEN -2 ELSE -3 END
                WHEN xa >= d THEN CASE WHEN xa < 2 * d THEN 1 WHEN xa < 3 * d THEN 2 ELSE 3 END ELSE 0 END AS ka,
              CASE WHEN xr < 0 THEN CASE WHEN xr >= -d THEN -1 WHEN xr >= -2 * d THEN -2 ELSE -3 END
                WHEN xr >= d THEN CASE WHEN xr < 2 * d THEN 1 WHEN xr < 3 * d THEN 2 ELSE 3 END ELSE 0 END AS kr
    FROM split_x
), split_q AS (
    SELECT cid, src, wid, pno, ua, ur,
           CAST(wa * n + ea + ka AS HUGEINT) AS qa, xa - ka * d AS ma,
           CAST(wr * n + er + kr AS HUGEINT) AS qr, xr - kr * d AS mr
    FROM split_c
    UNION ALL
    SELECT cid, src, wid, pno, ua, ur,
           mlc_q(ua, p, ptotal) AS qa, mlc_r(ua, p, ptotal) AS ma,
           mlc_q(ur, p, ptotal) AS qr, mlc_r(ur, p, ptotal) AS mr
    FROM split_in WHERE NOT (ua < 4611686018427387904 AND ur < 4611686018427387904 AND ptotal < 9007199254740992 AND p <= ptotal)
), split_k AS (
    SELECT cid, src, wid, pno, qa, qr,
           ua - sum(qa) OVER c AS da, ur - sum(qr) OVER c AS dr,
           row_number() OVER (PARTITION BY cid ORDER BY ma DESC, pno) AS ka,
           row_number() OVER (PARTITION BY cid ORDER BY mr DESC, pno) AS kr
    FROM split_q
    WINDOW c AS (PARTITION BY cid)
), split AS (
    SELECT cid, src, wid, pno, qa + CASE WHEN ka <= da THEN 1 ELSE 0 END AS a_units,
           qr + CASE WHEN kr <= dr THEN 1 ELSE 0 END AS r_units
    FROM split_k
), direct_pieces AS (
    SELECT d.cid, d.line_count, d.day, d.currency, d.fx_rate, d.fx_source, d.fx_num, d.fx_den,
        coalesce(d.owner_project, t.run_project, '__unallocated__') AS project,
        coalesce(d.owner_model, t.run_model) AS model,
        d.owner_team AS team, d.owner_environment AS environment, d.owner_cost_center AS cost_center,
        t.run_id, CASE WHEN t.run_id IS NOT NULL THEN 'direct' END AS run_basis,
        CASE WHEN d.owner_rule IS NOT NULL THEN d.owner_rule WHEN d.owner_project IS NULL AND t.run_id IS NOT NULL THEN 'run:tag' ELSE 'unallocated' END
            AS rule_id,
        CASE WHEN d.owner_rule LIKE 'tag:%' THEN 'tag' WHEN d.owner_rule IS NOT NULL THEN 'fallback'
             WHEN d.owner_project IS NULL AND t.run_id IS NOT NULL THEN 'run' ELSE 'unallocated' END AS method,
        CASE WHEN t.run_id IS NOT NULL OR 'whole' = 'remainder' THEN 'run:tag' ELSE d.owner_rule END AS method_id,
        'whole' AS share, CASE WHEN CAST(NULL AS DECIMAL(38,12)) IS NOT NULL THEN 'Hours' END AS usage_unit,
        CAST(NULL AS DECIMAL(38,12)) AS usage_quantity,
        d.ProviderName, d.ServiceName, d.ServiceCategory, d.SubAccountId, d.ResourceId, d.x_SourceSystem,
        0 AS piece, d.charge_amount AS amount, d.charge_reporting AS amount_reporting, CAST(1 AS DECIMAL(38,12)) AS ratio,
        CAST(1 AS HUGEINT) AS p, CAST(1 AS HUGEINT) AS ptotal
    FROM direct AS d LEFT JOIN tag_runs AS t USING (cid)
    WHERE NOT EXISTS (SELECT 1 FROM rid_w AS h WHERE h.cid = d.cid)
    UNION ALL
    SELECT d.cid, d.line_count, d.day, d.currency, d.fx_rate, d.fx_source, d.fx_num, d.fx_den,
        coalesce(d.owner_project, h.run_project, '__unallocated__') AS project,
        coalesce(d.owner_model, h.run_model) AS model,
        d.owner_team AS team, d.owner_environment AS environment, d.owner_cost_center AS cost_center,
        h.run_id, CASE WHEN h.run_id IS NOT NULL THEN 'direct' END AS run_basis,
        CASE WHEN d.owner_rule IS NOT NULL THEN d.owner_rule WHEN d.owner_project IS NULL AND h.run_id IS NOT NULL THEN 'run:resource_overlap' ELSE 'unallocated' END
            AS rule_id,
        CASE WHEN d.owner_rule LIKE 'tag:%' THEN 'tag' WHEN d.owner_rule IS NOT NULL THEN 'fallback'
             WHEN d.owner_project IS NULL AND h.run_id IS NOT NULL THEN 'run' ELSE 'unallocated' END AS method,
        CASE WHEN h.run_id IS NOT NULL OR h.share = 'remainder' THEN 'run:resource_overlap' ELSE d.owner_rule END AS method_id,
        h.share AS share, CASE WHEN mlc_money(mlc_round_div(CAST(h.qty AS HUGEINT) * 10000, 36)) IS NOT NULL THEN 'Hours' END AS usage_unit,
        mlc_money(mlc_round_div(CAST(h.qty AS HUGEINT) * 10000, 36)) AS usage_quantity,
        d.ProviderName, d.ServiceName, d.ServiceCategory, d.SubAccountId, d.ResourceId, d.x_SourceSystem,
        h.pno, mlc_money(CASE WHEN d.charge_amount < 0 THEN -s.a_units ELSE s.a_units END),
        mlc_money(CASE WHEN d.charge_reporting < 0 THEN -s.r_units ELSE s.r_units END), h.ratio, h.p, h.ptotal
    FROM split AS s JOIN direct AS d ON d.cid = s.cid JOIN rid_w AS h ON h.cid = s.cid AND h.pno = s.pno
    WHERE s.src = 'rid'
)
SELECT "cid", "piece", "charge_date", "billing_currency", "amount", "reporting_currency",
       "amount_reporting", "fx_rate", "fx_source", "cost_basis", "project", "model", "team", "environment",
       "cost_center", "run_id", "run_basis", "rule_id", "method", "ratio", "rules_hash", "provider",
       "service_name", "service_category", "sub_account_id", "resource_id", "x_SourceSystem",
       "AllocatedMethodId", "AllocatedMethodDetails", "AllocatedResourceId", "AllocatedTags", "line_count",
       "p", "ptotal", "fx_num", "fx_den" FROM (
    SELECT cid, CAST(piece AS INTEGER) AS piece, line_count, p, ptotal, fx_num, fx_den,
        day AS charge_date, currency AS billing_currency, amount,
        $reporting AS reporting_currency, amount_reporting, fx_rate, fx_source, $cost_basis AS cost_basis,
        project, model, team, environment, cost_center, run_id, run_basis, rule_id, method, ratio,
        $rules_hash AS rules_hash, ProviderName AS provider, ServiceName AS service_name,
        ServiceCategory AS service_category, SubAccountId AS sub_account_id, ResourceId AS resource_id,
        x_SourceSystem, method_id AS AllocatedMethodId,
        CASE WHEN method_id IS NOT NULL THEN
            '{"Elements":[{"AllocatedRatio":' || CAST(ratio AS VARCHAR)
            || ',"UsageUnit":' || coalesce(to_json(usage_unit), 'null')
            || ',"UsageQuantity":' || coalesce(CAST(usage_quantity AS VARCHAR), 'null')
            || '}],"x_Share":"' || share || '","x_CostBasis":"' || $cost_basis || '"}'
            END AS AllocatedMethodDetails,
        CASE WHEN project <> '__unallocated__' THEN coalesce(run_id, project || coalesce('/' || model, '')) END
            AS AllocatedResourceId,
        CASE WHEN project <> '__unallocated__' THEN '{"x_project":' || to_json(project)
            || coalesce(',"x_model":' || to_json(model), '')
            || coalesce(',"x_team":' || to_json(team), '')
            || coalesce(',"x_environment":' || to_json(environment), '')
            || coalesce(',"x_cost_center":' || to_json(cost_center), '')
            || coalesce(',"x_run_id":' || to_json(run_id), '')
            || '}' END AS AllocatedTags
    FROM direct_pieces
    UNION ALL BY NAME
    SELECT c.cid, CAST(w.pno AS INTEGER) AS piece, c.line_count, w.p, w.ptotal, c.fx_num, c.fx_den,
        c.day AS charge_date, c.currency AS billing_currency,
        mlc_money(CASE WHEN c.charge_amount < 0 THEN -s.a_units ELSE s.a_units END) AS amount,
        $reporting AS reporting_currency,
        mlc_money(CASE WHEN c.charge_reporting < 0 THEN -s.r_units ELSE s.r_units END) AS amount_reporting,
        c.fx_rate, c.fx_source, $cost_basis AS cost_basis, w.project, w.model, w.team, w.environment,
        w.cost_center, w.run_id, w.run_basis, w.rule_id, w.method, w.ratio, $rules_hash AS rules_hash,
        c.ProviderName AS provider, c.ServiceName AS service_name, c.ServiceCategory AS service_category,
        c.SubAccountId AS sub_account_id, c.ResourceId AS resource_id, c.x_SourceSystem,
        w.AllocatedMethodId, w.AllocatedMethodDetails, w.AllocatedResourceId, w.AllocatedTags
    FROM split AS s JOIN pool_charges AS c ON c.cid = s.cid JOIN pool_out AS w ON w.wid = s.wid
    WHERE s.src = 'pool'
);

-- [8] cleanup: drop the stage 1 table
-- binds: nothing
DROP TABLE IF EXISTS _mlc_valued;

-- [9] line view: core.allocated_costs: each line of core.focus_costs split as its cost cell was (a view)
-- binds: nothing
CREATE OR REPLACE VIEW core.allocated_costs AS
WITH lines AS (
    SELECT x_LineId, x_ChargeDate, ChargePeriodStart, ChargePeriodEnd, BilledCost, EffectiveCost, ListCost,
           ContractedCost, md5(to_json(list_value(CAST("BillingCurrency" AS VARCHAR), CAST("ProviderName" AS VARCHAR), CAST("BillingAccountId" AS VARCHAR), CAST("SubAccountId" AS VARCHAR), CAST("ServiceName" AS VARCHAR), CAST("ServiceCategory" AS VARCHAR), CAST("RegionId" AS VARCHAR), CAST("ResourceId" AS VARCHAR), CAST("x_ResourceGroupName" AS VARCHAR), CAST("ChargeCategory" AS VARCHAR), CAST("PricingCategory" AS VARCHAR), CAST("SkuId" AS VARCHAR), CAST("ConsumedUnit" AS VARCHAR), CAST("x_SourceSystem" AS VARCHAR), CAST("x_CurrencyConversionRate" AS VARCHAR), CAST("Tags" AS VARCHAR)))) AS cell_key
    FROM core.focus_costs
), line_cells AS (
    SELECT l.*, c.cid
    FROM lines AS l JOIN core.cost_cells AS c
        ON c.x_ChargeDate = l.x_ChargeDate AND c.cell_key = l.cell_key
       AND (c.x_LineId IS NULL OR c.x_LineId = l.x_LineId)
       AND (c.ChargePeriodStart IS NULL
            OR (c.ChargePeriodStart = l.ChargePeriodStart AND c.ChargePeriodEnd = l.ChargePeriodEnd))
), pieces AS (
    SELECT *, (CAST(trunc(_line_amount) AS HUGEINT) * 1000000000000 + CAST((_line_amount - trunc(_line_amount)) * 1000000000000 AS HUGEINT)) AS _line_units
    FROM (SELECT lc.x_LineId, a.*,
                 CASE a.cost_basis WHEN 'EffectiveCost' THEN lc.EffectiveCost WHEN 'BilledCost' THEN lc.BilledCost
                                   WHEN 'ListCost' THEN lc.ListCost ELSE lc.ContractedCost END AS _line_amount
          FROM line_cells AS lc
          JOIN core.allocated_cells AS a ON a.charge_date = lc.x_ChargeDate AND a.cid = lc.cid)
), converted AS (
    SELECT *, CASE WHEN fx_source = 'same' THEN _line_units ELSE sign(_line_units) * (_fx_q + CASE
                   WHEN 2 * _fx_r > _fx_d OR (2 * _fx_r = _fx_d AND _fx_q % 2 = 1) THEN 1 ELSE 0 END) END
                   AS _line_reporting
    FROM (SELECT *, ((abs(_line_units) // _fx_d) * _fx_n + ((abs(_line_units) % _fx_d) * _fx_n) // _fx_d) AS _fx_q, (((abs(_line_units) % _fx_d) * _fx_n) % _fx_d) AS _fx_r
          FROM (SELECT *, (CAST(trunc(fx_num) AS HUGEINT) * 1000000000000 + CAST((fx_num - trunc(fx_num)) * 1000000000000 AS HUGEINT)) AS _fx_n, (CAST(trunc(fx_den) AS HUGEINT) * 1000000000000 + CAST((fx_den - trunc(fx_den)) * 1000000000000 AS HUGEINT)) AS _fx_d FROM pieces))
), split AS (
    SELECT *, ((abs(_line_units) // ptotal) * p + ((abs(_line_units) % ptotal) * p) // ptotal) AS _qa, (((abs(_line_units) % ptotal) * p) % ptotal) AS _ma,
              ((abs(_line_reporting) // ptotal) * p + ((abs(_line_reporting) % ptotal) * p) // ptotal) AS _qr, (((abs(_line_reporting) % ptotal) * p) % ptotal) AS _mr
    FROM converted
), ranked AS (
    SELECT *, abs(_line_units) - sum(_qa) OVER l AS _da, abs(_line_reporting) - sum(_qr) OVER l AS _dr,
           row_number() OVER (PARTITION BY x_LineId ORDER BY _ma DESC, piece) AS _ka,
           row_number() OVER (PARTITION BY x_LineId ORDER BY _mr DESC, piece) AS _kr
    FROM split
    WINDOW l AS (PARTITION BY x_LineId)
)
SELECT
    "x_LineId",
    "piece",
    "charge_date",
    "billing_currency",
    CAST(CAST(sign(_line_units) * (_qa + CASE WHEN _ka <= _da THEN 1 ELSE 0 END) AS DECIMAL(38,0)) * CAST(0.000000000001 AS DECIMAL(13,12)) AS DECIMAL(38,12)) AS amount,
    "reporting_currency",
    CAST(CAST(sign(_line_reporting) * (_qr + CASE WHEN _kr <= _dr THEN 1 ELSE 0 END) AS DECIMAL(38,0)) * CAST(0.000000000001 AS DECIMAL(13,12)) AS DECIMAL(38,12)) AS amount_reporting,
    "fx_rate",
    "fx_source",
    "cost_basis",
    "project",
    "model",
    "team",
    "environment",
    "cost_center",
    "run_id",
    "run_basis",
    "rule_id",
    "method",
    "ratio",
    "rules_hash",
    "provider",
    "service_name",
    "service_category",
    "sub_account_id",
    "resource_id",
    "x_SourceSystem",
    "AllocatedMethodId",
    "AllocatedMethodDetails",
    "AllocatedResourceId",
    "AllocatedTags"
FROM ranked;

-- ========== core.ml_run_costs (allocation.run_costs.cost_runs_window) ==========
-- After [1] macros (as above), in one transaction with DELETE FROM core.ml_run_costs WHERE charge_date in the window.

-- [10] run costs: cost of MLflow runs per day: the window's rows of core.ml_run_costs
-- binds: $start, $end: the window [start, end)
--        $dim_model_from = []
--        $dim_model_keys = ['model', 'ml_model', 'model_name']
--        $dim_model_to = []
--        $dim_project_from = ['churn-pred']
--        $dim_project_keys = ['project', 'proj']
--        $dim_project_to = ['churn']
--        $reporting = 'USD'
--        $rules_hash = '82f4f73fa1c10f61390724dbb25bc4ee9ef39e33043818f47d266f56ca9823bc'
INSERT INTO core.ml_run_costs BY NAME
WITH runs AS (
    SELECT run_id, start_time AS run_start, end_time AS run_end, lower(resource_id) AS run_rid,
           cluster AS run_cluster, instance_type AS run_instance_type, gpu_count AS run_gpu_count,
           coalesce($dim_project_to[list_position($dim_project_from, regexp_replace(lower(trim(list_filter(list_transform($dim_project_keys, lambda k: list_filter(run_tag_entries, lambda e: lower(e.key) = k)[1].value), lambda v: v IS NOT NULL AND trim(v) <> '')[1])), '[_[:space:]]+', '-', 'g'))], regexp_replace(lower(trim(list_filter(list_transform($dim_project_keys, lambda k: list_filter(run_tag_entries, lambda e: lower(e.key) = k)[1].value), lambda v: v IS NOT NULL AND trim(v) <> '')[1])), '[_[:space:]]+', '-', 'g')) AS run_project,
           coalesce($dim_model_to[list_position($dim_model_from, regexp_replace(lower(trim(list_filter(list_transform($dim_model_keys, lambda k: list_filter(run_tag_entries, lambda e: lower(e.key) = k)[1].value), lambda v: v IS NOT NULL AND trim(v) <> '')[1])), '[_[:space:]]+', '-', 'g'))], regexp_replace(lower(trim(list_filter(list_transform($dim_model_keys, lambda k: list_filter(run_tag_entries, lambda e: lower(e.key) = k)[1].value), lambda v: v IS NOT NULL AND trim(v) <> '')[1])), '[_[:space:]]+', '-', 'g')) AS run_model
    FROM (SELECT *, map_entries(coalesce(CAST(tags AS MAP(VARCHAR, VARCHAR)), MAP {})) AS run_tag_entries FROM core.ml_runs)
), day_bounds AS (
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
           mlc_money(mlc_muldiv(mlc_units(mlc_money(mlc_muldiv(mlc_units(k.hourly), CAST(coalesce(d.run_gpu_count, k.gpus) AS HUGEINT) * d.us,
                                                CAST(k.gpus AS HUGEINT) * 3600000000))), mlc_units(x.fx_num), mlc_units(x.fx_den))),
           0, NULL,
           CASE WHEN k.instance_type IS NULL
                THEN 'no rate-card price for instance type ' || coalesce(d.run_instance_type, '(none)') END
    FROM run_days AS d
    LEFT JOIN _mlc_rates AS k ON k.instance_type = d.run_instance_type
    JOIN _mlc_rate_fx AS x ON x.day = d.day
    WHERE d.us > 0 AND NOT EXISTS (SELECT 1 FROM billed AS b WHERE b.day = d.day AND b.run_id = d.run_id)
)
SELECT "charge_date", "run_id", "experiment_name", "run_name", "status", "project", "model",
       "instance_type", "cost_source", "is_estimate", "amount_reporting", "reporting_currency",
       "gpu_hours", "line_count", "rule_ids", "note", "rules_hash" FROM (
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
ORDER BY charge_date, run_id, cost_source;
