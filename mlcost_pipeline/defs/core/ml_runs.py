"""core.ml_runs and core.ml_model_versions: MLflow runs and registered model versions, normalized."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg

from mlcost_pipeline.defs.metadata import preview, window_metadata
from mlcost_pipeline.defs.partitions import daily_partitions, partition_window, single_run_backfill
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.normalize.mlflow_records import normalize_model_versions, normalize_runs
from mlcost_pipeline.warehouse.partition_writes import replace_window
from mlcost_pipeline.warehouse.raw_landing import read_payloads

# The tables that hold nothing but what MLflow feeds (one row per run, model version or run cost): with MLflow off
# they are empty, and a SQL test that reads only these (and marts built only from them) does not apply.
MLFLOW_TABLES = frozenset({
    ("raw", "mlflow_runs"), ("raw", "mlflow_model_versions"), ("core", "ml_runs"), ("core", "ml_model_versions"),
    ("core", "ml_run_costs"),
})  # fmt: skip
MLFLOW_OFF = "MLflow is not among MLCOST_SOURCES"


@dg.asset(
    key=["core", "ml_runs"],
    deps=[["raw", "mlflow_runs"]],
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    group_name="core",
    kinds={"duckdb", "mlflow"},
)
def ml_runs(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """MLflow runs by UTC start day (x_RunDate): status, duration, GPU-hours, cost tags, params and metrics.

    Grain: one row per run. Key: run_id.
    """
    start, end = partition_window(context)
    with warehouse.writer() as con:
        payloads, fetched_at = read_payloads(con, "raw.mlflow_runs", start, end)
        frame = normalize_runs(payloads, fetched_at or datetime.now(UTC).replace(tzinfo=None))
        n = replace_window(con, "core.ml_runs", "x_RunDate", start, end, frame)
    gpu_hours = frame["gpu_hours"].sum() if frame.height else 0
    return dg.MaterializeResult(
        metadata={
            **window_metadata(start, end, n),
            "gpu_hours": str(gpu_hours),
            "preview": preview(frame.select("x_RunDate", "run_name", "status", "project_tag", "gpu_hours")),
        }
    )


@dg.asset(
    key=["core", "ml_model_versions"],
    deps=[["raw", "mlflow_model_versions"]],
    group_name="core",
    kinds={"duckdb", "mlflow"},
)
def ml_model_versions(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Registered model versions with their source run, aliases and when each reached production.

    Grain: one row per (model_name, version).
    """
    with warehouse.writer() as con:
        rows = con.execute(
            "SELECT payload, x_FetchedAt FROM raw.mlflow_model_versions ORDER BY record_no"
        ).fetchall()
        payloads = [json.loads(p, parse_float=Decimal) for p, _ in rows]
        fetched_at = max((f for _, f in rows), default=None) or datetime.now(UTC).replace(tzinfo=None)
        frame = normalize_model_versions(payloads, fetched_at)
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM core.ml_model_versions")
        if frame.height:
            con.register("_versions", frame.to_arrow())
            con.execute("INSERT INTO core.ml_model_versions BY NAME SELECT * FROM _versions")
            con.unregister("_versions")
        con.execute("COMMIT")
    return dg.MaterializeResult(metadata={"dagster/row_count": frame.height})
