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
from mlcost_pipeline.normalize.export_datasets import ConvertOptions
from mlcost_pipeline.normalize.focus_export import ExportRead
from mlcost_pipeline.normalize.focus_export_sql import file_sha256
from mlcost_pipeline.normalize.native_totals import focus_file_totals, native_totals
from mlcost_pipeline.observability import log_event
from mlcost_pipeline.sources.export_reads import ExportLanding
from mlcost_pipeline.warehouse.raw_landing import (
    FOCUS_MANIFEST_COLUMNS,
    FOCUS_MANIFEST_TABLE,
    FOCUS_QUALITY_COLUMNS,
    land_export_files,
    land_records,
)


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
              "GCP billing export rows (BigQuery standard or detailed usage cost table, aggregated per day and key; or "
              "rows of Google's FOCUS export table, FOCUS-named), one record per aggregated row."),
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
    """Which export file holds each UTC day's charges (path, sha256, size, dataset, export, run), as the export's
    manifests decide; the rows loaded despite a tolerated problem. DuckDB scans the files in place."""
    start, end = partition_window(context)
    landing = focus_export.files(start, end, log=context.log) if focus_export.enabled else ExportLanding()
    for warning in landing.warnings:
        context.log.warning(warning)
    fetched_at = datetime.now(UTC).replace(tzinfo=None)
    digests: dict[Path, str] = {}  # a file covering several days is hashed once, streamed (never held in memory)
    rows = []
    for r in landing.file_days:
        if r.path not in digests:
            digests[r.path] = r.sha256 or file_sha256(str(r.path))
        rows.append((r.day, str(r.path.resolve()), digests[r.path], r.path.stat().st_size, focus_export.label,
                     fetched_at, r.dataset, r.export, r.execution, r.uri, r.paired))  # fmt: skip
    frame = pl.DataFrame(rows, schema=_polars(FOCUS_MANIFEST_COLUMNS), orient="row")
    quality = pl.DataFrame(
        [(q.day, where, q.provider, q.column, q.rows, q.example_row, q.example) for where, q in landing.quality],
        schema=_polars(FOCUS_QUALITY_COLUMNS), orient="row",
    )  # fmt: skip
    with warehouse.writer() as con:
        land_export_files(con, start, end, frame, quality)
        totals = focus_file_totals(con, [ExportRead(path, dataset, tuple(days), _paired(paired, days)) for
                                         path, dataset, days, paired in _reads(frame)], start, end)  # fmt: skip
    log_event(context.log, "raw_landed", table=FOCUS_MANIFEST_TABLE, start=start, end=end, rows=frame.height,
              source=focus_export.label)  # fmt: skip
    return dg.MaterializeResult(
        metadata={**window_metadata(start, end, frame.height), "files": len(digests), **_billed(totals),
                  "rows_with_tolerated_problems": int(quality["rows"].sum() or 0) if quality.height else 0,
                  **({"discovery": dg.MetadataValue.json(landing.discovery)} if landing.discovery else {})}
    )  # fmt: skip


def _polars(columns: list[tuple[str, str]]) -> dict[str, pl.DataType]:
    types = {"DATE": pl.Date, "VARCHAR": pl.String, "BIGINT": pl.Int64, "TIMESTAMP": pl.Datetime("us"),
             "BOOLEAN": pl.Boolean}  # fmt: skip
    return {name: types[t] for name, t in columns}


def _reads(frame: pl.DataFrame) -> list[tuple[str, str, list, list]]:
    """Per landed file: its dataset, the days it counts for, and whether each is paired."""
    grouped = frame.group_by("path", "dataset", maintain_order=True).agg("x_ChargeDate", "paired")
    return [tuple(r) for r in grouped.iter_rows()]


def _paired(paired: list[bool], days: list) -> ConvertOptions:
    return ConvertOptions(paired_days=tuple(d for d, p in zip(days, paired, strict=True) if p))


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
