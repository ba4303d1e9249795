"""The GoogleSQL sent to BigQuery for a window: built from the table's schema, aggregated per UTC usage day.

Source: an `ExportTable` (its field paths and types from `tables.get`). The first CTE (`src`) is the only part that
reads the table: it names the fields and struct members the table has and puts a typed NULL where an older table
lacks one (no `cost_at_list`, `location` without `zone`, ...), so a missing optional member never fails the query;
members a newer table adds are not read. Everything after `src` reads `src` only. Grain of a result row: one per
UTC usage day and group key (the export's identifying dimensions, cost type kept apart); key column `group_key`
is dropped from the result. Parameters: @window_start, @window_end (TIMESTAMP, end exclusive).

Traps handled here: `credits` is a repeated record, so it is summed with UNNEST in correlated subqueries (per
export row, then per group over the group's own credits), never joined (a join repeats the row once per credit);
rows whose end precedes their start are counted per group (`x_end_before_start`) with one of them kept whole, so
the aggregation cannot hide them; rows keep arriving after their usage day, so a day is selected by
usage_start_time with no upper bound on export time, and the partition filter (export partitions are by export
time) reaches back EXPORT_LOOKBACK_DAYS before the window.
"""

from __future__ import annotations

from mlcost_pipeline.normalize.focus_schema import FOCUS_COLUMNS
from mlcost_pipeline.sources.gcp_billing_schema import DETAILED, ExportTable

EXPORT_LOOKBACK_DAYS = 1  # a row is exported after its usage starts; one day of margin for clock and day edges
_KV = "ARRAY<STRUCT<key STRING, value STRING>>"
_EXACT = ("NUMERIC", "BIGNUMERIC")


def _value(t: ExportTable, path: str, sql_type: str, *, ref: str | None = None) -> str:
    """`path` where the table has it (referred to as `ref`), else a typed NULL (an empty array for repeated)."""
    if t.has(path):
        return ref or path
    return f"CAST([] AS {sql_type})" if sql_type.startswith("ARRAY") else f"CAST(NULL AS {sql_type})"


def _number(t: ExportTable, path: str, ref: str | None = None) -> str:
    """Money or a quantity as an exact decimal: FLOAT64 cells are rounded to NUMERIC's 9 decimals first."""
    if not t.has(path):
        return "CAST(NULL AS NUMERIC)"
    base = (t.type_of(path) or "").removeprefix("ARRAY<").removesuffix(">")
    return ref or path if base in _EXACT else f"CAST({ref or path} AS NUMERIC)"


def _struct(t: ExportTable, record: str, members: dict[str, str]) -> str:
    parts = []
    for member, sql_type in members.items():
        path = f"{record}.{member}"
        value = _number(t, path) if sql_type == "NUMERIC" else _value(t, path, sql_type)
        parts.append(f"{value} AS {member}")
    return f"STRUCT({', '.join(parts)})"


def _partition_filter(t: ExportTable, export_time: str) -> str:
    bound = f"TIMESTAMP_SUB(@window_start, INTERVAL {EXPORT_LOOKBACK_DAYS} DAY)"
    if t.partitioning == "_PARTITIONTIME":
        return f" AND _PARTITIONTIME >= {bound}"
    if t.partitioning and t.partitioning.lower() == export_time.lower():
        return f" AND {export_time} >= {bound}"
    return ""  # partitioned by the usage time itself (the window prunes), or not partitioned


def _credits(t: ExportTable) -> str:
    members = [f"{_value(t, f'credits.{m}', 'STRING', ref=f'c.{m}')} AS {m}"
               for m in ("name", "full_name", "id", "type")]
    amount = _number(t, "credits.amount", ref="c.amount")
    return f"ARRAY(SELECT AS STRUCT {', '.join(members)}, {amount} AS amount FROM UNNEST(credits) AS c)"


def billing_export_sql(table: ExportTable) -> str:
    """The standard or detailed export, one row per day and group, in the export's own row shape."""
    t = table
    resource = (_struct(t, "resource", {"name": "STRING", "global_name": "STRING"}) if t.dataset == DETAILED
                else "CAST(NULL AS STRUCT<name STRING, global_name STRING>)")  # fmt: skip
    return f"""
WITH src AS (
  SELECT
    billing_account_id,
    {_struct(t, "service", {"id": "STRING", "description": "STRING"})} AS service,
    {_struct(t, "sku", {"id": "STRING", "description": "STRING"})} AS sku,
    usage_start_time, usage_end_time, export_time,
    {_struct(t, "project", {"id": "STRING", "number": "STRING", "name": "STRING", "labels": _KV})} AS project,
    {_value(t, "labels", _KV)} AS labels,
    {_value(t, "system_labels", _KV)} AS system_labels,
    {_struct(t, "location", {m: "STRING" for m in ("location", "country", "region", "zone")})} AS location,
    {_value(t, "transaction_type", "STRING")} AS transaction_type,
    {_value(t, "seller_name", "STRING")} AS seller_name,
    {_number(t, "cost")} AS cost,
    currency,
    {_value(t, "currency_conversion_rate", "FLOAT64")} AS currency_conversion_rate,
    {_struct(t, "usage", {"amount": "NUMERIC", "unit": "STRING", "amount_in_pricing_units": "NUMERIC",
                          "pricing_unit": "STRING"})} AS usage,
    {_credits(t)} AS credits,
    invoice.month AS invoice_month,
    cost_type,
    {_struct(t, "adjustment_info", {m: "STRING" for m in ("id", "description", "mode", "type")})} AS adjustment_info,
    {_number(t, "cost_at_list")} AS cost_at_list,
    {resource} AS resource
  FROM `{t.table}`
  WHERE usage_start_time >= @window_start AND usage_start_time < @window_end{_partition_filter(t, "export_time")}
),
keyed AS (
  SELECT *, usage_end_time < usage_start_time AS end_before_start,
    TO_JSON_STRING(STRUCT(
      DATE(usage_start_time) AS day, billing_account_id, project.id AS project_id, service.id AS service_id,
      sku.id AS sku_id, labels, system_labels, location.location AS location, location.region AS region,
      location.zone AS zone, cost_type, currency, currency_conversion_rate, invoice_month,
      usage.unit AS usage_unit, usage.pricing_unit AS pricing_unit, transaction_type, seller_name,
      adjustment_info.id AS adjustment_id, resource.name AS resource_name, resource.global_name AS resource_global
    )) AS group_key
  FROM src
),
totals AS (
  SELECT
    group_key,
    ANY_VALUE(billing_account_id) AS billing_account_id,
    ANY_VALUE(service) AS service,
    ANY_VALUE(sku) AS sku,
    MIN(usage_start_time) AS usage_start_time,
    MAX(usage_end_time) AS usage_end_time,
    ANY_VALUE(project) AS project,
    ANY_VALUE(labels) AS labels,
    ANY_VALUE(system_labels) AS system_labels,
    ANY_VALUE(location) AS location,
    ANY_VALUE(resource) AS resource,
    ANY_VALUE(transaction_type) AS transaction_type,
    ANY_VALUE(seller_name) AS seller_name,
    MAX(export_time) AS export_time,
    SUM(cost) AS cost,
    ANY_VALUE(currency) AS currency,
    ANY_VALUE(currency_conversion_rate) AS currency_conversion_rate,
    STRUCT(
      SUM(usage.amount) AS amount, ANY_VALUE(usage.unit) AS unit,
      SUM(usage.amount_in_pricing_units) AS amount_in_pricing_units, ANY_VALUE(usage.pricing_unit) AS pricing_unit
    ) AS usage,
    STRUCT(ANY_VALUE(invoice_month) AS month) AS invoice,
    ANY_VALUE(cost_type) AS cost_type,
    ANY_VALUE(adjustment_info) AS adjustment_info,
    IF(COUNTIF(cost_at_list IS NULL) > 0, NULL, SUM(cost_at_list)) AS cost_at_list,
    ARRAY_CONCAT_AGG(credits) AS group_credits,
    COUNT(*) AS x_export_rows,
    COUNTIF(end_before_start) AS x_end_before_start,
    ANY_VALUE(IF(end_before_start, STRUCT(
      usage_start_time AS usage_start_time, usage_end_time AS usage_end_time, export_time AS export_time,
      project.id AS project_id, service.id AS service_id, sku.id AS sku_id, resource.name AS resource_name,
      cost AS cost
    ), NULL)) AS x_end_before_start_row
  FROM keyed
  GROUP BY group_key
)
SELECT
  t.* EXCEPT (group_key, group_credits),
  ARRAY(
    SELECT AS STRUCT c.name AS name, c.full_name AS full_name, c.id AS id, c.type AS type, SUM(c.amount) AS amount
    FROM UNNEST(t.group_credits) AS c
    GROUP BY c.name, c.full_name, c.id, c.type
    ORDER BY c.type, c.name, c.id
  ) AS credits
FROM totals AS t
ORDER BY usage_start_time, t.group_key
"""


# FOCUS export: what is summed (money and quantities: additive), what bounds the day, what is only ours.
FOCUS_SUMMED = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingCurrencyEffectiveCost",
                "ConsumedQuantity", "PricingQuantity", "CommitmentDiscountQuantity")  # fmt: skip
_FOCUS_OURS = ("x_LineId", "x_SourceSystem", "x_ChargeDate", "x_IngestedAt", "x_ExportVersion", "x_Estimated")
# Google's own columns kept as dimensions: the cost type apart (tax, adjustment, rounding error stay separate
# cells, as in the standard export) and the label arrays that become Tags.
FOCUS_EXTRAS = ("x_CostType", "x_Labels", "x_SystemLabels", "x_ProjectLabels")


def focus_dimensions(table: ExportTable) -> list[str]:
    """The FOCUS columns the warehouse keeps (plus FOCUS_EXTRAS) that the table has, as FOCUS spells them."""
    skip = {*FOCUS_SUMMED, *_FOCUS_OURS, "ChargePeriodStart", "ChargePeriodEnd"}
    return [c for c in [*(c for c, _ in FOCUS_COLUMNS), *FOCUS_EXTRAS] if c not in skip and table.has(c)]


def _as_text(t: ExportTable, column: str, expr: str) -> str:
    numeric = (t.type_of(column) or "") in (*_EXACT, "FLOAT64", "INT64")
    return f"CAST({expr} AS STRING)" if numeric else expr


def focus_export_sql(table: ExportTable) -> str:
    """Google's FOCUS export, one row per UTC charge day and FOCUS dimensions; money summed exactly, as text."""
    t = table
    dims = focus_dimensions(t)
    summed = [c for c in FOCUS_SUMMED if t.has(c)]
    export_time = "x_ExportTime" if t.has("x_ExportTime") else None
    src = [*dims, "ChargePeriodStart", "ChargePeriodEnd", *(f"{_number(t, c)} AS {c}" for c in summed),
           *([export_time] if export_time else [])]  # fmt: skip
    named = ["ChargePeriodStart", "ChargePeriodEnd", *([export_time] if export_time else []),
             *(c for c in ("SubAccountId", "ServiceName", "SkuId", "ResourceId") if c in dims)]
    offending = ", ".join([*(f"{c} AS {c}" for c in named), "CAST(BilledCost AS STRING) AS BilledCost"])
    aggregates = [*(f"{_as_text(t, c, f'ANY_VALUE({c})')} AS {c}" for c in dims),
                  "MIN(ChargePeriodStart) AS ChargePeriodStart", "MAX(ChargePeriodEnd) AS ChargePeriodEnd",
                  *(f"CAST(SUM({c}) AS STRING) AS {c}" for c in summed),
                  *([f"MAX({export_time}) AS x_ExportTime"] if export_time else []),
                  "COUNT(*) AS x_ExportRows", "COUNTIF(end_before_start) AS x_EndBeforeStart",
                  f"ANY_VALUE(IF(end_before_start, STRUCT({offending}), NULL)) AS x_EndBeforeStartRow"]  # fmt: skip
    partition = _partition_filter(t, "x_ExportTime") if export_time else _partition_filter(t, "")
    sep = ",\n    "
    return f"""
WITH src AS (
  SELECT
    {sep.join(src)}
  FROM `{t.table}`
  WHERE ChargePeriodStart >= @window_start AND ChargePeriodStart < @window_end{partition}
),
keyed AS (
  SELECT *, ChargePeriodEnd < ChargePeriodStart AS end_before_start,
    TO_JSON_STRING(STRUCT(DATE(ChargePeriodStart) AS x_ChargeDay{"".join(f", {c}" for c in dims)})) AS group_key
  FROM src
),
totals AS (
  SELECT
    group_key,
    {sep.join(aggregates)}
  FROM keyed
  GROUP BY group_key
)
SELECT t.* EXCEPT (group_key)
FROM totals AS t
ORDER BY ChargePeriodStart, t.group_key
"""
