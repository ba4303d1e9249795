"""Google's native FOCUS export records (raw.gcp_billing_export, `"x_Dataset": "focus"`) -> core.focus_costs rows.

Source: one record per UTC charge day and FOCUS dimensions, aggregated in BigQuery from
`gcp_billing_export_focus_<ACCOUNT>` (sources/gcp_billing_query.focus_export_sql): FOCUS column names, money and
quantities as exact decimal text, timestamps as ISO 8601 UTC text, Google's label arrays (`x_Labels`,
`x_SystemLabels`, `x_ProjectLabels`, `[{Key, Value}]`). Grain: one FOCUS row per record. The rows go through the
FOCUS reader (normalize/focus_records.py), so they are checked and keyed as a FOCUS file's rows are.

Tags: the table has no Tags column, so Tags is built from the label arrays as the standard export's are built
(user labels unprefixed, `goog-system:<key>`, `goog-project:<key>`), so one allocation rule reads both exports.
"""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl

from mlcost_pipeline.normalize.focus_records import normalize_focus_records
from mlcost_pipeline.normalize.focus_schema import COLUMN_NAMES, NormalizationError, tags_json

FOCUS_DATASET = "focus"
_LABELS = (("x_Labels", ""), ("x_SystemLabels", "goog-system:"), ("x_ProjectLabels", "goog-project:"))


def is_focus_record(payload: object) -> bool:
    return isinstance(payload, dict) and payload.get("x_Dataset") == FOCUS_DATASET


def _pairs(items: object, field: str, i: int) -> list[tuple[str, object]]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(kv, dict) for kv in items):
        raise NormalizationError(f"gcp_billing_export: record {i}: field {field}: expected a list of {{Key, Value}}")
    out = []
    for kv in items:
        lower = {str(k).lower(): v for k, v in kv.items()}
        if "key" not in lower:
            raise NormalizationError(f"gcp_billing_export: record {i}: field {field}: a label without Key")
        out.append((str(lower["key"]), lower.get("value")))
    return out


def _tags(payload: dict, i: int) -> str | None:
    tags = payload.get("Tags")
    if isinstance(tags, str) or (tags is not None and not isinstance(tags, list | dict)):
        return tags
    if isinstance(tags, dict):
        return tags_json(tags)
    if isinstance(tags, list):
        return tags_json(dict(_pairs(tags, "Tags", i)))
    merged: dict[str, object] = {}
    for field, prefix in reversed(_LABELS):  # user labels win over system labels, which win over project labels
        merged.update({f"{prefix}{k}": v for k, v in _pairs(payload.get(field), field, i)})
    return tags_json(merged) if merged else None


def focus_rows(payloads: list[dict]) -> list[dict]:
    """The records as FOCUS rows: the contract's columns only, Tags built from the label arrays, JSON as text."""
    rows = []
    for i, payload in enumerate(payloads):
        row = {k: v for k, v in payload.items() if k in COLUMN_NAMES}
        row["Tags"] = _tags(payload, i)
        if isinstance(row.get("SkuPriceDetails"), dict | list):
            row["SkuPriceDetails"] = json.dumps(row["SkuPriceDetails"], sort_keys=True, separators=(",", ":"))
        rows.append(row)
    return rows


def normalize_focus_export(payloads: list[dict], ingested_at: datetime, source: str) -> pl.DataFrame:
    return normalize_focus_records(focus_rows(payloads), ingested_at, source)
