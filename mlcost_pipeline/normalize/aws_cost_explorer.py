"""AWS Cost Explorer GetCostAndUsage page-days -> `core.focus_costs` rows.

Source: the `{"request", "response"}` records of `sources/aws_cost_explorer.py` (or any saved GetCostAndUsage
page with its request). Grain: one row per (ResultsByTime period, group). Key, hashed into x_LineId:
(period start, linked account, group keys in response order).

Mapping choices (Cost Explorer has no line items, so some FOCUS columns are approximations):
- BilledCost = NetUnblendedCost when requested, else UnblendedCost.
- EffectiveCost = NetAmortizedCost, else AmortizedCost, else the BilledCost metric.
- ListCost = ContractedCost = UnblendedCost: CE exposes no list or contracted price at this grain.
- BillingCurrency = the Unit of the cost metrics (they must agree).
- ChargeCategory = Tax for the SERVICE "Tax", else Usage (CE's SERVICE grouping has no other hint).
- BillingAccountId = the `billing_account_id` argument (the payer); CE responses do not carry it.
- SubAccountId = the LINKED_ACCOUNT of the request filter or group; SubAccountName from DimensionValueAttributes.
- Tags = {tag key: value} from "Key$value" group keys; null when the value is empty (untagged).

Two paths, one result. The columnar path (aws_cost_explorer_columns.py) reads the groups field by field for all
groups at once and maps them in polars: a window's tens of thousands of groups at a few microseconds each. The
per-record path (aws_cost_explorer_records.py, the mapping one group at a time) takes every batch the columnar path
does not (a shape it does not read, or a bad record) and so builds every error message. x_LineId is the same on
both: sha256 of the key's JSON text (focus_schema.line_ids). test_normalizer_paths.py holds the two
to the same rows.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from mlcost_pipeline.normalize.aws_cost_explorer_columns import columnar_frame
from mlcost_pipeline.normalize.aws_cost_explorer_records import (
    EXPORT_VERSION,
    PROVIDER,
    SERVICE_CATEGORIES,
    SOURCE,
    UNKNOWN_BILLING_ACCOUNT,
    normalize_records,
)
from mlcost_pipeline.normalize.focus_schema import raises_normalization_error

__all__ = ["EXPORT_VERSION", "PROVIDER", "SERVICE_CATEGORIES", "SOURCE", "UNKNOWN_BILLING_ACCOUNT",
           "normalize_cost_explorer"]  # fmt: skip


@raises_normalization_error(SOURCE)
def normalize_cost_explorer(
    payloads: list[dict], ingested_at: datetime, *, billing_account_id: str | None = None
) -> pl.DataFrame:
    """FOCUS rows for a window's GetCostAndUsage page-days; amounts may be str, int, float or Decimal."""
    frame = columnar_frame(payloads, ingested_at, billing_account_id)
    if frame is None:  # a shape the columnar path does not read, or a bad record: the per-record path decides
        return normalize_records(payloads, ingested_at, billing_account_id=billing_account_id)
    return frame
