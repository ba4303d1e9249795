"""Billing export schemas the GCP stub can serve (DuckDB types), as real tables have them at different ages.

- `EXPORT_COLUMNS`: the standard usage cost table as the connector was first written against (the default);
  `DETAILED_COLUMNS` adds the detailed export's `resource`.
- `LEGACY_COLUMNS`: an older table (the fields of Elastic's billing-schema.json base set): no `system_labels`,
  `tags`, `cost_at_list`, `transaction_type`/`seller_name`, `adjustment_info`, `currency_conversion_rate`;
  `project` without `number`/`ancestors`, `location` without `zone`, `usage` without the pricing units, credits
  without `full_name`/`id`/`type`, `invoice` without `publisher_type`.
- `CURRENT_COLUMNS`: a newer detailed table with members the connector does not read (`tags`, `price`,
  `subscription`, `project.ancestors`, `invoice.publisher_type`, `consumption_model`, ...).
- `FOCUS_TABLE_COLUMNS`: Google's native FOCUS export table (`gcp_billing_export_focus_<ACCOUNT>`), its column
  names and types as a live table's INFORMATION_SCHEMA lists them (the 55 columns quoted in
  etiennechabert/cost-goblin's exporter tests; Google's reference page is
  cloud.google.com/billing/docs/how-to/export-data-bigquery-tables/focus-export). NUMERIC is DECIMAL(38,9).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

KV = "STRUCT(key VARCHAR, value VARCHAR)[]"
EXPORT_COLUMNS = {
    "billing_account_id": "VARCHAR",
    "service": "STRUCT(id VARCHAR, description VARCHAR)",
    "sku": "STRUCT(id VARCHAR, description VARCHAR)",
    "usage_start_time": "TIMESTAMP",
    "usage_end_time": "TIMESTAMP",
    "project": f"STRUCT(id VARCHAR, number VARCHAR, name VARCHAR, labels {KV}, ancestry_numbers VARCHAR)",
    "labels": KV,
    "system_labels": KV,
    "location": "STRUCT(location VARCHAR, country VARCHAR, region VARCHAR, zone VARCHAR)",
    "transaction_type": "VARCHAR",
    "seller_name": "VARCHAR",
    "export_time": "TIMESTAMP",
    "cost": "DOUBLE",
    "currency": "VARCHAR",
    "currency_conversion_rate": "DOUBLE",
    "usage": "STRUCT(amount DOUBLE, unit VARCHAR, amount_in_pricing_units DOUBLE, pricing_unit VARCHAR)",
    "credits": "STRUCT(name VARCHAR, amount DOUBLE, full_name VARCHAR, id VARCHAR, type VARCHAR)[]",
    "invoice": "STRUCT(month VARCHAR)",
    "cost_type": "VARCHAR",
    "adjustment_info": "STRUCT(id VARCHAR, description VARCHAR, mode VARCHAR, type VARCHAR)",
    "cost_at_list": "DOUBLE",
}
DETAILED_COLUMNS = {"resource": "STRUCT(name VARCHAR, global_name VARCHAR)"}


LEGACY_COLUMNS = {
    "billing_account_id": "VARCHAR",
    "service": "STRUCT(id VARCHAR, description VARCHAR)",
    "sku": "STRUCT(id VARCHAR, description VARCHAR)",
    "usage_start_time": "TIMESTAMP",
    "usage_end_time": "TIMESTAMP",
    "project": f"STRUCT(id VARCHAR, name VARCHAR, labels {KV}, ancestry_numbers VARCHAR)",
    "labels": KV,
    "location": "STRUCT(location VARCHAR, country VARCHAR, region VARCHAR)",
    "export_time": "TIMESTAMP",
    "cost": "DOUBLE",
    "currency": "VARCHAR",
    "usage": "STRUCT(amount DOUBLE, unit VARCHAR)",
    "credits": "STRUCT(name VARCHAR, amount DOUBLE)[]",
    "invoice": "STRUCT(month VARCHAR)",
    "cost_type": "VARCHAR",
}

CURRENT_COLUMNS = {
    "billing_account_id": "VARCHAR",
    "service": "STRUCT(id VARCHAR, description VARCHAR)",
    "sku": "STRUCT(id VARCHAR, description VARCHAR)",
    "usage_start_time": "TIMESTAMP",
    "usage_end_time": "TIMESTAMP",
    "project": f"STRUCT(id VARCHAR, number VARCHAR, name VARCHAR, labels {KV}, ancestry_numbers VARCHAR, "
    "ancestors STRUCT(resource_name VARCHAR, display_name VARCHAR)[])",
    "labels": KV,
    "system_labels": KV,
    "location": "STRUCT(location VARCHAR, country VARCHAR, region VARCHAR, zone VARCHAR)",
    "tags": "STRUCT(key VARCHAR, value VARCHAR, inherited BOOLEAN, namespace VARCHAR)[]",
    "transaction_type": "VARCHAR",
    "seller_name": "VARCHAR",
    "export_time": "TIMESTAMP",
    "cost": "DOUBLE",
    "cost_at_list": "DOUBLE",
    "cost_at_effective_price_default": "DOUBLE",
    "currency": "VARCHAR",
    "currency_conversion_rate": "DOUBLE",
    "usage": "STRUCT(amount DOUBLE, unit VARCHAR, amount_in_pricing_units DOUBLE, pricing_unit VARCHAR)",
    "credits": "STRUCT(name VARCHAR, amount DOUBLE, full_name VARCHAR, id VARCHAR, type VARCHAR)[]",
    "invoice": "STRUCT(month VARCHAR, publisher_type VARCHAR)",
    "cost_type": "VARCHAR",
    "adjustment_info": "STRUCT(id VARCHAR, description VARCHAR, mode VARCHAR, type VARCHAR)",
    "consumption_model": "STRUCT(id VARCHAR, description VARCHAR)",
    "resource": "STRUCT(name VARCHAR, global_name VARCHAR)",
    "price": "STRUCT(effective_price DOUBLE, tier_start_amount DOUBLE, unit VARCHAR, pricing_unit_quantity DOUBLE)",
    "subscription": "STRUCT(instance_id VARCHAR)",
}

_N = "DECIMAL(38,9)"
_KV_CAP = "STRUCT(Key VARCHAR, Value VARCHAR)[]"
FOCUS_TABLE_COLUMNS = {
    "AvailabilityZone": "VARCHAR", "BilledCost": _N, "BillingAccountId": "VARCHAR", "BillingCurrency": "VARCHAR",
    "BillingPeriodStart": "TIMESTAMP", "BillingPeriodEnd": "TIMESTAMP", "ChargeCategory": "VARCHAR",
    "ChargeClass": "VARCHAR", "ChargeDescription": "VARCHAR", "ChargePeriodStart": "TIMESTAMP",
    "ChargePeriodEnd": "TIMESTAMP", "ConsumedQuantity": _N, "ConsumedUnit": "VARCHAR", "ContractedCost": _N,
    "ContractedUnitPrice": _N, "ListCost": _N, "ListUnitPrice": _N, "PricingCategory": "VARCHAR",
    "PricingQuantity": _N, "PricingUnit": "VARCHAR", "ProviderName": "VARCHAR", "PublisherName": "VARCHAR",
    "RegionId": "VARCHAR", "RegionName": "VARCHAR", "ResourceId": "VARCHAR", "ResourceName": "VARCHAR",
    "ServiceName": "VARCHAR", "SkuId": "VARCHAR", "SkuPriceId": "VARCHAR", "SubAccountId": "VARCHAR",
    "SubAccountName": "VARCHAR",
    "x_Credits": "STRUCT(Name VARCHAR, Amount DECIMAL(38,9), FullName VARCHAR, Id VARCHAR, Type VARCHAR)[]",
    "x_CostType": "VARCHAR", "x_CurrencyConversionRate": "DOUBLE", "x_ExportTime": "TIMESTAMP",
    "x_Location": "VARCHAR",
    "x_Project": "STRUCT(Id VARCHAR, Number VARCHAR, Name VARCHAR, AncestryNumbers VARCHAR, "
                 "Ancestors STRUCT(ResourceName VARCHAR, DisplayName VARCHAR)[])",
    "x_ServiceId": "VARCHAR", "x_SystemLabels": _KV_CAP, "x_Labels": _KV_CAP, "x_ProjectLabels": _KV_CAP,
    "x_Tags": "STRUCT(Key VARCHAR, Value VARCHAR, x_Inherited BOOLEAN, x_Namespace VARCHAR)[]",
    "EffectiveCost": _N, "PricingCurrency": "VARCHAR", "PricingCurrencyContractedUnitPrice": _N,
    "PricingCurrencyEffectiveCost": _N, "PricingCurrencyListUnitPrice": _N, "BillingAccountType": "VARCHAR",
    "x_SubscriptionInstanceId": "VARCHAR", "x_PriceEffectivePriceDefault": _N,
    "x_PriceListPriceConsumptionModel": _N, "x_CostAtEffectivePriceDefault": _N,
    "x_CostAtListConsumptionModel": _N, "x_ConsumptionModelId": "VARCHAR",
    "x_ConsumptionModelDescription": "VARCHAR",
}  # fmt: skip


def export_row(start: datetime, *, hours: int = 1, cost: float = 1.0, credits: Sequence[tuple[str, float]] = (),
               cost_type: str = "regular", project: str | None = "proj-a", sku: str = "SKU-N2-CORE",
               labels: dict[str, str] | None = None, currency: str = "EUR", export_time: datetime | None = None,
               zone: str | None = "europe-west4-a", **fields) -> dict:  # fmt: skip
    """One export row in today's detailed shape (every member `CURRENT_COLUMNS` has); the stub keeps what the
    schema it serves has. Timestamps are UTC; `export_time` defaults to three hours after the usage ends."""
    end = start + timedelta(hours=hours)
    iso = lambda ts: ts.replace(tzinfo=UTC).isoformat()  # noqa: E731
    row = {
        "billing_account_id": "01A2B3-C4D5E6-F7A8B9",
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": sku, "description": f"{sku} running in EMEA"},
        "usage_start_time": iso(start), "usage_end_time": iso(end),
        "project": None if project is None else {
            "id": project, "number": "880000000042", "name": project.title(),
            "labels": [{"key": "env", "value": "prod"}], "ancestry_numbers": "/880000000001/880000000042/",
            "ancestors": [{"resource_name": "organizations/1", "display_name": "acme.example"}]},
        "labels": [{"key": k, "value": v} for k, v in (labels or {}).items()],
        "system_labels": [{"key": "compute.googleapis.com/cores", "value": "8"}],
        "location": {"location": "europe-west4", "country": "NL", "region": "europe-west4", "zone": zone},
        "tags": [{"key": "env", "value": "prod", "inherited": True, "namespace": "880000000001"}],
        "transaction_type": "GOOGLE", "seller_name": None,
        "export_time": iso(export_time or end + timedelta(hours=3)),
        "cost": cost, "cost_at_list": round(cost * 1.05, 6), "cost_at_effective_price_default": cost,
        "currency": currency, "currency_conversion_rate": 0.9234,
        "usage": {"amount": 3600.0 * hours, "unit": "seconds", "amount_in_pricing_units": float(hours),
                  "pricing_unit": "hour"},
        "credits": [{"name": name, "amount": amount, "full_name": None, "id": f"C-{n}", "type": name.upper()}
                    for n, (name, amount) in enumerate(credits)],
        "invoice": {"month": start.replace(tzinfo=UTC).astimezone(ZoneInfo("America/Los_Angeles")).strftime("%Y%m"),
                    "publisher_type": "GOOGLE"},
        "cost_type": cost_type,
        "adjustment_info": None,
        "consumption_model": {"id": "DEFAULT", "description": "Default"},
        "resource": {"name": "vm-1", "global_name": "//compute.googleapis.com/projects/p/zones/z/instances/1"},
        "price": {"effective_price": 0.03, "tier_start_amount": 0.0, "unit": "hour", "pricing_unit_quantity": 1.0},
        "subscription": {"instance_id": None},
    }  # fmt: skip
    row.update(fields)
    return row
