"""Azure Cost Management Query API page-days -> `core.focus_costs` rows.

Source: the `{"request", "response"}` records of `sources/azure_cost_management.py` (or any saved QueryResult with
its scope and cost type). Grain: one row per (UsageDate, scope, currency, grouping values), ActualCost and
AmortizedCost rows of the same key joined into one. Key, hashed into x_LineId: (UsageDate, scope, ResourceId,
ServiceName, TagKey, TagValue, then any other grouping column as name=value).

Mapping choices (the Query API returns aggregates, not line items):
- BilledCost = the ActualCost amount (type "Usage" counts as actual), EffectiveCost = the AmortizedCost amount;
  a side missing for a key is 0 (e.g. a reservation purchase has no amortized row). When a scope's payloads hold
  only one cost type, both columns take that type's amount.
- ListCost = ContractedCost = EffectiveCost: the Query API has no list or negotiated price.
- The cost column may be Cost, PreTaxCost, CostUSD or PreTaxCostUSD (the USD ones are in USD, whatever Currency
  says). UsageDate is required: totals and monthly queries are refused rather than dated arbitrarily.
- ChargePeriod = UsageDate 00:00 UTC + 1 day (Azure days are inclusive); BillingPeriod = the calendar month.
- ChargeCategory from a ChargeType column when grouped by it, else Purchase for reservation/savings-plan orders
  (Microsoft.Capacity, Microsoft.BillingBenefits resources), else Usage.
- ServiceName "Unknown" when the query was not grouped by ServiceName.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

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

SOURCE = "azure_cost_management"
PROVIDER = "Microsoft"
UNKNOWN_SERVICE = "Unknown"
COST_COLUMNS = ("Cost", "PreTaxCost", "CostUSD", "PreTaxCostUSD")  # first present wins
_STEP = Decimal(1).scaleb(-MONEY_SCALE)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_RESOURCE_GROUP = re.compile(r"/resourcegroups/([^/]+)", re.IGNORECASE)
_SUBSCRIPTION = re.compile(r"(?:^|/)subscriptions/([^/]+)", re.IGNORECASE)
_BILLING_ACCOUNT = re.compile(r"/billingaccounts/([^/]+)", re.IGNORECASE)
_BASIS = {"actualcost": "actual", "usage": "actual", "amortizedcost": "amortized"}

# Query API ServiceName values (meter categories) -> FOCUS ServiceCategory, from microsoft/finops-toolkit
# open-data/Services.csv (04d370f3) where the name appears there, else from the consumed service in
# focus_converters mapping_files/azure_category_mapping.csv (c799bf96): Bandwidth and Storage meters belong to
# microsoft.network and microsoft.storage.
SERVICE_CATEGORIES = {
    "Virtual Machines": "Compute",
    "Azure Kubernetes Service": "Compute",
    "Container Instances": "Compute",
    "Storage": "Storage",
    "Storage Accounts": "Storage",
    "Azure Machine Learning": "AI and Machine Learning",
    "Machine Learning": "AI and Machine Learning",
    "Cognitive Services": "AI and Machine Learning",
    "Azure OpenAI": "AI and Machine Learning",
    "Bandwidth": "Networking",
    "Virtual Network": "Networking",
    "Load Balancer": "Networking",
    "Azure Monitor": "Management and Governance",
    "Log Analytics": "Management and Governance",
    "Key Vault": "Security",
}
# Resource provider namespace -> category (azure_category_mapping.csv), used when ServiceName is unknown.
NAMESPACE_CATEGORIES = {
    "microsoft.compute": "Compute",
    "microsoft.containerservice": "Compute",
    "microsoft.storage": "Storage",
    "microsoft.network": "Networking",
    "microsoft.machinelearningservices": "AI and Machine Learning",
    "microsoft.cognitiveservices": "AI and Machine Learning",
    "microsoft.insights": "Management and Governance",
    "microsoft.operationalinsights": "Management and Governance",
    "microsoft.keyvault": "Security",
    "microsoft.capacity": "Other",
}
_CHARGE_TYPES = {"usage": "Usage", "purchase": "Purchase", "tax": "Tax", "refund": "Purchase",
                 "unusedreservation": "Usage", "unusedsavingsplan": "Usage"}  # fmt: skip
_PURCHASE_NAMESPACES = ("microsoft.capacity", "microsoft.billingbenefits")


def _fail(page: int, where: str, problem: str) -> NormalizationError:
    return NormalizationError(f"{SOURCE}: page {page}, {where}: {problem}")


def _decimal(value: object, page: int, where: str) -> Decimal:
    if value is None or isinstance(value, bool):
        raise _fail(page, where, f"not a number: {value!r}")
    try:
        number = Decimal(str(value))
        if not number.is_finite():
            raise InvalidOperation
    except InvalidOperation as exc:
        raise _fail(page, where, f"not a number: {value!r}") from exc
    if abs(number) >= MONEY_LIMIT:
        raise _fail(page, where, f"beyond the DECIMAL(38,12) range: {value!r}")
    try:
        return number.quantize(_STEP, rounding=ROUND_HALF_EVEN)
    except InvalidOperation as exc:
        raise _fail(page, where, f"not a number: {value!r}") from exc


def _usage_date(value: object, page: int, where: str) -> date:
    text = str(value)
    try:
        if re.fullmatch(r"\d{8}", text):
            return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        return date.fromisoformat(text[:10])
    except ValueError as exc:
        raise _fail(page, where, f"not a date: {value!r}") from exc


def _resource_parts(resource_id: str | None) -> tuple[str | None, str | None, str | None]:
    """(name, provider/type, namespace) of an ARM id; nested types join their type segments."""
    if not resource_id or "/providers/" not in resource_id.lower():
        return (resource_id.rstrip("/").split("/")[-1] if resource_id else None), None, None
    tail = resource_id[resource_id.lower().rindex("/providers/") + len("/providers/") :].strip("/").split("/")
    resource_type = "/".join([tail[0], *tail[1::2]]) if len(tail) > 1 else tail[0]
    return tail[-1], resource_type, tail[0].lower()


def _page(page: int, payload: object) -> tuple[str, str, list[dict]]:
    """(scope, basis, parsed rows) of one page-day."""
    if not isinstance(payload, dict) or not isinstance(payload.get("request"), dict):
        raise _fail(page, "record", "field request is missing")
    request = payload["request"]
    basis = _BASIS.get(str(request.get("type", "")).lower())
    if basis is None:
        raise _fail(
            page, "request", f"field type is {request.get('type')!r}, not ActualCost/AmortizedCost/Usage"
        )
    if not request.get("scope"):
        raise _fail(page, "request", "field scope is missing")
    scope = "/" + str(request["scope"]).strip("/")
    properties = (payload.get("response") or {}).get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("columns"), list):
        raise _fail(page, "response", "field properties.columns is missing")
    names = [str(c.get("name")) for c in properties["columns"]]
    lower = [n.lower() for n in names]
    cost_name = next((c for c in COST_COLUMNS if c.lower() in lower), None)
    if cost_name is None:
        raise _fail(page, "response", f"no cost column (one of {', '.join(COST_COLUMNS)}) in columns {names}")
    if "usagedate" not in lower:
        raise _fail(
            page, "response", f"column UsageDate is missing (a total or monthly query?) in columns {names}"
        )
    usd_only = cost_name.endswith("USD")
    if not usd_only and "currency" not in lower:
        raise _fail(page, "response", f"column Currency is missing in columns {names}")
    skip = {c.lower() for c in COST_COLUMNS} | {"usagedate", "currency"}
    dims = [(n, i) for i, n in enumerate(names) if n.lower() not in skip]
    parsed = []
    for r, row in enumerate(properties.get("rows") or []):
        where = f"row {r}"
        if not isinstance(row, list) or len(row) != len(names):
            raise _fail(
                page,
                where,
                f"has {len(row) if isinstance(row, list) else row!r} values for {len(names)} columns",
            )
        currency = "USD" if usd_only else str(row[lower.index("currency")])
        if not _CURRENCY.match(currency):
            raise _fail(page, f"{where}, field Currency", f"not an ISO 4217 code: {currency!r}")
        parsed.append({
            "day": _usage_date(row[lower.index("usagedate")], page, f"{where}, field UsageDate"),
            "cost": _decimal(row[lower.index(cost_name.lower())], page, f"{where}, field {cost_name}"),
            "currency": currency,
            "dims": {n: "" if row[i] is None else str(row[i]) for n, i in dims},
        })  # fmt: skip
    return scope, basis, parsed


def _dim(dims: dict[str, str], *names: str) -> str | None:
    wanted = {n.lower() for n in names}
    return next((v for k, v in dims.items() if k.lower() in wanted and v), None)


def _focus_row(
    day: date, scope: str, currency: str, dims: dict[str, str], billing_account_id: str | None
) -> dict:
    resource_id = _dim(dims, "ResourceId")
    name, resource_type, namespace = _resource_parts(resource_id)
    group = _RESOURCE_GROUP.search(resource_id or "")
    subscription = _SUBSCRIPTION.search(scope) or _SUBSCRIPTION.search(resource_id or "")
    sub_id = subscription.group(1) if subscription else _dim(dims, "SubscriptionId")
    account = _BILLING_ACCOUNT.search(scope)
    service = _dim(dims, "ServiceName") or UNKNOWN_SERVICE
    charge_type = _dim(dims, "ChargeType")
    if charge_type:
        category = _CHARGE_TYPES.get(charge_type.lower(), "Adjustment")
    else:
        category = "Purchase" if namespace in _PURCHASE_NAMESPACES else "Usage"
    tag_key = _dim(dims, "TagKey")
    location = _dim(dims, "ResourceLocation")
    start = datetime(day.year, day.month, day.day)
    month = datetime(day.year, day.month, 1)
    return {
        "BillingAccountId": billing_account_id or (account.group(1) if account else sub_id) or scope,
        "BillingCurrency": currency,
        "BillingPeriodStart": month,
        "BillingPeriodEnd": (month + timedelta(days=32)).replace(day=1),
        "ChargePeriodStart": start,
        "ChargePeriodEnd": start + timedelta(days=1),
        "ChargeCategory": category,
        "ServiceName": service,
        "ServiceCategory": SERVICE_CATEGORIES.get(service)
        or NAMESPACE_CATEGORIES.get(namespace or "", "Other"),
        "SubAccountId": sub_id,
        "SubAccountType": "Subscription" if sub_id else None,
        "ResourceId": resource_id,
        "ResourceName": name,
        "ResourceType": _dim(dims, "ResourceType") or resource_type,
        "RegionName": location,
        "RegionId": location.lower().replace(" ", "") if location else None,
        "Tags": tags_json({tag_key: _dim(dims, "TagValue") or ""}) if tag_key else None,
        "x_ResourceGroupName": group.group(1) if group else _dim(dims, "ResourceGroupName", "ResourceGroup"),
        "x_ChargeDate": day,
    }


def _line_key(day: date, scope: str, dims: dict[str, str]) -> tuple:
    named = ("resourceid", "servicename", "tagkey", "tagvalue")
    others = sorted(f"{k}={v}" for k, v in dims.items() if k.lower() not in named)
    return (day, scope, *(_dim(dims, n) or "" for n in named), *others)


@raises_normalization_error(SOURCE)
def normalize_cost_query(
    payloads: list[dict], ingested_at: datetime, *, billing_account_id: str | None = None
) -> pl.DataFrame:
    """FOCUS rows for a window's Query API page-days; costs may be float, int, Decimal or str."""
    bases: dict[str, set[str]] = {}
    joined: dict[tuple, dict] = {}
    versions: dict[str, str] = {}
    for page, payload in enumerate(payloads):
        scope, basis, rows = _page(page, payload)
        bases.setdefault(scope, set()).add(basis)
        versions.setdefault(scope, str(payload["request"].get("api_version") or "query"))
        for row in rows:
            dims_key = tuple(sorted((k.lower(), v) for k, v in row["dims"].items()))
            entry = joined.setdefault((row["day"], scope, row["currency"], dims_key),
                                      {"dims": row["dims"], "actual": Decimal(0), "amortized": Decimal(0)})  # fmt: skip
            entry[basis] += row["cost"]  # a group split over two rows is still one group
    records, keys = [], []
    for (day, scope, currency, _), entry in joined.items():
        actual = entry["actual"] if "actual" in bases[scope] else entry["amortized"]
        amortized = entry["amortized"] if "amortized" in bases[scope] else entry["actual"]
        row = _focus_row(day, scope, currency, entry["dims"], billing_account_id)
        row.update(BilledCost=actual, EffectiveCost=amortized, ListCost=amortized, ContractedCost=amortized,
                   x_ExportVersion=versions[scope])  # fmt: skip
        records.append(row)
        keys.append(_line_key(day, scope, entry["dims"]))
    moment = ingested_at.astimezone(UTC).replace(tzinfo=None) if ingested_at.tzinfo else ingested_at
    constants = {
        "ProviderName": PROVIDER, "PublisherName": PROVIDER, "InvoiceIssuerName": PROVIDER,
        "ServiceProviderName": PROVIDER, "HostProviderName": PROVIDER,
        "x_SourceSystem": SOURCE, "x_IngestedAt": moment,
    }  # fmt: skip
    columns = {name: [row[name] for row in records] for name in (records[0] if records else {})}
    columns.update({name: [value] * len(records) for name, value in constants.items()})
    columns["x_LineId"] = line_ids(SOURCE, keys)
    frame = pl.DataFrame({n: pl.Series(n, v, dtype=POLARS_SCHEMA[n]) for n, v in columns.items()})
    return conform(frame, SOURCE)
