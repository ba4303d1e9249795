"""Tag-based allocation inside DuckDB: each charge of a window goes whole to the project its tags name.

Source: core.focus_costs for [start, end). Grain of the output: one row per charge (piece 0). Charges whose tags
name no project go to `__unallocated__`, never dropped, so the window's total is conserved by construction.
Everything the rules contribute is bound as a parameter; nothing from the rules file is formatted into SQL.
"""

from __future__ import annotations

from datetime import date

from mlcost_pipeline.allocation.allocated_schema import ALLOCATED_COLUMNS, UNALLOCATED
from mlcost_pipeline.allocation.rules import Dimension, LoadedRules

COST_BASIS = "EffectiveCost"


def _dimension_sql(name: str) -> str:
    """A SQL expression for one dimension, reading the parameters `<name>_keys/_from/_to/_normalize`."""
    first_value = (
        f"list_filter(list_transform(${name}_keys, lambda k: "
        f"list_filter(tag_entries, lambda e: lower(e.key) = k)[1].value), "
        f"lambda v: v IS NOT NULL AND trim(v) <> '')[1]"
    )
    normalized = (
        f"CASE WHEN ${name}_normalize THEN regexp_replace(lower(trim({first_value})), '[_[:space:]]+', '-', 'g') "
        f"ELSE {first_value} END"
    )
    return f"coalesce(${name}_to[list_position(${name}_from, {normalized})], {normalized})"


def _dimension_params(name: str, dim: Dimension | None) -> dict[str, object]:
    dim = dim or Dimension(tag_keys=["__none__"])
    return {
        f"{name}_keys": dim.tag_keys,
        f"{name}_from": list(dim.aliases.keys()),
        f"{name}_to": list(dim.aliases.values()),
        f"{name}_normalize": dim.normalize,
    }


def allocation_select(loaded: LoadedRules, start: date, end: date) -> tuple[str, dict[str, object]]:
    """The SELECT producing core.allocated_costs rows for [start, end), and its parameters."""
    dims = loaded.rules.dimensions
    params: dict[str, object] = {
        "start": start,
        "end": end,
        "rules_hash": loaded.sha256,
        "unallocated": UNALLOCATED,
        "cost_basis": COST_BASIS,
        **_dimension_params("project", dims["project"]),
        **_dimension_params("model", dims.get("model")),
    }
    columns = ", ".join(f'"{c}"' for c, _ in ALLOCATED_COLUMNS)
    # Only our own column and dimension names are formatted in; every value from the rules is bound.
    sql = f"""
WITH charges AS (
    SELECT *, map_entries(coalesce(CAST(Tags AS MAP(VARCHAR, VARCHAR)), MAP {{}})) AS tag_entries
    FROM core.focus_costs
    WHERE x_ChargeDate >= $start AND x_ChargeDate < $end
), owned AS (
    SELECT *, {_dimension_sql("project")} AS tag_project, {_dimension_sql("model")} AS tag_model
    FROM charges
)
SELECT {columns} FROM (
    SELECT
        x_LineId,
        0 AS piece,
        x_ChargeDate AS charge_date,
        BillingCurrency AS billing_currency,
        EffectiveCost AS amount,
        $cost_basis AS cost_basis,
        coalesce(tag_project, $unallocated) AS project,
        tag_model AS model,
        CAST(NULL AS VARCHAR) AS run_id,
        CASE WHEN tag_project IS NULL THEN 'unallocated' ELSE 'tag:project' END AS rule_id,
        CASE WHEN tag_project IS NULL THEN 'unallocated' ELSE 'tag' END AS method,
        CAST(1 AS DECIMAL(38, 12)) AS ratio,
        $rules_hash AS rules_hash,
        ProviderName AS provider,
        ServiceName AS service_name,
        ServiceCategory AS service_category,
        SubAccountId AS sub_account_id,
        ResourceId AS resource_id,
        x_SourceSystem,
        CASE WHEN tag_project IS NULL THEN NULL ELSE 'tag:project' END AS AllocatedMethodId,
        CASE WHEN tag_project IS NULL THEN NULL
             ELSE json_object('Elements', json_array(json_object('AllocatedRatio', 1))) END
            AS AllocatedMethodDetails,
        tag_project AS AllocatedResourceId,
        CASE WHEN tag_project IS NULL THEN NULL ELSE json_object('x_project', tag_project) END AS AllocatedTags
    FROM owned
)
ORDER BY charge_date, x_LineId, piece
"""  # noqa: S608
    return sql, params
