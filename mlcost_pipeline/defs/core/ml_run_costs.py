"""core.ml_run_costs: what each MLflow run cost per day, billed (direct, pool share) or estimated."""

import dagster as dg

from mlcost_pipeline.allocation.rules import load_rules
from mlcost_pipeline.allocation.run_costs import cost_runs_window
from mlcost_pipeline.defs.core.allocated_costs import allocation_code_version
from mlcost_pipeline.defs.metadata import window_metadata
from mlcost_pipeline.defs.partitions import daily_partitions, partition_window, single_run_backfill
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.settings import load_settings


def build_ml_run_costs_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=["core", "ml_run_costs"],
        deps=[["core", "allocated_costs"], ["core", "ml_runs"]],
        partitions_def=daily_partitions,
        backfill_policy=single_run_backfill,
        group_name="core",
        kinds={"duckdb", "sql"},
        code_version=allocation_code_version(),  # the rate card lives in the rules file
    )
    def ml_run_costs(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Cost of each MLflow run per UTC day in the reporting currency: `direct` (its own charges), `pool_share`
        (its GPU-hours in a shared pool) or a rate-card `estimate` flagged is_estimate when no charge covers it.

        Grain: one row per (charge_date, run_id, cost_source).
        """
        start, end = partition_window(context)
        settings = load_settings()
        loaded = load_rules(settings.rules_path)
        with warehouse.writer() as con:
            n = cost_runs_window(con, loaded, start, end, settings.reporting_currency)
            totals = con.execute(
                "SELECT cost_source, sum(amount_reporting), count(*) FROM core.ml_run_costs "
                "WHERE charge_date >= $start AND charge_date < $end GROUP BY ALL ORDER BY ALL",
                {"start": start, "end": end},
            ).fetchall()
        return dg.MaterializeResult(metadata={
            **window_metadata(start, end, n),
            "by_cost_source": dg.MetadataValue.json(
                {s: {"amount_reporting": str(a), "rows": c} for s, a, c in totals}),
            "reporting_currency": settings.reporting_currency,
        })  # fmt: skip

    return ml_run_costs
