-- Which registered model version each MLflow run led to: the link behind cost per model version and cycle time.
-- Grain: one row per (run_id) that links to a version of core.ml_model_versions; runs that led to no version yet
-- are absent. A version's runs are
--   source     the run the version was registered from (core.ml_model_versions.run_id), and
--   preceding  every other run of the same model (marts.cost_per_run.model) that started after the model's
--              previous version was registered and no later than this version's registration: the work that
--              led to it, including failed and tuning runs.
-- The model of a version is its source run's resolved model (allocation's spelling), else its lower-cased name.
-- A run is linked to at most one version: the source link wins, then the earliest registration.
WITH versions AS (
    SELECT
        v.model_name,
        v.version,
        v.run_id AS source_run_id,
        v.created_at AS registered_at,
        v.production_at,
        coalesce(s.model, lower(v.model_name)) AS model
    FROM core.ml_model_versions AS v
    LEFT JOIN marts.cost_per_run AS s ON s.run_id = v.run_id
),
windows AS (
    SELECT *, lag(registered_at) OVER (PARTITION BY model ORDER BY registered_at, version) AS previous_registered_at
    FROM versions
),
links AS (
    SELECT w.source_run_id AS run_id, w.model, w.model_name, w.version, 'source' AS link, w.registered_at,
           w.production_at
    FROM windows AS w
    WHERE w.source_run_id IS NOT NULL
    UNION ALL
    SELECT r.run_id, w.model, w.model_name, w.version, 'preceding', w.registered_at, w.production_at
    FROM windows AS w
    JOIN marts.cost_per_run AS r
        ON r.model = w.model
       AND r.start_time <= w.registered_at
       AND (w.previous_registered_at IS NULL OR r.start_time > w.previous_registered_at)
)
SELECT l.run_id, l.model, l.model_name, l.version AS model_version, l.link, r.start_time AS run_start, r.status,
       l.registered_at, l.production_at
FROM links AS l
JOIN marts.cost_per_run AS r USING (run_id)
QUALIFY row_number() OVER (PARTITION BY l.run_id ORDER BY l.link = 'source' DESC, l.registered_at, l.version) = 1
