"""Raw landing assets: each source's native records for a window of UTC days, written whole or not at all."""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from mlcost_pipeline.defs.metadata import window_metadata
from mlcost_pipeline.defs.partitions import daily_partitions, partition_window, single_run_backfill
from mlcost_pipeline.defs.source_resources import FocusExportResource, MlflowTrackingResource
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.normalize.focus_export_sql import file_sha256
from mlcost_pipeline.normalize.native_totals import focus_file_totals, native_totals
from mlcost_pipeline.observability import log_event
from mlcost_pipeline.warehouse.partition_writes import replace_window
from mlcost_pipeline.warehouse.raw_landing import FOCUS_MANIFEST_TABLE, land_records


@dataclass(frozen=True)
class RawSource:
    table: str  # raw.<name>: also the asset key
    resource_key: str
    kind: str
    description: str


RAW_SOURCES = (
    RawSource("raw.aws_cost_explorer", "aws_billing", "aws",
              "AWS Cost Explorer GetCostAndUsage pages, one record per page and UTC day (DAILY, per linked account)."),
    RawSource("raw.gcp_billing_export", "gcp_billing", "gcp",
              "GCP billing export rows (BigQuery standard usage cost table), one record per export row."),
    RawSource("raw.azure_cost_management", "azure_cost", "azure",
              "Azure Cost Management Query API pages (ActualCost and AmortizedCost), one record per page and day."),
    RawSource("raw.mlflow_runs", "mlflow", "mlflow",
              "MLflow runs started in the window, across all experiments (deleted runs excluded)."),
)  # fmt: skip


def _billed(totals: dict[str, str]) -> dict[str, object]:
    # What the provider billed, before normalization: compare with core.focus_costs' totals in the UI.
    return {"billed_cost_by_provider": dg.MetadataValue.json(totals)} if totals else {}


def _raw_asset(spec: RawSource) -> dg.AssetsDefinition:
    schema, name = spec.table.split(".")

    @dg.asset(
        key=[schema, name],
        description=spec.description,
        partitions_def=daily_partitions,
        backfill_policy=single_run_backfill,
        group_name="ingest",
        kinds={"duckdb", spec.kind},
        required_resource_keys={"warehouse", spec.resource_key},
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        start, end = partition_window(context)
        source = getattr(context.resources, spec.resource_key)
        warehouse: WarehouseResource = context.resources.warehouse
        records = source.pull(start, end, log=context.log) if source.enabled else []
        with warehouse.writer() as con:
            n = land_records(con, spec.table, start, end, records, source=source.label)
        totals = native_totals(spec.table, records)
        log_event(context.log, "raw_landed", table=spec.table, start=start, end=end, rows=n, source=source.label)
        return dg.MaterializeResult(
            metadata={**window_metadata(start, end, n), "source_mode": source.label, **_billed(totals)}
        )

    return _asset


raw_assets = [_raw_asset(spec) for spec in RAW_SOURCES]


@dg.asset(
    key=["raw", "focus_export_files"],
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    group_name="ingest",
    kinds={"duckdb", "csv"},
)
def focus_export_files(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, focus_export: FocusExportResource
) -> dg.MaterializeResult:
    """The manifest of FOCUS export files covering each UTC day (path, sha256, size). DuckDB scans them in place."""
    start, end = partition_window(context)
    files = focus_export.files(start, end) if focus_export.enabled else []
    fetched_at = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    digests: dict[Path, str] = {}  # a file covering several days is hashed once, streamed (never held in memory)
    for day, path in files:
        if path not in digests:
            digests[path] = file_sha256(str(path))
        rows.append((day, str(path.resolve()), digests[path], path.stat().st_size, focus_export.label, fetched_at))
    frame = pl.DataFrame(
        rows,
        schema={"x_ChargeDate": pl.Date, "path": pl.String, "sha256": pl.String, "bytes": pl.Int64,
                "x_Source": pl.String, "x_FetchedAt": pl.Datetime("us")},
        orient="row",
    )  # fmt: skip
    with warehouse.writer() as con:
        replace_window(con, FOCUS_MANIFEST_TABLE, "x_ChargeDate", start, end, frame)
        totals = focus_file_totals(con, sorted({r[1] for r in rows}), start, end)
    log_event(context.log, "raw_landed", table=FOCUS_MANIFEST_TABLE, start=start, end=end, rows=frame.height,
              source=focus_export.label)  # fmt: skip
    return dg.MaterializeResult(
        metadata={**window_metadata(start, end, frame.height), "files": len({p for _, p in files}), **_billed(totals)}
    )


# After the runs: a version points at a run, and the sample store registers versions when it creates runs.
@dg.asset(
    key=["raw", "mlflow_model_versions"],
    deps=[["raw", "mlflow_runs"]],
    group_name="ingest",
    kinds={"duckdb", "mlflow"},
)
def mlflow_model_versions(
    warehouse: WarehouseResource, mlflow: MlflowTrackingResource
) -> dg.MaterializeResult:
    """Every registered model version with its aliases: a snapshot of the registry, replaced on each run."""
    import json

    versions = mlflow.pull_model_versions() if mlflow.enabled else []
    fetched_at = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.writer() as con:
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM raw.mlflow_model_versions")
        if versions:
            con.executemany(
                "INSERT INTO raw.mlflow_model_versions (record_no, payload, x_Source, x_FetchedAt) VALUES (?, ?, ?, ?)",
                [(i, json.dumps(v, default=str), mlflow.label, fetched_at) for i, v in enumerate(versions)],
            )
        con.execute("COMMIT")
    return dg.MaterializeResult(metadata={"dagster/row_count": len(versions)})
