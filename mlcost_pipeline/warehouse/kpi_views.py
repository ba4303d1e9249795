"""Wide views of marts.kpi_daily for the main dashboards, published in the BI snapshot (docs/kpis.md).

Source: marts.kpi_daily (grain: date, scope_type, scope_id, kpi). Each view pivots one scope type to one column
per KPI, NULL where a KPI does not apply that day. The SQL is built from the constants below only.
"""

# ruff: noqa: S608
# View SQL is assembled from this module's constant KPI names; nothing comes from data or settings.

from __future__ import annotations

# Parts of marts.kpi_daily: copied with marts, but dashboards read bi.kpi_daily and the wide views below.
UNPUBLISHED_MARTS = frozenset({"marts.kpi_cost_daily", "marts.kpi_run_daily", "marts.kpi_model_daily"})


def _pivot(kpis: tuple[str, ...]) -> str:
    return ",\n    ".join(f"max(value) FILTER (WHERE kpi = '{k}') AS \"{k}\"" for k in kpis)


_ORG_KPIS = ("spend", "spend_mtd", "tag_coverage", "unallocated_share", "spot_share", "spend_baseline",
             "spend_anomaly_score", "spend_anomaly", "spend_dod_change", "runs_started", "run_hours",
             "cost_per_training_hour", "cost_per_gpu_hour", "failed_run_cost", "failed_run_share",
             "cost_per_finished_run", "cost_per_failed_run")
_PROJECT_KPIS = ("spend", "spend_mtd", "tag_coverage", "spot_share", "spend_baseline", "spend_anomaly_score",
                 "spend_anomaly", "spend_dod_change", "runs_started", "run_hours", "cost_per_training_hour",
                 "cost_per_gpu_hour", "failed_run_cost", "failed_run_share")
_WORKLOADS = ("training", "serving", "storage", "orchestration", "monitoring", "tooling", "data_pipeline", "other")

# Wide views of marts.kpi_daily for the main dashboards (docs/kpis.md): one column per KPI, NULL where a KPI does
# not apply that day. Built from these constants only.
DASHBOARD_VIEWS: dict[str, tuple[str, str]] = {
    "bi.kpi_org_daily": (
        "SELECT date,\n    " + _pivot(_ORG_KPIS) + ",\n    "
        + ",\n    ".join(f"max(value) FILTER (WHERE scope_type = 'workload' AND scope_id = '{w}') AS \"{w}_spend\""
                         for w in _WORKLOADS)
        + "\nFROM marts.kpi_daily\nWHERE (scope_type = 'org' AND kpi IN ("
        + ", ".join(f"'{k}'" for k in _ORG_KPIS) + ")) OR (scope_type = 'workload' AND kpi = 'spend')\n"
        "GROUP BY date",
        "The organisation's KPIs per UTC day, one column each, with spend per workload category.",
    ),
    "bi.kpi_project_daily": (
        "SELECT date, scope_id AS project,\n    " + _pivot(_PROJECT_KPIS)
        + "\nFROM marts.kpi_daily\nWHERE scope_type = 'project'\nGROUP BY date, scope_id",
        "Each project's KPIs per UTC day, one column each.",
    ),
    "bi.model_cost_quality": (
        "SELECT date, scope_id AS model,\n    "
        + _pivot(("run_cost_30d", "quality_best_30d", "cost_per_quality_point", "cost_quality_quadrant"))
        + ",\n    max(unit) FILTER (WHERE kpi = 'quality_best_30d') AS quality_metric,\n    "
        "CASE CAST(max(value) FILTER (WHERE kpi = 'cost_quality_quadrant') AS INTEGER)\n"
        "        WHEN 1 THEN 'high quality, low cost' WHEN 2 THEN 'high quality, high cost'\n"
        "        WHEN 3 THEN 'low quality, low cost' WHEN 4 THEN 'low quality, high cost' END AS quadrant\n"
        "FROM marts.kpi_daily\nWHERE scope_type = 'model'\nGROUP BY date, scope_id",
        "Each model's trailing-30-day run cost, best quality metric and cost-vs-quality quadrant per UTC day.",
    ),
    "bi.gpu_pool_daily": (
        "SELECT date, scope_id AS pool,\n    " + _pivot(("gpu_pool_idle_share", "gpu_utilization"))
        + "\nFROM marts.kpi_daily\nWHERE scope_type = 'pool'\nGROUP BY date, scope_id",
        "Idle share and GPU utilization of each usage-split GPU pool per UTC day.",
    ),
    "bi.model_version_cycle_time": (
        "SELECT scope_id AS model_version,\n    "
        "min(date) FILTER (WHERE kpi = 'cycle_time_to_registration_hours') AS registered_on,\n    "
        "min(date) FILTER (WHERE kpi = 'cycle_time_to_production_hours') AS production_on,\n    "
        + _pivot(("cycle_time_to_registration_hours", "cycle_time_to_production_hours", "cycle_time_total_hours"))
        + "\nFROM marts.kpi_daily\nWHERE scope_type = 'model_version'\nGROUP BY scope_id",
        "Cycle time of each registered model version: first run -> registration -> production alias, in hours.",
    ),
}  # fmt: skip
