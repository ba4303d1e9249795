-- Each piece of allocated cost with its workload category: the one place the category is decided.
-- Grain: one row per (charge_date, cid, piece), a piece of a cost cell as core.allocated_cells holds it (the
-- lines of one resource, day and tag set; line_count says how many; core.allocated_costs has the same cost per
-- line); amounts copied unchanged, so per day and currency the table sums exactly to the allocation.
-- pricing_category: the cell's FOCUS PricingCategory.
-- workload_category is one of training, serving, storage, orchestration, monitoring, tooling, data_pipeline,
-- other. The first rule that applies wins (workload_source says which):
--   run_tag     the piece belongs to an MLflow run whose `workload` tag is a known spelling
--               (training, tuning, evaluation, ... -> training; serving, inference, batch-inference -> serving);
--   charge_tag  the charge itself carries a known `workload` tag (its Tags in core.cost_cells);
--   run         the piece belongs to a run without a known workload tag: training (MLflow runs are training work);
--   service     the FOCUS service_category / service_name (Storage -> storage; Analytics, Databases -> data_pipeline;
--               Kubernetes, Step Functions, Composer, Airflow, Workflows, Batch, Integration -> orchestration;
--               CloudWatch, Monitor, Logging -> monitoring; Developer Tools, Security, Identity, other Management
--               and Governance -> tooling; AI and Machine Learning -> serving when the name says endpoint,
--               inference, prediction or serving, else training);
--   default     anything else (untagged compute outside a run, networking, tax, support) -> other.
-- A tag value is compared lower-cased with '-' and ' ' read as '_'.
-- partitioned_by: charge_date
WITH pieces AS (
    SELECT *
    FROM core.allocated_cells
    WHERE charge_date >= $start_date AND charge_date < $end_date
),
cells AS (
    SELECT x_ChargeDate AS charge_date, cid, PricingCategory AS pricing_category,
           replace(replace(lower(trim(Tags ->> 'workload')), '-', '_'), ' ', '_') AS tag
    FROM core.cost_cells
    WHERE x_ChargeDate >= $start_date AND x_ChargeDate < $end_date
),
run_tags AS (
    SELECT run_id, replace(replace(lower(trim(workload)), '-', '_'), ' ', '_') AS tag
    FROM core.ml_runs
    WHERE run_id IN (SELECT run_id FROM pieces)
),
tag_categories (tag, category) AS (
    VALUES
        ('training', 'training'), ('train', 'training'), ('tuning', 'training'), ('hpo', 'training'),
        ('hyperparameter_tuning', 'training'), ('fine_tuning', 'training'), ('finetuning', 'training'),
        ('evaluation', 'training'), ('eval', 'training'), ('experiment', 'training'),
        ('serving', 'serving'), ('inference', 'serving'), ('batch_inference', 'serving'),
        ('online_inference', 'serving'), ('prediction', 'serving'), ('endpoint', 'serving'),
        ('storage', 'storage'),
        ('orchestration', 'orchestration'),
        ('monitoring', 'monitoring'),
        ('tooling', 'tooling'),
        ('data_pipeline', 'data_pipeline'), ('data', 'data_pipeline'), ('etl', 'data_pipeline'),
        ('feature_engineering', 'data_pipeline'), ('features', 'data_pipeline'), ('preprocessing', 'data_pipeline'),
        ('ingestion', 'data_pipeline')
),
classified AS (
    SELECT
        p.*,
        rc.category AS run_tag_category,
        cc.category AS charge_tag_category,
        c.pricing_category,
        CASE
            WHEN p.service_category = 'Storage' THEN 'storage'
            WHEN p.service_category IN ('Analytics', 'Databases') THEN 'data_pipeline'
            WHEN regexp_matches(coalesce(p.service_name, ''),
                                '(?i)kubernetes|step functions|composer|airflow|workflows|batch|data factory')
                 OR p.service_category = 'Integration' THEN 'orchestration'
            WHEN regexp_matches(coalesce(p.service_name, ''), '(?i)cloudwatch|monitor|logging|x-ray')
                THEN 'monitoring'
            WHEN p.service_category IN ('Developer Tools', 'Security', 'Identity', 'Management and Governance')
                THEN 'tooling'
            WHEN p.service_category = 'AI and Machine Learning'
                THEN CASE WHEN regexp_matches(coalesce(p.service_name, ''), '(?i)endpoint|inference|prediction|serving')
                          THEN 'serving' ELSE 'training' END
        END AS service_category_mapped
    FROM pieces AS p
    LEFT JOIN run_tags AS r ON r.run_id = p.run_id
    LEFT JOIN tag_categories AS rc ON rc.tag = r.tag
    LEFT JOIN cells AS c ON c.charge_date = p.charge_date AND c.cid = p.cid
    LEFT JOIN tag_categories AS cc ON cc.tag = c.tag
)
SELECT
    cid,
    piece,
    line_count,
    charge_date,
    project,
    model,
    team,
    run_id,
    provider,
    service_category,
    service_name,
    pricing_category,
    method,
    coalesce(run_tag_category, charge_tag_category, CASE WHEN run_id IS NOT NULL THEN 'training' END,
             service_category_mapped, 'other') AS workload_category,
    CASE
        WHEN run_tag_category IS NOT NULL THEN 'run_tag'
        WHEN charge_tag_category IS NOT NULL THEN 'charge_tag'
        WHEN run_id IS NOT NULL THEN 'run'
        WHEN service_category_mapped IS NOT NULL THEN 'service'
        ELSE 'default'
    END AS workload_source,
    billing_currency,
    amount,
    reporting_currency,
    amount_reporting
FROM classified
