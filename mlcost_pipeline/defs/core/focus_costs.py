"""core.focus_costs: every source normalized into one FOCUS 1.2 relation, a window of UTC days at a time.

The API sources' rows are stored (core.focus_api_costs); export files are checked and read in place by the view
(warehouse/focus_view.py), never copied.
"""

import dagster as dg

from mlcost_pipeline.defs.metadata import preview, totals_by, window_metadata
from mlcost_pipeline.defs.partitions import daily_partitions, partition_window, single_run_backfill
from mlcost_pipeline.defs.source_resources import FocusExportResource
from mlcost_pipeline.defs.warehouse_resource import WarehouseResource
from mlcost_pipeline.normalize.build_focus_costs import write_focus_costs
from mlcost_pipeline.warehouse.invariants import disallowed_values, duplicate_line_ids, tolerated_problems

UNIQUE_LINE_ID_CHECK = "focus_costs__unique_line_id"
ALLOWED_VALUES_CHECK = "focus_costs__allowed_values"
DATA_QUALITY_CHECK = "focus_costs__data_quality"


@dg.asset(
    key=["core", "focus_costs"],
    deps=[["raw", "aws_cost_explorer"], ["raw", "gcp_billing_export"], ["raw", "azure_cost_management"],
          ["raw", "focus_export_files"]],
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    group_name="core",
    kinds={"duckdb", "polars"},
    check_specs=[
        dg.AssetCheckSpec(UNIQUE_LINE_ID_CHECK, asset=["core", "focus_costs"], blocking=True,
                          description="x_LineId is unique: no charge is counted twice."),
        dg.AssetCheckSpec(ALLOWED_VALUES_CHECK, asset=["core", "focus_costs"], blocking=True,
                          description="ChargeCategory and BillingCurrency hold allowed values."),
        dg.AssetCheckSpec(DATA_QUALITY_CHECK, asset=["core", "focus_costs"], blocking=False,
                          description="Export rows loaded despite a spec violation in a column that decides no "
                                      "money, currency, date or identity, per provider and column (docs/exports.md)."),
    ],
)  # fmt: skip
def focus_costs(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, focus_export: FocusExportResource
) -> dg.MaterializeResult:
    """Normalized charges from AWS Cost Explorer, the GCP billing export, Azure Cost Management and FOCUS exports.

    Grain: one row per charge and UTC day (x_ChargeDate). Key: x_LineId, stable across reruns. Money columns are
    DECIMAL(38,12) in BillingCurrency; allocation uses EffectiveCost.
    """
    start, end = partition_window(context)
    with warehouse.writer() as con:
        n = write_focus_costs(con, start, end, strict=focus_export.strict_columns())
        # A few rows for the UI, read through the view: the export rows never pass through Python.
        head = con.sql(
            'SELECT x_ChargeDate, ProviderName, ServiceName, SubAccountId, BillingCurrency, EffectiveCost, Tags '
            "FROM core.focus_costs WHERE x_ChargeDate >= $start AND x_ChargeDate < $end "
            "ORDER BY x_ChargeDate, x_SourceSystem, x_LineId LIMIT 10",
            params={"start": start, "end": end},
        ).pl()
        dupes = duplicate_line_ids(con, start, end)
        problems = tolerated_problems(con, start, end)
        bad = disallowed_values(con, start, end)
        by_provider = totals_by(
            con, "core.focus_costs", "x_ChargeDate", "EffectiveCost", "ProviderName", start, end
        )
    return dg.MaterializeResult(
        metadata={
            **window_metadata(start, end, n),
            "effective_cost_by_provider": dg.MetadataValue.json(by_provider),
            "preview": preview(head),
        },
        check_results=[
            dg.AssetCheckResult(check_name=UNIQUE_LINE_ID_CHECK, passed=dupes == 0,
                                severity=dg.AssetCheckSeverity.ERROR, metadata={"duplicates": dupes}),
            dg.AssetCheckResult(check_name=ALLOWED_VALUES_CHECK, passed=bad == 0,
                                severity=dg.AssetCheckSeverity.ERROR, metadata={"violations": bad}),
            dg.AssetCheckResult(check_name=DATA_QUALITY_CHECK, passed=not problems,
                                severity=dg.AssetCheckSeverity.WARN, metadata=_quality_metadata(problems)),
        ],
    )  # fmt: skip


def _quality_metadata(problems: list[tuple]) -> dict[str, object]:
    """Per provider and column: how many rows, and the first one (file, row, what is wrong)."""
    by_column = {f"{provider} / {column}": {"rows": rows, "example": f"{path}: row {row}: {example}"}
                 for provider, column, rows, path, row, example in problems}  # fmt: skip
    return {"rows": sum(p[2] for p in problems), "by_provider_and_column": dg.MetadataValue.json(by_column)}
