"""Azure cost-details columns across agreements and ages, the row facts the converter decides on, and lookups.

Source: Cost Management cost-details files (exports, portal downloads, Cost Details API) of every schema
Microsoft documents: EA PascalCase (`CostInBillingCurrency`, `BillingCurrencyCode`; newer EA `Cost`,
`BillingCurrency`), MCA camelCase (`costInBillingCurrency`, `billingCurrency`), older EA and pay-as-you-go
(`PreTaxCost`, `UsageDateTime`, `SubscriptionGuid`, `InstanceId`, `UsageQuantity`, `Currency`). Grain: one row
per file row. Names match case-insensitively; where a schema has several candidates for one fact, the first
non-empty wins.

`normalized(scan, found)` is the inner relation both the converter and the classifier read: the file's values
as trimmed text, the days parsed (`MM/DD/YYYY` or ISO), and the commitment facts ConvertTo-FinOpsSchema
decides on (microsoft/finops-toolkit, src/powershell/Public/ConvertTo-FinOpsSchema.ps1 before c9ff19cc).
`lookup_joins` joins the toolkit's open data (lookups/azure_*.csv), whose paths are bound as parameters.
"""

from __future__ import annotations

# fact -> the file columns that carry it, in order of preference (Microsoft's dataset schema pages).
VARIANTS: dict[str, tuple[str, ...]] = {
    "cost": ("CostInBillingCurrency", "Cost", "PreTaxCost"),
    "day": ("Date", "UsageDateTime", "UsageDate"),
    "currency": ("BillingCurrencyCode", "BillingCurrency", "Currency"),
    "account_id": ("BillingAccountId",),
    "account_name": ("BillingAccountName",),
    "profile_id": ("BillingProfileId",),
    "profile_name": ("BillingProfileName",),
    "period_start": ("BillingPeriodStartDate",),
    "period_end": ("BillingPeriodEndDate",),
    # Old EA files carry both: SubscriptionId there is a number, SubscriptionGuid the subscription.
    "subscription": ("SubscriptionGuid", "SubscriptionId"),
    "subscription_name": ("SubscriptionName",),
    "enrollment_account": ("AccountOwnerId", "AccountName", "DepartmentName", "InvoiceSectionName"),  # EA
    "charge_type": ("ChargeType",),
    "pricing_model": ("PricingModel",),
    "frequency": ("Frequency",),
    "benefit_id": ("BenefitId",),
    "benefit_name": ("BenefitName",),
    "reservation_id": ("ReservationId",),
    "reservation_name": ("ReservationName",),
    "consumed_service": ("ConsumedService",),
    "resource_id": ("ResourceId", "InstanceId"),
    "resource_name": ("ResourceName",),
    "resource_type": ("ResourceType",),
    "resource_group": ("ResourceGroupName", "ResourceGroup"),
    "location": ("ResourceLocation", "Location", "ResourceLocationNormalized"),
    "quantity": ("Quantity", "UsageQuantity", "ConsumedQuantity"),
    "unit": ("UnitOfMeasure",),
    "unit_price": ("UnitPrice",),
    "payg_price": ("PayGPrice",),
    "payg_cost": ("PaygCostInBillingCurrency",),
    "pricing_cost": ("CostInPricingCurrency",),
    "pricing_currency": ("PricingCurrencyCode", "PricingCurrency"),
    "exchange_rate": ("ExchangeRatePricingToBilling",),
    "product": ("ProductName", "Product"),
    "product_id": ("ProductId",),
    "meter_name": ("MeterName",),
    "meter_category": ("MeterCategory",),
    "meter_subcategory": ("MeterSubCategory",),
    "publisher": ("PublisherName",),
    "partner": ("PartnerName",),
    "invoice_id": ("InvoiceId",),
    "zone": ("AvailabilityZone",),
    "tags": ("Tags",),
}
# A file is cost details when it has a cost, a day and a meter or service column, and is not FOCUS.
_METER_MARKERS = ("meterid", "metercategory", "metername", "consumedservice")
_FOCUS_MARKERS = ("chargeperiodstart", "billedcost", "effectivecost")

_TRIMMED = {"charge_type", "pricing_model", "frequency", "currency", "pricing_currency", "subscription",
            "unit", "location", "consumed_service", "resource_type", "tags"}
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
COMMITMENT_MODELS = ("reservation", "savingsplan")  # PricingModel lowercased, spaces removed
UNUSED_TYPES = ("unusedreservation", "unusedsavingsplan")  # ChargeType lowercased
ISO_DAY = r"^\d{4}-\d{2}-\d{2}([T ].*)?$"

Found = dict[str, list[tuple[str, str]]]  # fact -> [(file column, DuckDB type)] present in the file


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def find(columns: list[tuple[str, str]]) -> Found:
    by_lower: dict[str, tuple[str, str]] = {}
    for name, typ in columns:
        if name != "__row":
            by_lower.setdefault(name.lower(), (name, typ))
    found: Found = {}
    for fact, names in VARIANTS.items():
        present = [by_lower[n.lower()] for n in names if n.lower() in by_lower]
        if present:
            found[fact] = present
    return found


def matches(columns: list[str]) -> bool:
    lower = {c.lower() for c in columns}
    if lower & set(_FOCUS_MARKERS):
        return False
    has = {fact: any(c.lower() in lower for c in VARIANTS[fact]) for fact in ("cost", "day")}
    return has["cost"] and has["day"] and bool(lower & set(_METER_MARKERS))


def source(found: Found, *facts: str) -> str:
    """The file columns behind `facts`, for error messages ('Cost', 'Date, UsageDateTime')."""
    return ", ".join(name for f in facts for name, _ in found.get(f, []))


def _text(name: str, typ: str, trim: bool = False) -> str:
    if typ in ("VARCHAR", "JSON"):
        return f"NULLIF(trim({q(name)}), '')" if trim else f"NULLIF({q(name)}, '')"
    return f"CAST({q(name)} AS VARCHAR)"


def text(found: Found, fact: str) -> str:
    """SQL: the fact's value as text (trimmed where it is compared), NULL when empty or absent."""
    # Trimming every column costs 3-4x the scan; values are compared or parsed only for these facts.
    parts = [_text(n, t, fact in _TRIMMED) for n, t in found.get(fact, [])]
    if not parts:
        return "CAST(NULL AS VARCHAR)"
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def _day(name: str, typ: str) -> str:
    col = q(name)
    if typ == "DATE":
        return col
    if typ.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"CAST(timezone('UTC', {col}) AS DATE)"
    if typ.startswith("TIMESTAMP"):
        return f"CAST({col} AS DATE)"
    t = _text(name, typ, trim=True)
    # Azure writes a day as MM/DD/YYYY or ISO (a midnight-UTC time part is dropped); nothing else is guessed.
    return (f"coalesce(CAST(try_strptime({t}, '%m/%d/%Y') AS DATE), "
            f"CASE WHEN regexp_matches({t}, '{ISO_DAY}') THEN TRY_CAST(left({t}, 10) AS DATE) END)")


def day(found: Found, fact: str) -> str:
    """SQL: the fact's value as a DATE, NULL when empty, absent or neither MM/DD/YYYY nor ISO."""
    parts = [_day(n, t) for n, t in found.get(fact, [])]
    if not parts:
        return "CAST(NULL AS DATE)"
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def number(expr: str) -> str:
    return f"TRY_CAST({expr} AS DECIMAL(38,12))"


def normalized(scan: str, found: Found) -> str:
    """The inner relation: `__<fact>` text, `__<fact>_d` days, the commitment flags, `__row`."""
    cols = [f"{text(found, fact)} AS {q('__' + fact)}" for fact in VARIANTS]
    cols += [f"{day(found, f)} AS {q('__' + f + '_d')}" for f in ("day", "period_start", "period_end")]
    values = f"(SELECT {', '.join(cols)}, __row FROM {scan})"  # noqa: S608 (identifiers only)
    if "pricing_model" in found:
        committed = f"coalesce(list_contains({list(COMMITMENT_MODELS)}, __pm), false)"
    else:  # schemas before PricingModel (2019): a reservation row names its reservation
        committed = "(__benefit_id IS NOT NULL OR __reservation_id IS NOT NULL)"
    ct = "lower(__charge_type)" if "charge_type" in found else "'usage'"
    purchase = "coalesce(__ct IN ('purchase', 'refund'), false)"
    facts = (f"SELECT *, {committed} OR __unused AS __commitment, "
             f"{committed} AND coalesce(__ct = 'usage', false) AS __covered, "
             f"({committed} OR __unused) AND {purchase} AS __commitment_purchase "
             f"FROM (SELECT *, coalesce(list_contains({list(UNUSED_TYPES)}, __ct), false) AS __unused "
             f"FROM (SELECT *, {ct} AS __ct, replace(lower(__pricing_model), ' ', '') AS __pm "
             f"FROM {values}))")
    return f"({facts})"


def lookup_joins(dataset: str, names: dict[str, str]) -> str:
    """LEFT JOINs of the finops-toolkit lookups onto relation `a` (its `__location`, `__unit`,
    `__consumed_service` and `__rt`, the ARM resource type); their paths bind as `$<dataset>_<name>`."""
    p = {k: f"read_csv(${dataset}_{k}, header = true, all_varchar = true)" for k in names}
    by_service = ", ".join(f"arg_min({c}, lower(ConsumedService)) AS {c}"
                           for c in ("ServiceName", "ServiceCategory", "ServiceSubcategory", "PublisherName"))
    return f"""
LEFT JOIN (SELECT lower(trim(OriginalValue)) AS k, min(RegionId) AS region_id, min(RegionName) AS region_name
           FROM {p["regions"]} GROUP BY 1) AS reg ON reg.k = lower(a.__location)
LEFT JOIN (SELECT trim(UnitOfMeasure) AS k,
                  arg_min(TRY_CAST(PricingBlockSize AS BIGINT), UnitOfMeasure) AS bs,
                  arg_min(DistinctUnits, UnitOfMeasure) AS du FROM {p["units"]} GROUP BY 1) AS u
       ON u.k = a.__unit
LEFT JOIN (SELECT lower(ConsumedService) AS cs, lower(ResourceType) AS rt, ServiceName, ServiceCategory,
                  ServiceSubcategory, PublisherName FROM {p["services"]}) AS sp
       ON sp.cs = lower(a.__consumed_service) AND sp.rt = a.__rt
LEFT JOIN (SELECT lower(ResourceType) AS rt, {by_service} FROM {p["services"]} GROUP BY 1) AS st
       ON st.rt = a.__rt
LEFT JOIN (SELECT lower(ResourceType) AS rt, min(SingularDisplayName) AS display FROM {p["types"]} GROUP BY 1)
       AS rtype ON rtype.rt = a.__rt"""  # noqa: S608 (identifiers only)
