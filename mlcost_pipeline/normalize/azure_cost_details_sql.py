"""Azure cost-details exports (ActualCost, AmortizedCost, Usage) -> FOCUS 1.2 columns, in one DuckDB SELECT.

Source: Cost Management cost-details files of any agreement and age (azure_cost_details_columns). Grain: one
FOCUS row per file row kept. Key: the FOCUS reader hashes ChargeDescription (ProductName), ResourceId, SkuId
(ProductId), Tags, CommitmentDiscountId, PricingCategory, RegionId and the day, which tell the rows of one
file apart (Microsoft's cost-details unique-record fields: resource, meter, product, tags, day, location).

Microsoft's recipe (microsoft/finops-toolkit ConvertTo-FinOpsSchema.ps1 and docs-mslearn/focus/convert.md):
- AZURE_AMORTIZED: every row; EffectiveCost = the cost; BilledCost 0 on commitment-covered usage (PricingModel
  Reservation/SavingsPlan, or a reservation id in schemas before PricingModel) and on UnusedReservation /
  UnusedSavingsPlan rows: that money is billed by the commitment's purchase.
- AZURE_ACTUAL: BilledCost = the cost; EffectiveCost 0 on commitment Purchase and Refund rows (amortized into
  usage). On `options.paired_days` (an amortized export of the scope is read too) only those commitment
  purchases and refunds are kept: every other actual row is in the amortized export already.
- AZURE_USAGE (and an unclassified AZURE_COST_DETAILS file): every row, BilledCost = EffectiveCost = the cost.
Where a value does not convert (a day that is neither MM/DD/YYYY nor ISO, a cost that is not a number) the
source text is passed through, so the reader's check names the file, row and column.
"""

from __future__ import annotations

from pathlib import Path

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.azure_cost_details_columns import (
    ZERO_GUID,
    Found,
    find,
    lookup_joins,
    matches,
    normalized,
    number,
    q,
    source,
)
from mlcost_pipeline.normalize.export_datasets import Converted, ConvertOptions

__all__ = ["classify", "convert", "matches"]

LOOKUPS = Path(__file__).parent / "lookups"
LOOKUP_FILES = {"services": "azure_services.csv", "regions": "azure_regions.csv",
                "units": "azure_pricing_units.csv", "types": "azure_resource_types.csv"}  # fmt: skip
_TS = "'%Y-%m-%dT%H:%M:%SZ'"
_MAX = "1e13"  # a product beyond this would overflow DECIMAL(38,24) before the cast back to DECIMAL(38,12)
_CATEGORY = ("CASE WHEN __ct IN ('usage', 'unusedreservation', 'unusedsavingsplan') THEN 'Usage' "
             "WHEN __ct IN ('purchase', 'refund') THEN 'Purchase' WHEN __ct = 'tax' THEN 'Tax' "
             "WHEN __ct = 'credit' THEN 'Credit' ELSE 'Adjustment' END")
_SUB = f"__subscription <> '{ZERO_GUID}'"  # old exports write the zero GUID where new ones leave it empty
_COMMITMENT_ID = "coalesce(__benefit_id, __reservation_id)"
_SPEND = "(lower(__benefit_id) LIKE '%/microsoft.billingbenefits/%' OR coalesce(__pm = 'savingsplan', false))"
# The ARM type of a resource id: the provider, then every type segment that is followed by a name.
_ARM_TYPE = ("NULLIF(array_to_string(list_filter(__parts, "
             "lambda x, i: i = 1 OR (i % 2 = 0 AND i < len(__parts))), '/'), '')")
_NUMBERS = ("__quantity", "__unit_price", "__payg_price", "__exchange_rate")
_PARTS = ("CASE WHEN contains(lower(__resource_id), '/providers/') THEN "  # split, not a regex: 4x faster
          "string_split(rtrim(list_last(string_split(lower(__resource_id), '/providers/')), '/'), '/') END")


def _ts(d: str, raw: str, plus: str = "") -> str:
    """ISO UTC text of a parsed day (plus an interval), else the source text for the reader to refuse."""
    value = f"CAST({d} AS TIMESTAMP){' + ' + plus if plus else ''}"
    return f"CASE WHEN {d} IS NOT NULL THEN strftime({value}, {_TS}) ELSE {raw} END"


def _product(*texts: str) -> str:
    """Text of the exact product of numbers given as `__<fact>` text (parsed once, as `__<fact>_n`, in
    convert's inner relation); a factor that is not a number passes through as it is."""
    nums = [f"{t}_n" if t in _NUMBERS else number(t) for t in texts]
    bad = " ".join(f"WHEN {t} IS NOT NULL AND {n} IS NULL THEN {t}" for t, n in zip(texts, nums, strict=True))
    value, guard = nums[0], []
    for n in nums[1:]:
        guard.append(f"abs(CAST({value} AS DOUBLE) * CAST({n} AS DOUBLE)) < {_MAX}")
        value = f"CAST({value} * {n} AS DECIMAL(38,12))"
    return f"CASE {bad} WHEN {' AND '.join(guard)} THEN CAST({value} AS VARCHAR) END"


def _costs(dataset: str) -> tuple[str, str]:
    zero_billed = "__covered OR __unused" if dataset == ds.AZURE_AMORTIZED else "false"
    zero_effective = "__commitment_purchase" if dataset == ds.AZURE_ACTUAL else "false"
    return (f"CASE WHEN {zero_billed} THEN '0' ELSE __cost END",
            f"CASE WHEN {zero_effective} THEN '0' ELSE __cost END")


def _billing_account(found: Found) -> list[str]:
    """EA: the billing account; MCA (its account id holds ':'): the billing profile (convert.md)."""
    if "account_id" not in found and "profile_id" not in found:
        if "subscription" in found and "enrollment_account" not in found:
            # Pay-as-you-go: the subscription is the billing profile (Microsoft's BillingProfileId doc).
            return [f"CASE WHEN {_SUB} THEN __subscription END AS BillingAccountId",
                    "'Subscription' AS BillingAccountType"]
        return []  # 2019 EA schemas: the reader's default (the export's scope) or its missing-column error
    if "account_id" not in found:
        mca = "true"
    else:
        mca = "coalesce(contains(__account_id, ':'), false)" if "profile_id" in found else "false"
    return [
        f"CASE WHEN {mca} THEN coalesce(__profile_id, __account_id) "
        "ELSE coalesce(__account_id, __profile_id) END AS BillingAccountId",
        f"CASE WHEN {mca} THEN coalesce(__profile_name, __account_name) ELSE __account_name END"
        " AS BillingAccountName",
        f"CASE WHEN {mca} THEN 'Billing Profile' ELSE 'Billing Account' END AS BillingAccountType",
    ]


def _periods(has: set[str]) -> list[str]:
    if "period_start" in has and "period_end" in has:  # Azure's end day is inclusive; FOCUS's is exclusive
        return [f"{_ts('__period_start_d', '__period_start')} AS BillingPeriodStart",
                f"{_ts('__period_end_d', '__period_end', 'INTERVAL 1 DAY')} AS BillingPeriodEnd"]
    return [f"strftime(date_trunc('month', __day_d), {_TS}) AS BillingPeriodStart",  # the charge's month
            f"strftime(date_trunc('month', __day_d) + INTERVAL 1 MONTH, {_TS}) AS BillingPeriodEnd"]


def _prices(has: set[str], dataset: str, effective: str) -> list[str]:
    rate = ("__exchange_rate",) if "exchange_rate" in has else ()  # MCA prices are in the pricing currency
    cols = []
    # A row without a price or quantity (tax, rounding, some purchases) has no list or negotiated price to
    # apply: its list and contracted cost are what it costs (FOCUS: a credit's ListCost is its BilledCost).
    if "payg_cost" in has:
        cols.append(f"coalesce(__payg_cost, {effective}) AS ListCost")
    elif {"payg_price", "quantity"} <= has:
        cols.append(f"coalesce({_product('__payg_price', '__quantity', *rate)}, {effective}) AS ListCost")
    if {"unit_price", "quantity"} <= has:
        contracted = _product("__unit_price", "__quantity", *rate)
        cols.append(f"coalesce({contracted}, {effective}) AS ContractedCost")
    for fact, column in (("payg_price", "ListUnitPrice"), ("unit_price", "ContractedUnitPrice")):
        if fact in has:
            cols.append(f"{_product('__' + fact, *rate) if rate else '__' + fact} AS {column}")
    if "currency" in has:  # else the reader's default (a constant for the file) or its missing-column error
        cols.append("upper(__currency) AS BillingCurrency")
    cols.append("coalesce(upper(__pricing_currency), upper(__currency)) AS PricingCurrency")
    if "pricing_cost" in has:
        zero = "__commitment_purchase" if dataset == ds.AZURE_ACTUAL else "false"
        cols.append(f"CASE WHEN {zero} THEN '0' ELSE __pricing_cost END AS PricingCurrencyEffectiveCost")
    if rate:  # the contract's rate is 1 USD = rate billing currency: only a USD pricing currency gives it
        usd = "upper(__pricing_currency) = 'USD'"
        cols.append(f"CASE WHEN {usd} THEN __exchange_rate END AS x_CurrencyConversionRate")
    return cols


def _columns(found: Found, dataset: str) -> list[str]:
    has = set(found)
    billed, effective = _costs(dataset)
    used = f"({_CATEGORY}) = 'Usage' AND NOT __unused"  # FOCUS: no consumed quantity on unused commitment
    block = "coalesce(u.bs, 1)"
    consumed = _product("__quantity", f"CAST({block} AS VARCHAR)")
    # MCA has no ResourceName: the last segment of the resource id (convert.md)
    last = "NULLIF(list_last(string_split(rtrim(__resource_id, '/'), '/')), '')"
    name = "__resource_name" if "resource_name" in has else last
    infer = "" if "pricing_model" in has else (  # no PricingModel column before 2020
        f"WHEN __commitment THEN 'Committed' WHEN ({_CATEGORY}) = 'Usage' THEN 'Standard' ")
    return [
        f"{billed} AS BilledCost", f"{effective} AS EffectiveCost", *_billing_account(found), *_periods(has),
        f"{_ts('__day_d', '__day')} AS ChargePeriodStart",
        f"{_ts('__day_d', '__day', 'INTERVAL 1 DAY')} AS ChargePeriodEnd",
        f"{_CATEGORY} AS ChargeCategory", "CASE WHEN __ct = 'refund' THEN 'Correction' END AS ChargeClass",
        "coalesce(__product, NULLIF(concat_ws(' - ', __meter_category, __meter_subcategory, __meter_name), "
        "'')) AS ChargeDescription",
        "CASE replace(lower(__frequency), '-', '') WHEN 'onetime' THEN 'One-Time' WHEN 'recurring' THEN "
        "'Recurring' WHEN 'usagebased' THEN 'Usage-Based' ELSE CASE WHEN __frequency IS NULL AND "
        f"({_CATEGORY}) = 'Usage' THEN 'Usage-Based' END END AS ChargeFrequency",
        f"{_COMMITMENT_ID} AS CommitmentDiscountId",
        "coalesce(__benefit_name, __reservation_name) AS CommitmentDiscountName",
        f"CASE WHEN {_COMMITMENT_ID} IS NULL THEN NULL WHEN {_SPEND} THEN 'Spend' ELSE 'Usage' END"
        " AS CommitmentDiscountCategory",
        f"CASE WHEN {_COMMITMENT_ID} IS NULL THEN NULL WHEN {_SPEND} THEN 'Savings Plan' "
        "ELSE 'Reservation' END AS CommitmentDiscountType",
        "CASE WHEN __unused THEN 'Unused' WHEN __covered THEN 'Used' END AS CommitmentDiscountStatus",
        # Azure counts Quantity in UnitOfMeasure blocks (10K, 100 Hours): consumed = blocks x block size.
        f"CASE WHEN {used} THEN {consumed} END AS ConsumedQuantity",
        f"CASE WHEN {used} THEN coalesce(u.du, __unit) END AS ConsumedUnit",
        "__quantity AS PricingQuantity",
        f"CASE WHEN u.du IS NULL THEN __unit WHEN {block} = 1 THEN u.du "
        f"ELSE CAST({block} AS VARCHAR) || ' ' || u.du END AS PricingUnit",
        "CASE WHEN __pm = 'ondemand' THEN 'Standard' WHEN __pm = 'spot' THEN 'Dynamic' "
        f"WHEN __pm IN ('reservation', 'savingsplan') THEN 'Committed' {infer}END AS PricingCategory",
        "'Microsoft' AS ProviderName",
        "coalesce(__publisher, sp.PublisherName, st.PublisherName, 'Microsoft') AS PublisherName",
        "coalesce(__partner, 'Microsoft') AS InvoiceIssuerName", "__invoice_id AS InvoiceId",
        "coalesce(reg.region_id, NULLIF(lower(replace(__location, ' ', '')), '')) AS RegionId",
        "coalesce(reg.region_name, __location) AS RegionName", "__zone AS AvailabilityZone",
        "__resource_id AS ResourceId", "coalesce(rtype.display, __rt) AS ResourceType",
        f"{name} AS ResourceName",
        # Purchases, unused commitments, tax and rounding rows name no service; their product names what they are.
        "coalesce(sp.ServiceName, st.ServiceName, __meter_category, __consumed_service, __product) AS ServiceName",
        "coalesce(sp.ServiceCategory, st.ServiceCategory, 'Other') AS ServiceCategory",
        "coalesce(sp.ServiceSubcategory, st.ServiceSubcategory) AS ServiceSubcategory",
        "__product_id AS SkuId", "__meter_name AS SkuMeter",
        f"CASE WHEN {_SUB} THEN __subscription END AS SubAccountId",
        f"CASE WHEN {_SUB} THEN __subscription_name END AS SubAccountName",
        f"CASE WHEN {_SUB} THEN 'Subscription' END AS SubAccountType",
        "CASE WHEN __tags IS NULL OR __tags LIKE '{%' THEN __tags ELSE '{' || __tags || '}' END AS Tags",
        "coalesce(__resource_group, NULLIF(regexp_extract(__resource_id, '(?i)/resourcegroups/([^/]+)', 1), "
        "'')) AS x_ResourceGroupName",
        *_prices(has, dataset, effective), "__row",
    ]


_SOURCES = {
    "BilledCost": ("cost",), "EffectiveCost": ("cost",), "BillingCurrency": ("currency",),
    "ChargePeriodStart": ("day",), "ChargePeriodEnd": ("day",), "BillingPeriodStart": ("period_start",),
    "BillingPeriodEnd": ("period_end",), "ChargeCategory": ("charge_type",),
    "SubAccountId": ("subscription",), "Tags": ("tags",), "ResourceId": ("resource_id",),
    "PricingQuantity": ("quantity",), "ConsumedQuantity": ("quantity",),
    "ListCost": ("payg_cost", "payg_price"),
    "ContractedCost": ("unit_price",), "RegionId": ("location",), "ServiceName": ("consumed_service",),
    "x_CurrencyConversionRate": ("exchange_rate",), "PricingCurrencyEffectiveCost": ("pricing_cost",),
}  # fmt: skip


def convert(scan: str, columns: list[tuple[str, str]], options: ConvertOptions, *, dataset: str) -> Converted:
    """The FOCUS SELECT over `scan` for one cost-details file of `dataset` (an ds.AZURE_DATASETS kind)."""
    if dataset not in ds.AZURE_DATASETS:
        raise ValueError(f"not an Azure cost-details dataset: {dataset!r}")
    found = find(columns)
    params: dict[str, object] = {f"{dataset}_{k}": str(LOOKUPS / f) for k, f in LOOKUP_FILES.items()}
    where = ""
    if dataset == ds.AZURE_ACTUAL and options.paired_days:
        name = f"{dataset}_paired_days"
        params[name] = list(options.paired_days)
        # An undated row stays, so that the reader refuses it by name rather than it vanishing here.
        where = (f"WHERE __day_d IS NULL OR NOT list_contains(CAST(${name} AS DATE[]), __day_d) "
                 "OR __commitment_purchase")
    parsed = ", ".join(f"{number(n)} AS {n}_n" for n in _NUMBERS)
    inner = (f"(SELECT *, coalesce(lower(__resource_type), {_ARM_TYPE}) AS __rt "
             f"FROM (SELECT *, {_PARTS} AS __parts, {parsed} FROM {normalized(scan, found)}))")
    select = ", ".join(_output(c) for c in _columns(found, dataset))
    sql = f"SELECT {select} FROM {inner} AS a{lookup_joins(dataset, LOOKUP_FILES)} {where}"  # noqa: S608
    source_of = {col: source(found, *facts) for col, facts in _SOURCES.items() if source(found, *facts)}
    account = source(found, "account_id", "profile_id") or source(found, "subscription")
    if account:
        source_of["BillingAccountId"] = account
    return Converted(sql=sql, params=params, source_of=source_of)


def _output(column_sql: str) -> str:
    """Quote the output name (FOCUS PascalCase) so that DuckDB keeps its case."""
    expr, sep, name = column_sql.rpartition(" AS ")
    return column_sql if not sep or name == "__row" else f"{expr} AS {q(name)}"


def classify(con, scan: str, columns: list[tuple[str, str]], params: dict) -> tuple[str | None, str]:
    """(AZURE_AMORTIZED | AZURE_ACTUAL | None, why) for a bare cost-details file, from one aggregate query.

    Amortized: commitment-covered usage with a cost, or unused-commitment rows. Actual: commitment purchases
    or refunds, or commitment-covered usage at cost 0. None when both show (a file we cannot trust either way)
    or neither (no commitment rows: the actual and the amortized export are then the same rows).
    """
    cost = number("__cost")
    sql = (f"SELECT count(*) FILTER (WHERE __covered AND {cost} <> 0), count(*) FILTER (WHERE __unused), "
           f"count(*) FILTER (WHERE __commitment_purchase), count(*) FILTER (WHERE __covered AND {cost} = 0) "
           f"FROM {normalized(scan, find(columns))}")  # noqa: S608 (identifiers only)
    covered, unused, purchases, covered_free = con.execute(sql, params).fetchall()[0]
    seen = (f"{covered} commitment-covered usage row(s) with a cost, {unused} unused-commitment row(s), "
            f"{purchases} commitment purchase/refund row(s), {covered_free} covered usage row(s) at cost 0")
    amortized = covered + unused > 0
    if amortized and purchases:
        return None, f"rows of both kinds: {seen}"
    if amortized:
        return ds.AZURE_AMORTIZED, seen
    if purchases or covered_free:
        return ds.AZURE_ACTUAL, seen
    return None, "no commitment rows (an actual and an amortized export then hold the same rows)"
