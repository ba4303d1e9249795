"""The one entry point: every asset, check, resource and schedule of mlcost-pipeline, assembled once."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from mlcost_pipeline.defs.bi_snapshot import bi_snapshot_sensor, publish_bi_snapshot_job
from mlcost_pipeline.defs.budgets import build_budget_defs
from mlcost_pipeline.defs.core.allocated_costs import build_allocated_costs_asset
from mlcost_pipeline.defs.core.focus_costs import focus_costs
from mlcost_pipeline.defs.core.ml_run_costs import build_ml_run_costs_asset
from mlcost_pipeline.defs.core.ml_runs import ml_model_versions, ml_runs
from mlcost_pipeline.defs.ingest.raw_assets import focus_export_files, mlflow_model_versions, raw_assets
from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.defs.schedules import (
    DAILY_FRESHNESS,
    build_daily_restatement_schedule,
    daily_restatement_job,
)
from mlcost_pipeline.defs.transform.sql_models import build_sql_model_defs
from mlcost_pipeline.settings import Settings, load_settings

SQL_MODELS_ROOT = Path(__file__).resolve().parent.parent / "dbt_like_sql"


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or load_settings()
    budget_assets, budget_checks, budget_resources = build_budget_defs(settings)
    python_assets = [
        *raw_assets,
        focus_export_files,
        mlflow_model_versions,
        focus_costs,
        ml_runs,
        ml_model_versions,
        build_allocated_costs_asset(),
        build_ml_run_costs_asset(),
        *budget_assets,
    ]
    external = {tuple(key.path): key for a in python_assets for key in a.keys}
    # The allocation asset writes the cell tables its view core.allocated_costs reads; the marts read them.
    external |= {("core", t): dg.AssetKey(["core", "allocated_costs"]) for t in ("cost_cells", "allocated_cells")}
    sql_assets, sql_checks = build_sql_model_defs(SQL_MODELS_ROOT, external, settings.sql_params,
                                                  mlflow_enabled=settings.enabled("mlflow"))
    defs = dg.Definitions(
        assets=[*python_assets, *sql_assets],
        asset_checks=[*sql_checks, *budget_checks],
        jobs=[daily_restatement_job, publish_bi_snapshot_job],
        schedules=[build_daily_restatement_schedule(settings)],
        sensors=[bi_snapshot_sensor],
        resources={**build_resources(settings), **budget_resources},
        # DuckDB has one writer; in-process steps also skip ~1.5 s of process start per asset on small machines.
        executor=dg.in_process_executor,
    )
    # Freshness, applied once: every daily run refreshes every asset (docs/operations.md).
    return defs.permissive_map_resolved_asset_specs(
        func=lambda spec: dg.apply_freshness_policy(spec, DAILY_FRESHNESS), selection=None
    )


defs = build_definitions()
