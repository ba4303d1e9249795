"""AWS Cost and Usage Reports (CUR 2.0, legacy CUR) -> FOCUS 1.2 columns, as one DuckDB SELECT over a scan.

Source: a CUR file in any layout aws_cur_columns describes (CSV read as text, or Parquet with its types).
Grain: one row per CUR line item, plus one for an RIFee or SavingsPlanRecurringFee line that carries unused
commitment (FOCUS splits it: the fee is a Purchase with EffectiveCost 0, the unused part a Usage row with
CommitmentDiscountStatus Unused and BilledCost 0). Key: the reader's x_LineId over the FOCUS identity columns;
`__row` stays the file row. Reference: the FinOps Foundation converter's published mapping (focus_converters
conversion_rules_export/aws-cur), with FOCUS 1.0+ values where that mapping predates them.

Money (docs/exports.md has the user's version):
- BilledCost = lineItem/UnblendedCost on every line. Discount lines (EdpDiscount, PrivateRateDiscount,
  BundledDiscount, ...) stay their own negative rows and SavingsPlanNegation cancels the covered usage, so
  per day BilledCost sums to UnblendedCost over the file's lines (none is dropped). The net unblended columns
  are not read: they exist only for accounts with discounts, and using them means dropping the discount lines.
- EffectiveCost, the amortized view: SavingsPlanCoveredUsage -> savingsPlan/SavingsPlanEffectiveCost;
  DiscountedUsage -> reservation/EffectiveCost; the unused row of a SavingsPlanRecurringFee ->
  TotalCommitmentToDate - UsedCommitment, of an RIFee -> UnusedAmortizedUpfrontFeeForBillingPeriod +
  UnusedRecurringFee; SavingsPlanNegation, SavingsPlanUpfrontFee, the recurring fee rows and an RI's
  upfront Fee -> 0; any other line -> UnblendedCost. An absent part of a sum counts as 0.
- ListCost: usage lines -> pricing/publicOnDemandCost (else UnblendedCost); SavingsPlanNegation and discount
  lines -> 0; fees, tax and credits -> UnblendedCost. ContractedCost: DiscountedUsage -> publicOnDemandCost;
  SavingsPlanNegation -> 0; else UnblendedCost (a discount line's negative amount is the negotiated price).
  An unused row: both equal its EffectiveCost.
- Parquet doubles become the exact decimals AWS wrote; CSV text passes through to the reader.
Dates pass through: a line spanning the month (RIFee, SavingsPlanRecurringFee, monthly Tax) lands on its
ChargePeriodStart day, the 1st.
ChargeCategory: Usage (usage, covered usage, negation, *Discount lines), Purchase (Fee, RIFee,
SavingsPlanUpfrontFee, SavingsPlanRecurringFee), Tax, Credit (Credit; Refund with ChargeClass Correction); an
unknown line type passes through and the reader refuses it by name. ServiceCategory from
lookups/aws_category_mapping.csv on the product code ('Other' when unmapped); ServiceName = the product name
(CUR 2.0: product['product_name']), else the product code. Tags: the resource tags as a flat JSON object, user
tags unprefixed (`resourceTags/user:Project` -> `Project`, as in AWS's FOCUS export and Cost Explorer) and
AWS-generated ones as `aws:<key>`, null when untagged.
"""

from __future__ import annotations

from pathlib import Path

from mlcost_pipeline.normalize.aws_cur_columns import Layout
from mlcost_pipeline.normalize.aws_cur_columns import dataset_of as _dataset_of
from mlcost_pipeline.normalize.aws_cur_terms import NULL, ZERO, Sql, Term, field, in_list, q
from mlcost_pipeline.normalize.export_datasets import Converted, ConvertOptions
from mlcost_pipeline.normalize.focus_schema import NormalizationError

SOURCE = "aws_cur"
CATEGORY_MAP = Path(__file__).resolve().parent / "lookups" / "aws_category_mapping.csv"
USAGE = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")
COVERED = ("DiscountedUsage", "SavingsPlanCoveredUsage")
PURCHASES = ("Fee", "RIFee", "SavingsPlanUpfrontFee", "SavingsPlanRecurringFee")
ZERO_EFFECTIVE = ("SavingsPlanNegation", "SavingsPlanUpfrontFee", "SavingsPlanRecurringFee", "RIFee")
RI_UNUSED = Term("+", "ri_unused_upfront", "ri_unused_recurring")
SP_UNUSED = Term("-", "sp_total_commitment", "sp_used_commitment")
UNUSED = "__unused"  # true on the extra row of a recurring fee: its unused commitment


def dataset_of(columns: list[str]) -> str | None:
    """AWS_CUR2, AWS_CUR_LEGACY, or None when the columns are not a Cost and Usage Report's."""
    return _dataset_of(columns)


def _money(s: Sql, t: str) -> dict[str, str]:
    unused_rows = [(f"{UNUSED} AND {t} = 'RIFee'", RI_UNUSED),
                   (f"{UNUSED} AND {t} = 'SavingsPlanRecurringFee'", SP_UNUSED)]
    has_ri = f"NULLIF({s.col('ri_arn')}, '') IS NOT NULL"
    usage = f"NOT {UNUSED} AND {t} IN {in_list(USAGE)}"
    return {
        "BilledCost": s.amount("BilledCost", [(UNUSED, ZERO)], field("unblended")),
        "EffectiveCost": s.amount("EffectiveCost", [
            *unused_rows,
            (f"{t} = 'SavingsPlanCoveredUsage'", field("sp_effective")),
            (f"{t} = 'DiscountedUsage'", field("ri_effective")),
            (f"{t} IN {in_list(ZERO_EFFECTIVE)}", ZERO),
            (f"{t} = 'Fee' AND {has_ri}", ZERO),  # an RI's upfront fee: amortized into its usage
        ], field("unblended")),
        "ListCost": s.amount("ListCost", [
            *unused_rows,
            (f"{t} IN {in_list(USAGE)}", Term("coalesce", "od_cost", "unblended")),
            (f"({t} LIKE '%Discount' OR {t} = 'SavingsPlanNegation')", ZERO),
        ], field("unblended")),
        "ContractedCost": s.amount("ContractedCost", [
            *unused_rows,
            (f"{t} = 'DiscountedUsage'", Term("coalesce", "od_cost", "unblended")),
            (f"{t} = 'SavingsPlanNegation'", ZERO),
        ], field("unblended")),
        "ListUnitPrice": s.amount("ListUnitPrice", [(usage, field("od_rate"))], NULL),
        "ContractedUnitPrice": s.amount("ContractedUnitPrice", [(usage, field("unblended_rate"))], NULL),
        "ConsumedQuantity": s.amount("ConsumedQuantity", [(usage, field("usage_amount"))], NULL),
        "PricingQuantity": s.amount("PricingQuantity", [(UNUSED, NULL)],
                                    Term("coalesce", "ri_units", "usage_amount")),
    }


def _classes(s: Sql, t: str) -> dict[str, str]:
    has_ri = f"NULLIF({s.col('ri_arn')}, '') IS NOT NULL"
    has_sp = f"NULLIF({s.col('sp_arn')}, '') IS NOT NULL"
    return {
        "ChargeCategory": (f"CASE WHEN {UNUSED} THEN 'Usage' "
                           f"WHEN {t} IN {in_list((*USAGE, 'SavingsPlanNegation'))} THEN 'Usage' "
                           f"WHEN {t} IN {in_list(PURCHASES)} THEN 'Purchase' WHEN {t} = 'Tax' THEN 'Tax' "
                           f"WHEN {t} IN ('Credit', 'Refund') THEN 'Credit' "
                           f"WHEN {t} LIKE '%Discount' THEN 'Usage' ELSE {t} END"),
        "ChargeClass": f"CASE WHEN {t} = 'Refund' THEN 'Correction' END",
        "ChargeFrequency": (f"CASE WHEN {UNUSED} THEN 'Usage-Based' "
                            f"WHEN {t} IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Recurring' "
                            f"WHEN {t} IN ('Fee', 'SavingsPlanUpfrontFee', 'Credit', 'Refund') "
                            "THEN 'One-Time' ELSE 'Usage-Based' END"),
        "PricingCategory": (f"CASE WHEN {UNUSED} OR {t} IN {in_list((*COVERED, 'SavingsPlanNegation'))} "
                            f"THEN 'Committed' WHEN {t} IN ('Tax', 'Credit', 'Refund') THEN NULL "
                            f"WHEN {s.text('usage_type')} LIKE '%SpotUsage%' OR {s.text('term')} = 'Spot' "
                            "THEN 'Dynamic' ELSE 'Standard' END"),
        "CommitmentDiscountId": f"coalesce({s.text('sp_arn')}, {s.text('ri_arn')})",
        "CommitmentDiscountType": (f"CASE WHEN {has_sp} THEN 'Savings Plan' "
                                   f"WHEN {has_ri} THEN 'Reservation' END"),
        "CommitmentDiscountCategory": f"CASE WHEN {has_sp} THEN 'Spend' WHEN {has_ri} THEN 'Usage' END",
        "CommitmentDiscountStatus": (f"CASE WHEN {UNUSED} THEN 'Unused' "
                                     f"WHEN {t} IN {in_list(COVERED)} THEN 'Used' END"),
        "ConsumedUnit": f"CASE WHEN NOT {UNUSED} AND {t} IN {in_list(USAGE)} THEN {s.text('unit')} END",
        "PricingUnit": f"CASE WHEN NOT {UNUSED} THEN {s.text('unit')} END",
    }


def _dimensions(s: Sql) -> dict[str, str]:
    region = f"coalesce({s.text('region_code')}, {s.text('region')})"
    return {
        "BillingAccountId": s.text("payer"),
        "BillingAccountName": s.text("payer_name"),
        "SubAccountId": s.text("account"),
        "SubAccountName": s.text("account_name"),
        "BillingCurrency": s.col("currency"),
        "BillingPeriodStart": s.col("period_start"),
        "BillingPeriodEnd": s.col("period_end"),
        "ChargePeriodStart": s.col("start"),
        "ChargePeriodEnd": s.col("end"),
        "ChargeDescription": s.text("description"),
        "InvoiceId": s.text("invoice"),
        "InvoiceIssuerName": s.text("invoicing_entity"),
        "PublisherName": s.text("legal_entity"),
        "ProviderName": "'AWS'",
        "ServiceName": f"coalesce({s.text('product_name')}, {s.text('product_code')})",
        "ServiceCategory": "coalesce(__category, 'Other')",
        "RegionId": region,
        "RegionName": f"CASE WHEN {region} IS NOT NULL THEN {s.text('location')} END",
        "AvailabilityZone": s.text("az"),
        "ResourceId": s.text("resource"),
        "SkuId": s.text("sku"),
        "SkuPriceId": f"coalesce({s.text('rate_code')}, {s.text('rate_id')})",
        "CapacityReservationId": s.text("cr_arn"),
        "CapacityReservationStatus": s.text("cr_status"),
    }


def convert(scan: str, columns: list[tuple[str, str]], options: ConvertOptions | None = None) -> Converted:
    """The SELECT over `scan` yielding FOCUS 1.2 columns and `__row` (the contract: export_datasets).

    `options` is part of the contract; nothing in a CUR file depends on it.
    """
    dataset = _dataset_of([c for c, _ in columns])
    if dataset is None:
        raise NormalizationError(f"{SOURCE}: the file's columns are not a Cost and Usage Report's (no "
                                 "lineItem/LineItemType and lineItem/UnblendedCost, nor their snake_case "
                                 "names)")
    layout = Layout.of(columns, dataset)
    missing = layout.missing()
    if missing:
        raise NormalizationError(f"{SOURCE}: a {dataset} file needs the column(s) {', '.join(missing)}; "
                                 "the file has none of that name")
    s = Sql(layout)
    t = s.col("type")
    params: dict[str, object] = {f"{dataset}_categories": str(CATEGORY_MAP)}
    out = {**_money(s, t), **_classes(s, t), **_dimensions(s), "Tags": s.tags(params, dataset)}
    emit_unused = (f"({t} = 'RIFee' AND {s.nonzero_or_bad(RI_UNUSED)}) "
                   f"OR ({t} = 'SavingsPlanRecurringFee' AND {s.nonzero_or_bad(SP_UNUSED)})")
    select = ", ".join(f"{expr} AS {q(name)}" for name, expr in out.items())
    # Bottom up: the file joined to the category map, with the per-line values (Sql.leaves); then the row
    # split; then the FOCUS columns.
    categories = (f"SELECT product_code AS __code, min(ServiceCategory) AS __category FROM read_csv("
                  f"${dataset}_categories, header = true, all_varchar = true) GROUP BY 1")
    lines = (f"SELECT cur.*, cat.__category{s.leaf_select()} FROM {scan} AS cur "  # noqa: S608
             f"LEFT JOIN ({categories}) AS cat ON cat.__code = {s.col('product_code')}")
    split = f"unnest(CASE WHEN {emit_unused} THEN [false, true] ELSE [false] END) AS {UNUSED}"
    sql = f"SELECT {select}, __row FROM (SELECT *, {split} FROM ({lines}))"  # noqa: S608
    return Converted(sql=sql, params=params, source_of=_source_of(s, layout))


_DIRECT = {
    "BillingCurrency": "currency", "ChargePeriodStart": "start", "ChargePeriodEnd": "end",
    "BillingPeriodStart": "period_start", "BillingPeriodEnd": "period_end", "BillingAccountId": "payer",
    "ChargeCategory": "type", "SubAccountId": "account", "ResourceId": "resource",
}  # fmt: skip


def _source_of(s: Sql, layout: Layout) -> dict[str, str]:
    out = {target: ", ".join(sorted(cols)) for target, cols in s.used.items() if cols}
    for target, name in _DIRECT.items():
        c = layout.column(name)
        if c:
            out[target] = c[0]
    return out
