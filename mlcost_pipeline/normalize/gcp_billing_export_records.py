"""GCP billing export rows -> `core.focus_costs` rows, one row at a time: the mapping as first written.

Source, grain, key and mapping choices as in normalize/gcp_billing_export.py. This is the per-record path: the
columnar path (gcp_billing_export_columns.py) hands it every batch it does not take (a shape it does not read, or
a bad row), so every error message is built here, naming the row and the field. The equivalence tests
(test_normalizer_paths.py) hold both paths to the same rows.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from functools import lru_cache
from zoneinfo import ZoneInfo

import polars as pl

from mlcost_pipeline.normalize.focus_schema import (
    MONEY_LIMIT,
    MONEY_SCALE,
    POLARS_SCHEMA,
    NormalizationError,
    conform,
    line_ids,
    tags_json,
)
from mlcost_pipeline.normalize.gcp_service_categories import service_category

SOURCE = "gcp_billing_export"
EXPORT_VERSION = "bq-standard-v1"
PROVIDER = "Google Cloud"
_PACIFIC = ZoneInfo("America/Los_Angeles")
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
_CURRENCY = re.compile(r"[A-Z]{3}")
_MONTH = re.compile(r"(\d{4})(0[1-9]|1[0-2])")
_COST_TYPES = ("regular", "tax", "adjustment", "rounding_error", "rounding error")
_MONEY_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity",
                  "PricingQuantity", "x_CurrencyConversionRate")


def _fail(i: int, field: str, problem: str) -> NormalizationError:
    return NormalizationError(f"{SOURCE}: row {i}: field {field}: {problem}")


def decimal_value(value: object, i: int, field: str, required: bool = False) -> Decimal | None:
    if value is None:
        if required:
            raise _fail(i, field, "missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise _fail(i, field, f"not a number: {value!r}")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise _fail(i, field, f"not a number: {value!r}") from None
    if not d.is_finite():
        raise _fail(i, field, f"not a finite number: {value!r}")
    if abs(d) >= MONEY_LIMIT:
        raise _fail(i, field, f"beyond the DECIMAL(38,12) range: {value!r}")
    return d


def exact(d: Decimal | None) -> Decimal | None:
    if d is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        return d.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def timestamp(value: object, i: int, field: str) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip().replace(" UTC", "+00:00"))
        except ValueError:
            raise _fail(i, field, f"not an ISO 8601 timestamp: {value!r}") from None
    else:
        raise _fail(i, field, f"missing or not a timestamp: {value!r}")
    # A timestamp without offset is UTC (BigQuery TIMESTAMP is always UTC).
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


@lru_cache(maxsize=64)
def billing_period(month: str) -> tuple[datetime, datetime]:
    year, mon = int(month[:4]), int(month[4:])
    nxt = (year + mon // 12, mon % 12 + 1)
    start = datetime(year, mon, 1, tzinfo=_PACIFIC).astimezone(UTC).replace(tzinfo=None)
    end = datetime(*nxt, 1, tzinfo=_PACIFIC).astimezone(UTC).replace(tzinfo=None)
    return start, end


def pacific_month(ts: datetime) -> str:
    return ts.replace(tzinfo=UTC).astimezone(_PACIFIC).strftime("%Y%m")


def _record(row: dict, name: str, i: int) -> dict:
    value = row.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(i, name, f"expected a record, got {type(value).__name__}")
    return value


def _pairs(items: object, i: int, field: str) -> list[tuple[str, str | None]]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(kv, dict) and "key" in kv for kv in items):
        raise _fail(i, field, "expected a list of {key, value} records")
    return [(str(kv["key"]), None if kv.get("value") is None else str(kv["value"])) for kv in items]


def _tags(labels, system_labels, project_labels) -> str | None:
    tags: dict[str, object] = {}
    tags.update({f"goog-project:{k}": v for k, v in project_labels})
    tags.update({f"goog-system:{k}": v for k, v in system_labels})
    tags.update(dict(labels))
    return tags_json(tags) if tags else None


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _normalize_row(i: int, row: object) -> tuple[dict, tuple]:
    if not isinstance(row, dict):
        raise NormalizationError(f"{SOURCE}: row {i}: expected an export row object, got {type(row).__name__}")
    service, sku, project = _record(row, "service", i), _record(row, "sku", i), _record(row, "project", i)
    location, usage, invoice = _record(row, "location", i), _record(row, "usage", i), _record(row, "invoice", i)
    resource = _record(row, "resource", i)  # detailed (resource-level) export only

    cost = decimal_value(row.get("cost"), i, "cost", required=True)
    credits = row.get("credits") or []
    if not isinstance(credits, list) or not all(isinstance(c, dict) for c in credits):
        raise _fail(i, "credits", "expected a list of credit records")
    credit_total = sum(
        (decimal_value(c.get("amount"), i, f"credits[{k}].amount", required=True) for k, c in enumerate(credits)),
        Decimal(0),
    )
    billed = cost + credit_total
    currency = row.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise _fail(i, "currency", f"not an ISO 4217 code (3 uppercase letters): {currency!r}")
    cost_type = row.get("cost_type")
    if cost_type not in _COST_TYPES:
        raise _fail(i, "cost_type", f"unknown value {cost_type!r}; expected one of {list(_COST_TYPES[:4])}")
    month = invoice.get("month")
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        raise _fail(i, "invoice.month", f"expected YYYYMM, got {month!r}")
    if not row.get("billing_account_id"):
        raise _fail(i, "billing_account_id", "missing")
    if not service.get("description"):
        raise _fail(i, "service.description", "missing")
    start = timestamp(row.get("usage_start_time"), i, "usage_start_time")
    end = timestamp(row.get("usage_end_time"), i, "usage_end_time")
    if end < start:
        raise _fail(i, "usage_end_time", f"{end} is before usage_start_time {start}")
    export_time = timestamp(row["export_time"], i, "export_time") if row.get("export_time") else None
    period_start, period_end = billing_period(month)

    if cost_type == "regular":
        category, frequency = "Usage", "Usage-Based"
    elif cost_type == "tax":
        category, frequency = "Tax", "One-Time"
    elif cost_type == "adjustment":
        category, frequency = ("Credit" if billed < 0 else "Adjustment"), "One-Time"
    else:
        category, frequency = "Adjustment", "One-Time"
    correction = cost_type == "adjustment" and month > pacific_month(start)
    labels = _pairs(row.get("labels"), i, "labels")
    list_cost = decimal_value(row.get("cost_at_list"), i, "cost_at_list")
    seller = row.get("seller_name")

    out = {
        "BilledCost": billed,
        "EffectiveCost": billed,
        "ListCost": cost if list_cost is None else list_cost,
        "ContractedCost": cost,
        "BillingCurrency": currency,
        "x_CurrencyConversionRate": decimal_value(row.get("currency_conversion_rate"), i, "currency_conversion_rate"),
        "ChargeCategory": category,
        "ChargeClass": "Correction" if correction else None,
        "ChargeFrequency": frequency,
        "ChargeDescription": sku.get("description"),
        "ChargePeriodStart": start,
        "ChargePeriodEnd": end,
        "BillingPeriodStart": period_start,
        "BillingPeriodEnd": period_end,
        "BillingAccountId": str(row["billing_account_id"]),
        "BillingAccountName": row.get("billing_account_name") or None,  # added by the live connector (Cloud Billing API)
        "BillingAccountType": "Billing Account",
        "SubAccountId": project.get("id"),
        "SubAccountName": project.get("name"),
        "SubAccountType": "Project" if project.get("id") else None,
        "ServiceName": service["description"],
        "ServiceCategory": service_category(service["description"]),
        "SkuId": sku.get("id") or None,
        "RegionId": location.get("region"),
        "AvailabilityZone": location.get("zone"),
        "ResourceId": resource.get("global_name") or resource.get("name"),
        "ResourceName": resource.get("name"),
        "ConsumedQuantity": decimal_value(usage.get("amount"), i, "usage.amount"),
        "ConsumedUnit": usage.get("unit") or None,
        "PricingQuantity": decimal_value(usage.get("amount_in_pricing_units"), i, "usage.amount_in_pricing_units"),
        "PricingUnit": usage.get("pricing_unit") or None,
        "PricingCategory": "Standard" if category == "Usage" else None,
        "ProviderName": PROVIDER,
        "PublisherName": PROVIDER,
        "InvoiceIssuerName": PROVIDER,
        "HostProviderName": PROVIDER,
        "ServiceProviderName": seller or PROVIDER,
        "Tags": _tags(labels, _pairs(row.get("system_labels"), i, "system_labels"),
                      _pairs(project.get("labels"), i, "project.labels")),
        "x_ChargeDate": start.date(),
        "x_ExportVersion": "bq-detailed-v1" if resource else EXPORT_VERSION,
    }
    key = (
        row["billing_account_id"], project.get("id"), service.get("id"), sku.get("id"), start.isoformat(),
        end.isoformat(), _canonical(sorted(labels, key=lambda kv: kv[0])),
        export_time.isoformat() if export_time else None, cost_type, _canonical(location),
    )
    return out, key


def normalize_rows(payloads: list[dict], ingested_at: datetime) -> pl.DataFrame:
    """Standard or detailed export rows -> conformed core.focus_costs rows, one at a time (module docstring)."""
    rows, keys = [], []
    for i, payload in enumerate(payloads):
        out, key = _normalize_row(i, payload)
        rows.append(out)
        keys.append(key)
    if not rows:
        return conform(pl.DataFrame(schema=POLARS_SCHEMA), SOURCE)
    ingested = ingested_at.astimezone(UTC).replace(tzinfo=None) if ingested_at.tzinfo else ingested_at
    columns = {name: [r[name] for r in rows] for name in rows[0]}
    for name in _MONEY_COLUMNS:
        columns[name] = [exact(v) for v in columns[name]]
    df = pl.DataFrame(columns, schema={name: POLARS_SCHEMA[name] for name in columns})
    df = df.with_columns(
        pl.Series("x_LineId", line_ids(SOURCE, keys), dtype=pl.String),
        pl.lit(SOURCE).alias("x_SourceSystem"),
        pl.lit(ingested, dtype=POLARS_SCHEMA["x_IngestedAt"]).alias("x_IngestedAt"),
    )
    return conform(df, SOURCE)
