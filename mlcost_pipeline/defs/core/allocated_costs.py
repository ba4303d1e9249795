"""core.allocated_costs: every charge of a window given an owner by the allocation rules, conserving totals."""

import dagster as dg

from mlcost_pipeline.allocation.engine import allocate_window
from mlcost_pipeline.allocation.explain import reporting_totals
from mlcost_pipeline.allocation.rules import load_rules
from mlcost_pipeline.defs.metadata import totals_by, window_metadata
from mlcost_pipeline.defs.partitions import daily_partitions, partition_window, single_run_backfill
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline.warehouse.invariants import conservation_violations, split_violations

CONSERVATION_CHECK = "allocated_costs__conserves_effective_cost"
PIECES_CHECK = "allocated_costs__pieces_add_up"


def allocation_code_version() -> str:
    """Changes with the rules file, any file it names (rates, driver CSVs), and the reporting currency."""
    settings = load_settings()
    rules = load_rules(settings.rules_path)
    return f"alloc-v2-{rules.fingerprint[:16]}-{settings.reporting_currency}"


def build_allocated_costs_asset() -> dg.AssetsDefinition:
    # The rules' hash is part of the code version: after a rules change Dagster shows every allocated partition
    # as stale, and a backfill re-allocates them. An invalid rules file stops the code location from loading.
    settings = load_settings()
    rules = load_rules(settings.rules_path)

    @dg.asset(
        key=["core", "allocated_costs"],
        deps=[["core", "focus_costs"], ["core", "ml_runs"]],
        partitions_def=daily_partitions,
        backfill_policy=single_run_backfill,
        group_name="core",
        kinds={"duckdb", "sql"},
        code_version=allocation_code_version(),
        metadata={"rules_file": rules.source, "rules_sha256": rules.sha256,
                  "reporting_currency": settings.reporting_currency},
        check_specs=[
            dg.AssetCheckSpec(CONSERVATION_CHECK, asset=["core", "allocated_costs"], blocking=True,
                              description="Per day and currency, allocated cost equals the cost basis exactly."),
            dg.AssetCheckSpec(PIECES_CHECK, asset=["core", "allocated_costs"], blocking=True,
                              description="Per cost cell, pieces sum to the cell and ratios to 1; no negative share "
                                          "of a positive cell; every piece has its reporting amount."),
        ],
    )  # fmt: skip
    def allocated_costs(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """Charges from core.focus_costs with their owner (project, model, team, run) and the rule that decided it.

        Grain: one row per piece of allocated cost (x_LineId, piece), a view over the pieces of cost cells
        (core.allocated_cells; `dagster/row_count` counts those pieces). Shared pools are split by their rules;
        unowned cost is kept as `__unallocated__`, paid-but-unused pool capacity as `__idle__`. Amounts in the
        billing currency and in the reporting currency.
        """
        start, end = partition_window(context)
        current_settings = load_settings()
        current = load_rules(current_settings.rules_path)
        basis = current.rules.cost_basis
        with warehouse.writer() as con:
            result = allocate_window(con, current, start, end, current_settings.reporting_currency)
            violations = conservation_violations(con, start, end, basis)
            bad_pieces, first_bad = split_violations(con, start, end, basis)
            by_project = totals_by(con, "core.allocated_cells", "charge_date", "amount", "project", start, end)
            reporting = reporting_totals(con, start, end)
        return dg.MaterializeResult(
            metadata={**window_metadata(start, end, result.rows),
                      "cost_cells": result.cells,
                      "amount_by_project": dg.MetadataValue.json(by_project),
                      "amount_reporting_by_project": dg.MetadataValue.json(reporting),
                      "reporting_currency": result.reporting_currency, "rules_sha256": current.sha256},
            check_results=[
                dg.AssetCheckResult(
                    check_name=CONSERVATION_CHECK,
                    passed=not violations,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata={"violations": dg.MetadataValue.json(
                        [[str(d), c, str(a), str(b)] for d, c, a, b in violations[:20]])},
                ),
                dg.AssetCheckResult(
                    check_name=PIECES_CHECK,
                    passed=bad_pieces == 0,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata={"cells": bad_pieces, "first": dg.MetadataValue.json([list(x) for x in first_bad])},
                ),
            ],
        )  # fmt: skip

    return allocated_costs
