"""N FOCUS 1.2 line items for one UTC day as Parquet (zstd): a day of a multi-cloud organization's export.

Grain: one row per charge as the providers' FOCUS exports write them; columns: the 57 FOCUS 1.2 columns plus
three Microsoft FocusCost `x_` columns (x_ResourceGroupName, which the rules read, x_SkuMeterCategory,
x_InvoiceSectionName), 60 in all. The rows, in this order:
- about 92% hourly rows of a resource population: `HOURS` rows per resource, one per hour, tags constant per
  resource. Kinds: VMs 45%, disks 25%, load balancers 10%, databases 10%, dedicated GPU nodes 8% and the
  shared GPU clusters 2% (AWS p4d nodes in the research account, untagged; GCP A100 nodes in acme-shared-ml
  labelled `cluster=gpu-shared`, the GPU SKU billed in seconds; Azure NC A100 VMs in rg-shared-gpu: what the
  proportional_usage pools of rules/allocation.yaml select; resources 0-3 are such nodes, so every pool has
  charges at any size). Costs vary by hour (partial hours, load-balancer capacity units); 1 in 8 VMs on AWS
  and Azure is covered by a commitment (PricingCategory Committed, BilledCost 0, EffectiveCost amortized),
  1 in 10 GPU nodes runs on spot capacity (Dynamic);
- about 8% daily-grain rows: storage buckets, data transfer, marketplace, logging, one support line per
  provider and one tax line per sub account;
- 48 rows per commitment (2 per 500,000 rows; at least 2, 1 below 2,000 rows): hourly purchase fees
  (Purchase, EffectiveCost 0) and unused-commitment lines (Usage, Committed, CommitmentDiscountStatus Unused),
  as in the FOCUS 1.2 commitment examples.
Providers (AWS 7/16 of resources, Google Cloud 4/16 billed in EUR, Microsoft 3/16, Oracle 2/16), accounts,
regions, services and tags: bench/focus_catalog.py. A quarter of resources is untagged; tagged ones carry
`project`, `Project` or `proj` with the organization's value spellings. Everything is integer arithmetic on
the row number, so a size and a day always give the same bytes. Row groups of 122,880 rows.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb

from bench import focus_catalog as cat
from mlcost_pipeline.sources.sample.focus_export import FOCUS_12_COLUMNS

HOURS = 24
COMMITMENT_ROWS = 2 * HOURS
EXTRA_COLUMNS = ("x_ResourceGroupName", "x_SkuMeterCategory", "x_InvoiceSectionName")
MONEY = "DECIMAL(18,10)"
# The catalog's constants by name, formatted into the SQL below (integers of our own, never input values).
_N = {name: getattr(cat, name) for name in (
    "AWS", "GCP", "AZURE", "OCI", "SHARED", "SHARED_CORE", "GPU", "VM", "DISK", "LB", "DB", "STORAGE",
    "NETWORK", "MARKETPLACE", "PLATFORM", "SUPPORT", "TAX", "PURCHASE", "UNUSED", "TAG_SETS",
    "PLATFORM_ACCOUNT")}  # fmt: skip
_N |= {"HOURS": HOURS, "CROWS": COMMITMENT_ROWS, "MONEY": MONEY, "AWS_SHARED": cat.SHARED_ACCOUNT[cat.AWS],
       "GCP_SHARED": cat.SHARED_ACCOUNT[cat.GCP], "AZURE_SHARED": cat.SHARED_ACCOUNT[cat.AZURE]}  # fmt: skip

# Per row: segment (0 hourly, 1 daily, 2 commitment), item number x (resource, daily item, commitment), its
# hash u, hour h; then provider p, kind k (focus_catalog), sub account a, region g, tag set t, commitment cmt.
_LINES = """
WITH numbered AS (
    SELECT i, CASE WHEN i < $hourly THEN 0 WHEN i < $hourly + $daily THEN 1 ELSE 2 END AS seg
    FROM range($n) r(i)
), keyed AS (
    SELECT i, seg,
        CASE seg WHEN 0 THEN i // {HOURS} WHEN 1 THEN i - $hourly
             ELSE (i - $hourly - $daily) // {CROWS} END AS x,
        CASE seg WHEN 0 THEN i % {HOURS} WHEN 2 THEN (i - $hourly - $daily) % {HOURS} END AS h,
        seg = 2 AND (i - $hourly - $daily) % {CROWS} >= {HOURS} AS unused
    FROM numbered
), hashed AS (
    SELECT *, (x * 2654435761 + seg * 40503 + 12345) % 4294967296 AS u FROM keyed
), providers AS (
    -- resources 0-3 are shared GPU nodes (AWS, Azure, GCP's GPU SKU, GCP's core SKU): every pool has some
    SELECT *, CASE WHEN seg = 0 AND x < 4 THEN 0 ELSE (u // 16) % 100 END AS pick,
        CASE WHEN seg = 0 AND x < 4 THEN CASE x WHEN 0 THEN {AWS} WHEN 1 THEN {AZURE} ELSE {GCP} END
             WHEN seg = 2 THEN CASE WHEN x % 2 = 0 THEN {AWS} ELSE {AZURE} END
             WHEN seg = 1 AND x < 4 * $accounts THEN x // $accounts
             WHEN seg = 1 AND x < 4 * $accounts + 4 THEN x - 4 * $accounts
             WHEN u % 16 < 7 THEN {AWS} WHEN u % 16 < 11 THEN {GCP} WHEN u % 16 < 14 THEN {AZURE}
             ELSE {OCI} END AS p
    FROM hashed
), kinds AS (
    SELECT *, CASE seg
        WHEN 0 THEN CASE WHEN pick < 2 AND p <> {OCI} THEN
                              CASE WHEN p = {GCP} AND x % 2 = 1 THEN {SHARED_CORE} ELSE {SHARED} END
                         WHEN pick < 10 THEN {GPU} WHEN pick < 55 THEN {VM} WHEN pick < 80 THEN {DISK}
                         WHEN pick < 90 THEN {LB} ELSE {DB} END
        WHEN 1 THEN CASE WHEN x < 4 * $accounts THEN {TAX} WHEN x < 4 * $accounts + 4 THEN {SUPPORT}
                         WHEN x % 20 = 0 THEN {MARKETPLACE} WHEN x % 20 IN (1, 2) THEN {NETWORK}
                         WHEN x % 20 = 3 THEN {PLATFORM} ELSE {STORAGE} END
        ELSE CASE WHEN unused THEN {UNUSED} ELSE {PURCHASE} END END AS k
    FROM providers
), placed AS (
    SELECT *,
        CASE WHEN k IN ({SHARED}, {SHARED_CORE}) THEN
                  CASE p WHEN {AWS} THEN {AWS_SHARED} WHEN {GCP} THEN {GCP_SHARED} ELSE {AZURE_SHARED} END
             WHEN seg = 2 THEN CASE p WHEN {AWS} THEN {PLATFORM_ACCOUNT} ELSE 0 END
             WHEN k = {TAX} THEN x % $accounts WHEN k = {SUPPORT} THEN 0
             ELSE (u // 1600) % $accounts END AS a,
        CASE WHEN seg = 0 AND k NOT IN ({SHARED}, {SHARED_CORE}) OR k IN ({STORAGE}, {NETWORK})
             THEN (u // 7919) % 4 ELSE 0 END AS g,
        1 + (u // 997) % 8 AS size,
        seg = 0 AND k = {VM} AND (u // 3) % 8 = 0
            AND (p = {AWS} AND $aws_commitments > 0 OR p = {AZURE} AND $azure_commitments > 0) AS committed,
        seg = 0 AND k = {GPU} AND (u // 5) % 10 = 0 AS spot
    FROM kinds
), tagged AS (
    SELECT *,
        CASE WHEN k IN ({SHARED}, {SHARED_CORE}) THEN {TAG_SETS}
             WHEN k IN ({NETWORK}, {PLATFORM}, {SUPPORT}, {TAX}, {PURCHASE}, {UNUSED}) THEN NULL
             WHEN p = {AWS} AND a = {PLATFORM_ACCOUNT} THEN NULL
             WHEN (u // 64) % 4 = 3 THEN NULL
             ELSE (u // 256) % {TAG_SETS} END AS t,
        -- greatest(): DuckDB evaluates every CASE branch on a vector, and a modulo by 0 is an error
        CASE WHEN seg = 2 THEN x WHEN committed AND p = {AWS} THEN 2 * (x % greatest($aws_commitments, 1))
             WHEN committed THEN 2 * (x % greatest($azure_commitments, 1)) + 1 END AS cmt
    FROM placed
)
SELECT *,
    CAST(CASE WHEN seg = 2 THEN 1
              WHEN k = {DISK} THEN round(size * 128 / 730, 6)
              WHEN k = {LB} THEN 1 + ((h * 7 + x) % 10) * 0.25
              WHEN seg = 0 THEN CASE WHEN (h * 5 + x) % 8 = 0 THEN 0.5 ELSE 1 END
              WHEN k = {STORAGE} THEN round((100 + u % 5000) * 24 / 730, 6)
              WHEN k = {NETWORK} THEN 1 + u % 500
              WHEN k = {MARKETPLACE} THEN 1 + u % 10
              WHEN k = {PLATFORM} THEN 1 + u % 200 END AS DECIMAL(18,6)) AS q0
FROM tagged"""

_PRICED = """
SELECT l.*, c.* EXCLUDE (p, k), ac.SubAccountId, ac.SubAccountName, rg.RegionId, rg.RegionName,
    pr.* EXCLUDE (p), ts.Tags, ts.rg,
    CAST(l.q0 * c.mult AS DECIMAL(18,6)) AS qty,
    CAST(CAST(c.price AS {MONEY}) * CASE WHEN l.k IN ({VM}, {DISK}, {DB}) THEN l.size ELSE 1 END
         * CASE WHEN l.spot THEN 0.35 ELSE 1 END AS {MONEY}) AS list_price,
    CASE WHEN l.p = {GCP} AND l.seg = 0 THEN 0.95 ELSE 1 END AS contract,
    CAST(CASE WHEN l.k = {TAX} THEN 20.45 + (l.x * 37) % 100 WHEN l.k = {SUPPORT} THEN 100 + 25 * l.p
              WHEN l.seg = 2 THEN 8 + l.x % 5 END AS {MONEY}) AS amount,
    printf('%010x', l.x) AS hex
FROM lines l
JOIN kinds c ON c.p = l.p AND c.k = l.k
JOIN accounts ac ON ac.p = l.p AND ac.a = l.a
JOIN regions rg ON rg.p = l.p AND rg.g = l.g
JOIN providers pr ON pr.p = l.p
LEFT JOIN tag_sets ts ON ts.p = l.p AND ts.t = l.t"""

_COSTED = """
SELECT *, CAST(round(list_cost * contract, 10) AS {MONEY}) AS contracted_cost FROM (
    SELECT *, CAST(CASE WHEN amount IS NOT NULL THEN amount
                        ELSE round(CAST(qty AS DECIMAL(38,16)) * list_price, 10) END AS {MONEY}) AS list_cost
    FROM priced)"""

_EFFECTIVE = ("CAST(CASE WHEN k = {PURCHASE} THEN 0 "
              "WHEN k = {UNUSED} THEN round(amount * (1 + h % 4) / 10, 10) "
              "WHEN committed THEN round(contracted_cost * 0.6, 10) ELSE contracted_cost END AS {MONEY})")
_CMT_ID = ("CASE WHEN cmt % 2 = 0 THEN 'arn:aws:savingsplans::' || BillingAccountId || ':savingsplan/sp-' || "
           "lpad(CAST(cmt AS VARCHAR), 8, '0') "
           "ELSE '/providers/Microsoft.Capacity/reservationOrders/acme-ro-' || CAST(cmt AS VARCHAR) "
           "|| '/reservations/acme-ri-' || CAST(cmt AS VARCHAR) END")
_RG = "coalesce(rg, CASE WHEN k = {PLATFORM} THEN 'rg-platform' ELSE 'rg-ml-' || CAST(a AS VARCHAR) END)"
_OCI_NAME = ("CASE WHEN k = {STORAGE} AND Tags IS NULL AND a = {PLATFORM_ACCOUNT} THEN 'acme-oci-logs' "
             "ELSE 'aaaaacme' || hex END")
_ZONE = ("CASE WHEN seg = 0 AND k <> {LB} THEN CASE p "
         "WHEN {AWS} THEN RegionId || chr(CAST(97 + x % 3 AS INTEGER)) "
         "WHEN {GCP} THEN RegionId || '-' || chr(CAST(97 + x % 3 AS INTEGER)) "
         "WHEN {AZURE} THEN CAST(1 + x % 3 AS VARCHAR) ELSE upper(RegionId) || '-AD-1' END END")
_RESOURCE_ID = (
    "CASE WHEN seg = 2 THEN " + _CMT_ID + " WHEN rid_type IS NULL THEN NULL "
    "WHEN p = {AWS} AND k = {STORAGE} THEN 'arn:aws:s3:::acme-' || hex "
    "WHEN p = {AWS} THEN 'arn:aws:' || rid_service || ':' || RegionId || ':' || SubAccountId || ':' "
    "|| rid_type || hex "
    "WHEN p = {GCP} THEN '//' || rid_service || '.googleapis.com/projects/' || SubAccountId || '/' "
    "|| rid_type || hex "
    "WHEN p = {AZURE} THEN '/subscriptions/' || SubAccountId || '/resourceGroups/' || " + _RG + " "
    "|| '/providers/' || rid_service || '/' || rid_type || hex "
    "ELSE 'ocid1.' || rid_type || '.oc1.' || RegionId || '.' || " + _OCI_NAME + " END")
_SPEND = "cmt % 2 = 0"  # even commitments are AWS Savings Plans (spend), odd ones Azure reservations (usage)
_USAGE = "k NOT IN ({SUPPORT}, {TAX}, {PURCHASE})"
_PRICES = "k NOT IN ({SUPPORT}, {TAX})"
_CONTRACTED_PRICE = f"CASE WHEN {_PRICES} THEN CAST(round(list_price * contract, 10) AS {{MONEY}}) END"

# Output column -> SQL over `costed` (one row per line with its catalog values and costs), FOCUS order.
_COLUMNS = {
    "AvailabilityZone": _ZONE,
    "BilledCost": "CAST(CASE WHEN committed OR k = {UNUSED} THEN 0 ELSE contracted_cost END AS {MONEY})",
    "BillingAccountId": "BillingAccountId", "BillingAccountName": "BillingAccountName",
    "BillingAccountType": "BillingAccountType", "BillingCurrency": "BillingCurrency",
    "BillingPeriodEnd": "$next_month", "BillingPeriodStart": "$month",
    "CapacityReservationId": "NULL", "CapacityReservationStatus": "NULL",
    "ChargeCategory": "CASE k WHEN {TAX} THEN 'Tax' WHEN {PURCHASE} THEN 'Purchase' ELSE 'Usage' END",
    "ChargeClass": "NULL", "ChargeDescription": "ChargeDescription",
    "ChargeFrequency": "CASE WHEN k IN ({SUPPORT}, {TAX}, {PURCHASE}) THEN 'Recurring' "
                       "ELSE 'Usage-Based' END",
    "ChargePeriodEnd": "CASE WHEN h IS NULL THEN $day + INTERVAL 1 DAY ELSE $day + to_hours(h + 1) END",
    "ChargePeriodStart": "CASE WHEN h IS NULL THEN $day ELSE $day + to_hours(h) END",
    "CommitmentDiscountCategory": f"CASE WHEN cmt IS NOT NULL THEN CASE WHEN {_SPEND} THEN 'Spend' "
                                  "ELSE 'Usage' END END",
    "CommitmentDiscountId": f"CASE WHEN cmt IS NOT NULL THEN {_CMT_ID} END",
    "CommitmentDiscountName": f"CASE WHEN cmt IS NOT NULL THEN CASE WHEN {_SPEND} "
                              "THEN 'Compute Savings Plan ' ELSE 'Reserved VM Instance ' END "
                              "|| CAST(cmt AS VARCHAR) END",
    "CommitmentDiscountQuantity": f"CASE WHEN cmt IS NULL THEN NULL WHEN {_SPEND} THEN CASE WHEN seg = 2 "
                                  f"THEN amount ELSE {_EFFECTIVE} END ELSE CAST(qty AS {{MONEY}}) END",
    "CommitmentDiscountStatus": "CASE WHEN k = {UNUSED} THEN 'Unused' WHEN committed THEN 'Used' END",
    "CommitmentDiscountType": f"CASE WHEN cmt IS NOT NULL THEN CASE WHEN {_SPEND} "
                              "THEN 'Compute Savings Plan' ELSE 'Reservation' END END",
    "CommitmentDiscountUnit": f"CASE WHEN cmt IS NOT NULL THEN CASE WHEN {_SPEND} THEN 'USD' "
                              "ELSE 'Hours' END END",
    "ConsumedQuantity": f"CASE WHEN {_USAGE} THEN qty END",
    "ConsumedUnit": f"CASE WHEN {_USAGE} THEN unit END",
    "ContractedCost": "contracted_cost", "ContractedUnitPrice": _CONTRACTED_PRICE,
    "EffectiveCost": _EFFECTIVE, "InvoiceId": "'INV-' || CAST(p AS VARCHAR) || '-' || $invoice_month",
    "InvoiceIssuerName": "ProviderName", "ListCost": "list_cost",
    "ListUnitPrice": f"CASE WHEN {_PRICES} THEN list_price END",
    "PricingCategory": "CASE WHEN k IN ({SUPPORT}, {TAX}) THEN NULL WHEN committed OR k = {UNUSED} "
                       "THEN 'Committed' WHEN spot THEN 'Dynamic' ELSE 'Standard' END",
    "PricingCurrency": "BillingCurrency", "PricingCurrencyContractedUnitPrice": _CONTRACTED_PRICE,
    "PricingCurrencyEffectiveCost": _EFFECTIVE,
    "PricingCurrencyListUnitPrice": f"CASE WHEN {_PRICES} THEN list_price END",
    "PricingQuantity": f"CASE WHEN {_PRICES} THEN qty END",
    "PricingUnit": f"CASE WHEN {_PRICES} THEN unit END",
    "ProviderName": "ProviderName", "PublisherName": "PublisherName",
    "RegionId": "CASE WHEN k NOT IN ({SUPPORT}, {TAX}) THEN RegionId END",
    "RegionName": "CASE WHEN k NOT IN ({SUPPORT}, {TAX}) THEN RegionName END",
    "ResourceId": _RESOURCE_ID,
    "ResourceName": "CASE WHEN seg = 2 OR rid_type IS NULL THEN NULL WHEN p = {OCI} THEN " + _OCI_NAME + " "
                    "ELSE name_prefix || hex END",
    "ResourceType": "CASE WHEN seg = 2 THEN CASE WHEN cmt % 2 = 0 THEN 'Savings Plan' ELSE 'Reservation' END "
                    "ELSE ResourceType END",
    "ServiceCategory": "ServiceCategory", "ServiceName": "ServiceName",
    "ServiceSubcategory": "ServiceSubcategory", "SkuId": "SkuId", "SkuMeter": "SkuMeter",
    "SkuPriceDetails": "SkuPriceDetails", "SkuPriceId": "SkuPriceId", "SubAccountId": "SubAccountId",
    "SubAccountName": "SubAccountName", "SubAccountType": "SubAccountType", "Tags": "Tags",
    "x_ResourceGroupName": "CASE WHEN p = {AZURE} THEN " + _RG + " END",
    "x_SkuMeterCategory": "x_SkuMeterCategory",
    "x_InvoiceSectionName": "CASE WHEN p = {AZURE} THEN 'section-' || CAST(a AS VARCHAR) END",
}  # fmt: skip
assert list(_COLUMNS) == [*FOCUS_12_COLUMNS, *EXTRA_COLUMNS]


def layout(n_rows: int) -> dict[str, int]:
    """How `n_rows` split into hourly, daily and commitment rows, and the population sizes."""
    accounts = min(40, max(4, n_rows // 100_000))
    commitments = min(max(2, n_rows // 500_000), n_rows // 1000)
    daily = max(4 * accounts + 4, n_rows // 12)
    hourly = max(0, (n_rows - commitments * COMMITMENT_ROWS - daily) // HOURS * HOURS)
    daily = n_rows - commitments * COMMITMENT_ROWS - hourly
    return {"hourly": hourly, "daily": daily, "accounts": accounts,
            "aws_commitments": (commitments + 1) // 2, "azure_commitments": commitments // 2}  # fmt: skip


def sql() -> str:
    """The COPY's SELECT: every output column over the priced lines."""
    select = ", ".join(f'{expr} AS "{name}"' for name, expr in _COLUMNS.items())
    steps = f"WITH lines AS ({_LINES}), priced AS ({_PRICED}), costed AS ({_COSTED})"
    text = f"{steps} SELECT {select} FROM costed"
    return text.format_map(_N)


def generate(n_rows: int, day: date, out: Path) -> Path:
    if n_rows < 1000:
        raise ValueError(f"generate_focus: {n_rows} rows is too few for the population (at least 1,000)")
    out.parent.mkdir(parents=True, exist_ok=True)
    midnight = datetime.combine(day, time())
    month = midnight.replace(day=1)
    params = {**layout(n_rows), "n": n_rows, "day": midnight, "month": month,
              "next_month": (month + timedelta(days=32)).replace(day=1),
              "invoice_month": f"{month:%Y%m}"}  # fmt: skip
    catalogs = {"kinds": cat.kinds(), "accounts": cat.accounts(params["accounts"]), "regions": cat.regions(),
                "providers": cat.providers(), "tag_sets": cat.tag_sets()}  # fmt: skip
    target = str(out).replace("'", "''")
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET memory_limit = '2GB'")
        for name, frame in catalogs.items():
            con.register(f"{name}_frame", frame.to_arrow())
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_frame")  # noqa: S608 (our table names)
        # Without ORDER BY: DuckDB keeps the rows in range() order (insertion order is preserved by default).
        con.execute(f"COPY ({sql()}) TO '{target}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
                    params)  # fmt: skip
    finally:
        con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--day", type=date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(generate(args.rows, args.day, args.out))


if __name__ == "__main__":
    main()
