"""The AWS Cost and Usage Report columns the CUR converter reads, under each layout's own names.

Source: the AWS CUR data dictionary (legacy `lineItem/UnblendedCost` CSV names) and the Data Exports CUR 2.0
table dictionary (`line_item_unblended_cost`). Three layouts exist:
- legacy CSV: `<group>/<Name>` column names; tags are the columns `resourceTags/user:<key>` (and `aws:<key>`).
- legacy Parquet (the Athena integration): the same columns in snake_case, derived mechanically from the slash
  name (`reservation/ReservationARN` -> `reservation_reservation_a_r_n`); tags are `resource_tags_user_<key>`.
- CUR 2.0 (Data Exports, Parquet or gzip CSV): a fixed set of snake_case columns with the same names, plus
  MAP columns (`product`, `resource_tags`, `cost_category`, `discount`, `tags`); product attributes outside
  the fixed set (the product name, the region name) are keys of `product`, tags keys of `resource_tags`
  (`user_<key>`).
Legacy CUR's columns vary from month to month (a column appears once a line uses it), so any column but those
in REQUIRED may be absent: its value is then null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlcost_pipeline.normalize import export_datasets as ds

# Logical field -> legacy slash name (the snake_case names are derived from it).
FIELDS = {
    "payer": "bill/PayerAccountId",
    "payer_name": "bill/PayerAccountName",  # CUR 2.0 only
    "invoice": "bill/InvoiceId",
    "invoicing_entity": "bill/InvoicingEntity",
    "period_start": "bill/BillingPeriodStartDate",
    "period_end": "bill/BillingPeriodEndDate",
    "account": "lineItem/UsageAccountId",
    "account_name": "lineItem/UsageAccountName",  # CUR 2.0 only
    "type": "lineItem/LineItemType",
    "start": "lineItem/UsageStartDate",
    "end": "lineItem/UsageEndDate",
    "product_code": "lineItem/ProductCode",
    "usage_type": "lineItem/UsageType",
    "az": "lineItem/AvailabilityZone",
    "resource": "lineItem/ResourceId",
    "usage_amount": "lineItem/UsageAmount",
    "currency": "lineItem/CurrencyCode",
    "unblended_rate": "lineItem/UnblendedRate",
    "unblended": "lineItem/UnblendedCost",
    "description": "lineItem/LineItemDescription",
    "legal_entity": "lineItem/LegalEntity",
    "product_name": "product/ProductName",
    "region_code": "product/regionCode",
    "region": "product/region",
    "location": "product/location",
    "sku": "product/sku",
    "rate_code": "pricing/RateCode",
    "rate_id": "pricing/RateId",
    "od_cost": "pricing/publicOnDemandCost",
    "od_rate": "pricing/publicOnDemandRate",
    "term": "pricing/term",
    "unit": "pricing/unit",
    "ri_arn": "reservation/ReservationARN",
    "ri_effective": "reservation/EffectiveCost",
    "ri_unused_upfront": "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
    "ri_unused_recurring": "reservation/UnusedRecurringFee",
    "ri_units": "reservation/TotalReservedUnits",
    "sp_arn": "savingsPlan/SavingsPlanARN",
    "sp_effective": "savingsPlan/SavingsPlanEffectiveCost",
    "sp_total_commitment": "savingsPlan/TotalCommitmentToDate",
    "sp_used_commitment": "savingsPlan/UsedCommitment",
    "cr_arn": "capacityReservation/CapacityReservationARN",
    "cr_status": "capacityReservation/CapacityReservationStatus",
}
# CUR 2.0 names that are not the mechanical snake_case of the slash name (Data Exports table dictionary).
CUR2_NAMES = {
    "cr_arn": "capacity_reservation_capacity_reservation_arn",
    "cr_status": "capacity_reservation_capacity_reservation_status",
}
# CUR 2.0 keeps these product attributes in the `product` map, under these keys.
CUR2_PRODUCT_KEYS = {"product_name": "product_name", "region": "region"}
REQUIRED = ("payer", "type", "start", "end", "unblended", "currency", "period_start", "period_end")
CUR2_MAPS = ("product", "resource_tags", "cost_category", "discount", "tags")
CUR2_ONLY = ("bill_payer_account_name", "line_item_usage_account_name")
LEGACY_TAG_PREFIX = "resourcetags/"
SNAKE_TAG_PREFIX = "resource_tags_"


def snake(slash_name: str) -> str:
    """The Athena / CUR 2.0 spelling of a legacy column name.

    `savingsPlan/SavingsPlanARN` -> `savings_plan_savings_plan_a_r_n` (every capital letter starts a word).
    """
    s = re.sub(r"([A-Z])", r"_\1", slash_name.replace("/", "_").replace(":", "_")).lower()
    return re.sub(r"_+", "_", s).strip("_")


def dataset_of(columns: list[str]) -> str | None:
    """AWS_CUR2, AWS_CUR_LEGACY, or None when the columns are not a Cost and Usage Report's."""
    lower = {c.lower() for c in columns}
    if FIELDS["type"].lower() in lower and FIELDS["unblended"].lower() in lower:
        return ds.AWS_CUR_LEGACY
    if snake(FIELDS["type"]) in lower and snake(FIELDS["unblended"]) in lower:
        return ds.AWS_CUR2 if lower & {*CUR2_MAPS, *CUR2_ONLY} else ds.AWS_CUR_LEGACY
    return None


def tag_key(column: str) -> str | None:
    """The FOCUS tag key of a legacy tag column (`resourceTags/user:Project` -> `Project`,
    `resourceTags/aws:createdBy` -> `aws:createdBy`), else None."""
    low = column.lower()
    if low.startswith(LEGACY_TAG_PREFIX):
        key = column[len(LEGACY_TAG_PREFIX):]
        return key[len("user:"):] if key.lower().startswith("user:") else key
    if low.startswith(SNAKE_TAG_PREFIX):
        return snake_tag_key(column[len(SNAKE_TAG_PREFIX):])
    return None


def snake_tag_key(key: str) -> str:
    """`user_project` -> `project`, `aws_created_by` -> `aws:created_by`.

    User-defined tags are unprefixed, as in AWS's FOCUS export and in Cost Explorer (FOCUS: one user scheme may be
    unprefixed), so one allocation rule reads every AWS source; AWS-generated ones keep `aws:`. Athena and CUR 2.0
    lower-case and snake_case the key itself (`user:CostCenter` arrives as `user_cost_center`); that spelling
    cannot be undone.
    """
    if key.lower().startswith("user_"):
        return key[len("user_"):]
    if key.lower().startswith("aws_"):
        return f"aws:{key[len('aws_'):]}"
    return key


@dataclass(frozen=True)
class Layout:
    """Where each field lives in one file: a column (name, DuckDB type), a `product` map key, or nowhere."""

    dataset: str
    slash: bool  # legacy CSV names
    by_lower: dict[str, tuple[str, str]]
    names: tuple[str, ...]  # as the file spells them (tag keys differing only in case are distinct tags)

    @classmethod
    def of(cls, columns: list[tuple[str, str]], dataset: str) -> Layout:
        names = tuple(name for name, _ in columns if name != "__row")
        by_lower = {name.lower(): (name, typ) for name, typ in columns if name != "__row"}
        return cls(dataset=dataset, slash=any("/" in n for n in names), by_lower=by_lower, names=names)

    def name(self, field: str) -> str:
        if self.slash:
            return FIELDS[field]
        if self.dataset == ds.AWS_CUR2 and field in CUR2_NAMES:
            return CUR2_NAMES[field]
        return snake(FIELDS[field])

    def column(self, field: str) -> tuple[str, str] | None:
        return self.by_lower.get(self.name(field).lower())

    def product_map(self, field: str) -> tuple[tuple[str, str], str] | None:
        """CUR 2.0: ((the `product` column, its type), the key) for a field kept in the product map."""
        if self.dataset != ds.AWS_CUR2 or field not in CUR2_PRODUCT_KEYS or "product" not in self.by_lower:
            return None
        return self.by_lower["product"], CUR2_PRODUCT_KEYS[field]

    def missing(self) -> list[str]:
        return [self.name(f) for f in REQUIRED if self.column(f) is None]

    def tag_columns(self) -> list[tuple[str, str]]:
        """Legacy layouts: (column, tag key) of every tag column, in file order."""
        return [(name, key) for name in self.names if (key := tag_key(name))]

    def tag_map(self) -> tuple[str, str, bool] | None:
        """CUR 2.0: the tag map column (name, type, whether its keys are `user_<key>` style).

        `resource_tags` when the export has it; else the newer `tags` map, whose keys AWS prefixes with their
        source (`resourceTags/`, `accountTag/`, `costCategory/`, `userAttribute/`) and which is kept as it is.
        """
        if self.dataset != ds.AWS_CUR2:
            return None
        if "resource_tags" in self.by_lower:
            return (*self.by_lower["resource_tags"], True)
        return (*self.by_lower["tags"], False) if "tags" in self.by_lower else None
