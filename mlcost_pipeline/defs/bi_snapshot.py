"""Publishing the BI snapshot (mlcost_pipeline/warehouse/snapshot.py) after every successful run.

Why a run-success sensor and a small job, not a last asset downstream of the marts: a snapshot belongs to a RUN,
not to a partition or an asset. A final asset would only publish when selected, so a run launched from the UI for
a few assets, or a schedule narrowed to part of the graph, would leave BI on stale data; as an unpartitioned asset
downstream of everything it would also show every backfill as "stale" until the next full run. The sensor
publishes after any successful run of this code location, whatever it materialized, and never after a failed
one (whose committed partitions wait for the next success). It skips the publish job's own runs.

Runs of `mlcost materialize` / `mlcost demo` execute in-process, which run-status sensors do not see (they have no
code-location origin), so the CLI publishes itself at the end of a successful run; nothing is published twice.
"""

import dagster as dg

from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.observability import log_event
from mlcost_pipeline.warehouse.snapshot import publish_bi_snapshot

AFTER_RUN_TAG = "mlcost/published_after_run"


@dg.op(
    description="Copy the warehouse's core and marts tables to <warehouse>_bi.duckdb and swap it in atomically."
)
def publish_bi_snapshot_op(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> dg.Output[str]:
    after = context.run.tags.get(AFTER_RUN_TAG)
    published = publish_bi_snapshot(warehouse.path, run_id=after)
    log_event(
        context.log, "bi_snapshot_published", path=published.path, tables=len(published.tables),
        rows=sum(published.tables.values()), bytes=published.size_bytes, after_run=after,
    )  # fmt: skip
    return dg.Output(
        str(published.path),
        metadata={
            "path": dg.MetadataValue.path(str(published.path)),
            "published_at": str(published.published_at),
            "rows_by_table": dg.MetadataValue.json(published.tables),
            "views": dg.MetadataValue.json(list(published.views)),
            "size_bytes": published.size_bytes,
        },
    )


@dg.job(
    name="publish_bi_snapshot",
    description="Publish the BI snapshot (docs/bi.md). Launched by bi_snapshot_sensor after each successful run.",
)
def publish_bi_snapshot_job() -> None:
    publish_bi_snapshot_op()


@dg.run_status_sensor(
    name="bi_snapshot_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_job=publish_bi_snapshot_job,
    # On by default: it only reacts to runs someone started, and a BI snapshot older than the warehouse misleads.
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each successful run, publish the BI snapshot (skips the publish job's own runs).",
)
def bi_snapshot_sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    run = context.dagster_run
    if run.job_name == publish_bi_snapshot_job.name:
        return dg.SkipReason(f"run {run.run_id} published the snapshot itself")
    return dg.RunRequest(run_key=f"bi-snapshot-after-{run.run_id}", tags={AFTER_RUN_TAG: run.run_id})
