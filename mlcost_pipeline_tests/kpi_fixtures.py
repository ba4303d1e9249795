"""A small hand-built warehouse for the KPI marts: 14 days of history, two days of activity, four runs, two
registered versions. Every expected figure in test_kpi_marts.py was computed by hand from the rows below."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb

from mlcost_pipeline.allocation.run_costs import create_table_sql as ml_run_costs_create_table_sql
from mlcost_pipeline.defs.transform.sql_models import build_sql_model_defs
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.sql_models import discover
from mlcost_pipeline.warehouse.schema import ensure_schema
from mlcost_pipeline_tests.cell_fixtures import insert_pieces

ROOT = Path(__file__).resolve().parents[1] / "dbt_like_sql"
D = Decimal
HISTORY = [date(2026, 10, 18) + timedelta(days=i) for i in range(14)]  # Oct 18..31
HISTORY_SPEND = [D(9) if i % 2 == 0 else D(11) for i in range(14)]  # project a, mean 10
D1, D2 = date(2026, 11, 1), date(2026, 11, 2)
START, END = HISTORY[0], D2  # END inclusive


def _details(share: str, gpu_hours: str, ratio: str) -> str:
    return json.dumps({"Elements": [{"AllocatedRatio": ratio, "UsageUnit": "GPU-hours", "UsageQuantity": gpu_hours}],
                       "x_Share": share, "x_CostBasis": "EffectiveCost"})  # fmt: skip


# x_LineId, piece, day, project, model, run_id, amount, method, rule_id, service_category, service_name, details
PIECES = [
    *[(f"H{i:02d}", 0, d, "a", None, None, str(a), "tag", "tag:project", "Compute", "Compute Engine", None)
      for i, (d, a) in enumerate(zip(HISTORY, HISTORY_SPEND, strict=True))],
    ("L01", 0, D1, "a", None, None, "20", "tag", "tag:project", "Compute", "Compute Engine", None),  # spot
    ("L02", 0, D1, "b", None, None, "6", "fallback", "fallback:account", "Storage", "Cloud Storage", None),
    ("L03", 0, D1, "__unallocated__", None, None, "2", "unallocated", "unallocated", "Networking", "VPC", None),
    ("L04", 0, D1, "b", "m1", "R1", "3", "proportional_usage", "pool:gpu", "Compute", "Compute Engine",
     _details("usage", "2", "0.25")),
    ("L04", 1, D1, "__idle__", None, None, "9", "proportional_usage", "pool:gpu", "Compute", "Compute Engine",
     _details("idle", "6", "0.75")),
    ("L06", 0, D1, "b", None, None, "1", "tag", "tag:project", "Management and Governance", "AmazonCloudWatch", None),
    ("L07", 0, D1, "b", None, None, "0.5", "tag", "tag:project", "Developer Tools", "AWS CodeBuild", None),
    ("L08", 0, D1, "b", None, None, "0.5", "tag", "tag:project", "Integration", "AWS Step Functions", None),
    ("L09", 0, D1, "b", None, None, "4", "tag", "tag:project", "Analytics", "BigQuery", None),
    ("L10", 0, D1, "b", "m1", None, "5", "tag", "tag:project", "AI and Machine Learning",
     "Vertex AI Online Prediction", None),
    ("L11", 0, D2, "a", None, None, "10", "tag", "tag:project", "Compute", "Compute Engine", None),
]  # fmt: skip
SPOT_LINES = {"L01"}

# run_id, experiment, status, start, end, duration, gpu_count, gpu_hours, project, model, workload, estimator, metrics
RUNS = [
    ("R1", "exp-a", "FINISHED", datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 12), "2", 1, "2", "b", "m1",
     "training", "xgboost", {"accuracy": 0.8, "customer_retention_lift": 0.4, "train_loss": 0.1}),
    ("R2", "exp-a", "FAILED", datetime(2026, 11, 1, 13), datetime(2026, 11, 1, 14), "1", 1, "1", "b", "m1",
     "tuning", "xgboost", {"accuracy": 0.5}),
    ("R3", "exp-b", "FINISHED", datetime(2026, 11, 1, 10, 30), datetime(2026, 11, 1, 14, 30), "4", None, None,
     "a", "m2", "batch-inference", "sklearn", {"accuracy": 0.9}),
    ("R4", "exp-b", "RUNNING", datetime(2026, 11, 2, 8), None, None, None, None, "a", "m2", None, None, {}),
]  # fmt: skip

# day, run_id, project, model, cost_source, is_estimate, amount_reporting
RUN_COSTS = [
    (D1, "R1", "b", "m1", "pool_share", False, "3"),
    (D1, "R2", "b", "m1", "estimate", True, "1"),
    (D1, "R3", "a", "m2", "estimate", True, "8"),
    (D2, "R4", "a", "m2", "estimate", True, "2"),
]

# model_name, version, run_id, created_at, production_at
VERSIONS = [
    ("m1", 1, "R1", datetime(2026, 11, 1, 15), datetime(2026, 11, 2, 3)),
    ("M2", 1, "R3", datetime(2026, 11, 1, 16), None),
]


def external_tables() -> set[tuple[str, str]]:
    models = discover(ROOT)
    return {d for m in models for d in m.deps} - {m.key for m in models}


def kpi_defs(config: dict | None = None):
    """Every SQL model and check except the budget ones (another feature, with inputs of its own)."""
    external = external_tables()
    assets, checks = build_sql_model_defs(ROOT, external, config)
    assets = [a for a in assets if not a.key.path[-1].startswith("budget")]
    checks = [c for c in checks if not any(k.asset_key.path[-1].startswith("budget") for k in c.check_keys)]
    specs = [dg.AssetSpec(dg.AssetKey(list(k))) for k in sorted(external)]
    return assets, checks, specs


def build_warehouse(path: Path) -> None:
    con = duckdb.connect(str(path))
    ensure_schema(con)  # the warehouse's own tables, as the pipeline creates them
    con.execute(ml_run_costs_create_table_sql("core.ml_run_costs"))
    # The pieces as the allocation stores them (core.allocated_cells), each line its own cost cell.
    insert_pieces(con, [
        {"x_LineId": line, "piece": piece, "charge_date": day, "project": project, "model": model, "run_id": run,
         "billing_currency": "USD", "amount": amount, "reporting_currency": "USD", "amount_reporting": amount,
         "method": method, "rule_id": rule_id, "service_category": category, "service_name": name, "provider": "X",
         "AllocatedMethodDetails": details}
        for line, piece, day, project, model, run, amount, method, rule_id, category, name, details in PIECES
    ], cells={line: {"PricingCategory": "Dynamic" if line in SPOT_LINES else "Standard"} for line, *_ in PIECES})
    con.executemany(
        "INSERT INTO core.ml_runs (run_id, experiment_id, experiment_name, status, start_time, end_time, "
        "duration_hours, gpu_count, gpu_hours, project_tag, model_tag, workload, estimator, metrics, x_RunDate) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS DATE))",
        [[r[0], r[1], *r[1:12], json.dumps(r[12]), r[3]] for r in RUNS],
    )
    con.executemany(
        "INSERT INTO core.ml_run_costs (charge_date, run_id, project, model, cost_source, is_estimate, "
        "amount_reporting, reporting_currency) VALUES (?, ?, ?, ?, ?, ?, ?, 'USD')",
        [list(r) for r in RUN_COSTS],
    )
    con.executemany(
        "INSERT INTO core.ml_model_versions (model_name, version, run_id, created_at, production_at, is_production) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [[*v, v[4] is not None] for v in VERSIONS],
    )
    con.close()


def materialize(path: Path, config: dict | None = None) -> dg.ExecuteInProcessResult:
    """Every KPI model and check over START..END in one run, as a single-run backfill does."""
    assets, checks, specs = kpi_defs(config)
    defs = dg.Definitions(assets=[*assets, *specs], asset_checks=checks,
                          resources={"warehouse": WarehouseResource(path=str(path))})  # fmt: skip
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={"dagster/asset_partition_range_start": START.isoformat(),
              "dagster/asset_partition_range_end": END.isoformat()},  # fmt: skip
        raise_on_error=False,
    )
