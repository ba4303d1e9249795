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
    raises_normalization_error,
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


def _decimal(value: object, i: int, field: str, required: bool = False) -> Decimal | None:
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


def _exact(d: Decimal | None) -> Decimal | None:
    if d is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        return d.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def _timestamp(value: object, i: int, field: str) -> datetime:
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
def _billing_period(month: str) -> tuple[datetime, datetime]:
    year, mon = int(month[:4]), int(month[4:])
    nxt = (year + mon // 12, mon % 12 + 1)
    start = datetime(year, mon, 1, tzinfo=_PACIFIC).astimezone(UTC).replace(tzinfo=None)
    end = datetime(*nxt, 1, tzinfo=_PACIFIC).astimezone(UTC).replace(tzinfo=None)
    return start, end


def _pacific_month(ts: datetime) -> str:
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

    cost = _decimal(row.get("cost"), i, "cost", required=True)
    credits = row.get("credits") or []
    if not isinstance(credits, list) or not all(isinstance(c, dict) for c in credits):
        raise _fail(i, "credits", "expected a list of credit records")
    credit_total = sum(
        (_decimal(c.get("amount"), i, f"credits[{k}].amount", required=True) for k, c in enumerate(credits)),
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
    start = _timestamp(row.get("usage_start_time"), i, "usage_start_time")
    end = _timestamp(row.get("usage_end_time"), i, "usage_end_time")
    if end < start:
        raise _fail(i, "usage_end_time", f"{end} is before usage_start_time {start}")
    export_time = _timestamp(row["export_time"], i, "export_time") if row.get("export_time") else None
    period_start, period_end = _billing_period(month)

    if cost_type == "regular":
        category, frequency = "Usage", "Usage-Based"
    elif cost_type == "tax":
        category, frequency = "Tax", "One-Time"
    elif cost_type == "adjustment":
        category, frequency = ("Credit" if billed < 0 else "Adjustment"), "One-Time"
    else:
        category, frequency = "Adjustment", "One-Time"
    correction = cost_type == "adjustment" and month > _pacific_month(start)
    labels = _pairs(row.get("labels"), i, "labels")
    list_cost = _decimal(row.get("cost_at_list"), i, "cost_at_list")
    seller = row.get("seller_name")

    out = {
        "BilledCost": billed,
        "EffectiveCost": billed,
        "ListCost": cost if list_cost is None else list_cost,
        "ContractedCost": cost,
        "BillingCurrency": currency,
        "x_CurrencyConversionRate": _decimal(row.get("currency_conversion_rate"), i, "currency_conversion_rate"),
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
        "ConsumedQuantity": _decimal(usage.get("amount"), i, "usage.amount"),
        "ConsumedUnit": usage.get("unit") or None,
        "PricingQuantity": _decimal(usage.get("amount_in_pricing_units"), i, "usage.amount_in_pricing_units"),
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


def normalize_billing_export(payloads: list[dict], ingested_at: datetime) -> pl.DataFrame:
    """raw.gcp_billing_export records (any order, any window) -> conformed core.focus_costs rows, one per record.

    Records of Google's FOCUS export (`"x_Dataset": "focus"`) go through the FOCUS reader
    (normalize/gcp_focus_export.py); every other record is a standard or detailed export row.
    """
    from mlcost_pipeline.normalize.gcp_focus_export import is_focus_record, normalize_focus_export

    focus = [p for p in payloads if is_focus_record(p)]
    if not focus:
        return _normalize_export_rows(payloads, ingested_at)
    native = [p for p in payloads if not is_focus_record(p)]
    frames = [normalize_focus_export(focus, ingested_at, SOURCE)]
    if native:
        frames.insert(0, _normalize_export_rows(native, ingested_at))
    return conform(pl.concat(frames, how="vertical"), SOURCE)


@raises_normalization_error(SOURCE)
def _normalize_export_rows(payloads: list[dict], ingested_at: datetime) -> pl.DataFrame:
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
        columns[name] = [_exact(v) for v in columns[name]]
    df = pl.DataFrame(columns, schema={name: POLARS_SCHEMA[name] for name in columns})
    df = df.with_columns(
        pl.Series("x_LineId", line_ids(SOURCE, keys), dtype=pl.String),
        pl.lit(SOURCE).alias("x_SourceSystem"),
        pl.lit(ingested, dtype=POLARS_SCHEMA["x_IngestedAt"]).alias("x_IngestedAt"),
    )
    return conform(df, SOURCE)
