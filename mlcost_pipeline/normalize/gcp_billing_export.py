"""GCP Cloud Billing export rows (BigQuery standard or detailed usage cost table) -> core.focus_costs.

Source: one payload per export row in the export's own shape: the sample's hourly rows, or the live connector's
rows aggregated per UTC day and group in BigQuery (sources/gcp_billing_query.py; numbers as int, float, Decimal
or str; timestamps as ISO 8601 text). Records of Google's native FOCUS export (`"x_Dataset": "focus"`) are read by
normalize/gcp_focus_export.py instead. Grain: one FOCUS row per record. Key: x_LineId over billing account,
project, service, SKU, usage window, labels, export_time, cost_type and location; identical rows get an
occurrence suffix.

Mapping choices (see notes/focus-and-provider-schemas.md §4.1; they differ from the FinOps converter on purpose):
- BilledCost = cost + sum(credits.amount): GCP applies credits on the row, so this is what the invoice shows.
- EffectiveCost = BilledCost. Committed-use fees are not amortized onto usage here: the standard table has no
  `subscription.instance_id` to join them on, so a CUD fee row stays a Usage row at its billed amount.
- ListCost = cost_at_list (else cost); ContractedCost = cost (after negotiated pricing, before credits).
- ChargeCategory: regular -> Usage, tax -> Tax, adjustment -> Credit when negative (FOCUS: a Credit reduces
  the cost, e.g. a goodwill or SLA credit) else Adjustment, rounding error -> Adjustment. Each cost type is its
  own row (the live query groups by it). An adjustment on usage of an earlier invoice month is ChargeClass
  Correction.
- BillingPeriodStart/End: GCP invoice months are Pacific time, so the period is the month's first midnight in
  America/Los_Angeles, in UTC (2026-11 -> 2026-11-01T07:00 .. 2026-12-01T08:00).
- Tags: user labels unprefixed; `goog-system:<key>` for system_labels; `goog-project:<key>` for project labels.
- Amounts are exact decimals; digits beyond the contract's 12 decimals (float noise) are rounded half-even.

Two paths, one result. The columnar path (gcp_billing_export_columns.py) reads each field for all rows at once and
maps them in polars; the per-record path (gcp_billing_export_records.py, the mapping one row at a time) takes every
batch the columnar path does not (a shape it does not read, or a bad row) and so builds every error message.
x_LineId is the same on both: sha256 of the key's JSON text (focus_schema.line_ids).
test_normalizer_paths.py holds the two to the same rows.
"""

from __future__ import annotations

from datetime import datetime
from itertools import repeat

import polars as pl

from mlcost_pipeline.normalize.focus_schema import conform, raises_normalization_error
from mlcost_pipeline.normalize.gcp_billing_export_columns import columnar_frame
from mlcost_pipeline.normalize.gcp_billing_export_records import (
    EXPORT_VERSION,
    PROVIDER,
    SOURCE,
    normalize_rows,
)

__all__ = ["EXPORT_VERSION", "PROVIDER", "SOURCE", "normalize_billing_export"]


def _has_focus_records(payloads: list) -> bool:
    from mlcost_pipeline.normalize.gcp_focus_export import FOCUS_DATASET, is_focus_record

    try:
        return FOCUS_DATASET in set(map(dict.get, payloads, repeat("x_Dataset")))
    except TypeError:  # a payload that is not an object (refused by the row checks) or an unhashable marker
        return any(map(is_focus_record, payloads))


def normalize_billing_export(payloads: list[dict], ingested_at: datetime) -> pl.DataFrame:
    """raw.gcp_billing_export records (any order, any window) -> conformed core.focus_costs rows, one per record.

    Records of Google's FOCUS export (`"x_Dataset": "focus"`) go through the FOCUS reader
    (normalize/gcp_focus_export.py); every other record is a standard or detailed export row.
    """
    from mlcost_pipeline.normalize.gcp_focus_export import is_focus_record, normalize_focus_export

    if not _has_focus_records(payloads):
        return _normalize_export_rows(payloads, ingested_at)
    focus = [p for p in payloads if is_focus_record(p)]
    native = [p for p in payloads if not is_focus_record(p)]
    frames = [normalize_focus_export(focus, ingested_at, SOURCE)]
    if native:
        frames.insert(0, _normalize_export_rows(native, ingested_at))
    return conform(pl.concat(frames, how="vertical"), SOURCE)


@raises_normalization_error(SOURCE)
def _normalize_export_rows(payloads: list[dict], ingested_at: datetime) -> pl.DataFrame:
    frame = columnar_frame(payloads, ingested_at)
    if frame is None:  # a shape the columnar path does not read, or a bad row: the per-record path decides
        return normalize_rows(payloads, ingested_at)
    return frame
