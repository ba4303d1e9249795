"""core.allocated_costs: every charge of a window given an owner by the allocation rules, conserving totals."""

import dagster as dg

from mlcost_pipeline.allocation.rules import load_rules
from mlcost_pipeline.allocation.tag_allocation import allocation_select
from mlcost_pipeline.defs.metadata import totals_by, window_metadata
from mlcost_pipeline.defs.partitions import daily_partitions, partition_window, single_run_backfill
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline.warehouse.invariants import conservation_violations
from mlcost_pipeline.warehouse.partition_writes import replace_window_sql

CONSERVATION_CHECK = "allocated_costs__conserves_effective_cost"


def build_allocated_costs_asset() -> dg.AssetsDefinition:
    # The rules file's hash is part of the code version: after a rules change Dagster shows every allocated
    # partition as stale, and a backfill re-allocates them.
    rules = load_rules(load_settings().rules_path)

    @dg.asset(
        key=["core", "allocated_costs"],
        deps=[["core", "focus_costs"], ["core", "ml_runs"]],
        partitions_def=daily_partitions,
        backfill_policy=single_run_backfill,
        group_name="core",
        kinds={"duckdb", "sql"},
        code_version=f"alloc-v1-{rules.sha256[:12]}",
        metadata={"rules_file": rules.source, "rules_sha256": rules.sha256},
        check_specs=[
            dg.AssetCheckSpec(CONSERVATION_CHECK, asset=["core", "allocated_costs"], blocking=True,
                              description="Per day and currency, allocated cost equals EffectiveCost exactly."),
        ],
    )  # fmt: skip
    def allocated_costs(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """Charges from core.focus_costs with their owner: project, model, and the rule that decided it.

        Grain: one row per piece of allocated cost (x_LineId, piece). Unowned cost is kept as `__unallocated__`.
        """
        start, end = partition_window(context)
        current = load_rules(load_settings().rules_path)
        sql, params = allocation_select(current, start, end)
        with warehouse.writer() as con:
            n = replace_window_sql(con, "core.allocated_costs", "charge_date", start, end, sql, params)
            violations = conservation_violations(con, start, end)
            by_project = totals_by(
                con, "core.allocated_costs", "charge_date", "amount", "project", start, end
            )
        return dg.MaterializeResult(
            metadata={**window_metadata(start, end, n), "amount_by_project": dg.MetadataValue.json(by_project),
                      "rules_sha256": current.sha256},
            check_results=[
                dg.AssetCheckResult(
                    check_name=CONSERVATION_CHECK,
                    passed=not violations,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata={"violations": dg.MetadataValue.json(
                        [[str(d), c, str(a), str(b)] for d, c, a, b in violations[:20]])},
                )
            ],
        )  # fmt: skip

    return allocated_costs
