"""GCP billing export rows: the dimension fields (everything but money and times), read once per distinct set.

Source: export rows as gcp_billing_export.py reads them. Grain: one row per distinct set of dimension fields
(billing account, service, SKU, project with its labels, labels, system labels, location, seller, currency, invoice,
cost type, resource, billing account name): an export repeats them on every hour of every resource, so a window's
rows hold a few distinct sets per resource. Rows are grouped by the marshal bytes of those fields (equal bytes mean
equal values of the same types), and each set is mapped once, column by column, as the per-record path
(gcp_billing_export_records.py) maps it. Anything it does not read as that path does raises Unhandled.
"""

from __future__ import annotations

import json
import marshal
import pickle
from itertools import count, repeat
from operator import contains, itemgetter

import numpy as np
import polars as pl

from mlcost_pipeline.normalize.focus_schema import TS
from mlcost_pipeline.normalize.gcp_billing_export_records import (
    _COST_TYPES,
    _CURRENCY,
    _MONTH,
    EXPORT_VERSION,
    PROVIDER,
    SOURCE,
    billing_period,
)
from mlcost_pipeline.normalize.gcp_service_categories import service_category
from mlcost_pipeline.normalize.native_columns import (
    Unhandled,
    fields,
    joined_by_row,
    json_text,
    key_head,
    nested,
    pairs,
    sorted_by_row,
    strings,
)

DIMENSIONS = ("billing_account_id", "service", "sku", "project", "labels", "system_labels", "location",
              "seller_name", "currency", "invoice", "cost_type", "resource", "billing_account_name")  # fmt: skip
_GET = itemgetter(*DIMENSIONS)


def dimension_groups(rows: list[dict]) -> tuple[np.ndarray, list[int]]:
    """Per row, the position of its dimension set among the distinct ones; and each set's first row."""
    try:
        values = list(map(_GET, rows))
    except KeyError:  # a row without some field (a hand-written one): read it as None, as .get does
        values = list(zip(*fields(rows, DIMENSIONS), strict=True))
    try:
        blobs = list(map(marshal.dumps, values, repeat(2)))  # version 2: no back-references, bytes follow values
    except ValueError:  # a value marshal does not write (a Decimal, a subclass): pickle writes everything
        blobs = list(map(pickle.dumps, values))
    index: dict[bytes, int] = {}
    first = np.fromiter(map(index.setdefault, blobs, count()), dtype=np.int64, count=len(rows))
    firsts = list(index.values())
    return np.searchsorted(np.array(firsts, dtype=np.int64), first), firsts


def _distinct_text(values: list, check) -> None:
    """Unhandled unless every distinct value is text passing `check` (the per-record path's own test)."""
    if not all(type(v) is str and check(v) for v in set(values)):
        raise Unhandled


def _or_null(values: list) -> pl.Series:
    """`value or None`: empty text is null."""
    series = strings(values)
    return series.zip_with(series != "", pl.Series([None], dtype=pl.String))


def _locations(location: list[dict]) -> tuple[pl.Series, dict[str, pl.Series]]:
    """The key's canonical location text, json.dumps(location, sort_keys=True), and its members as text."""
    sizes = set(map(len, location))
    keys = next((tuple(d) for d in location if d), ())
    if not sizes <= {0, len(keys)} or any(type(k) is not str for k in keys):
        raise Unhandled
    filled = sum(map(bool, location))
    members = {}
    for key, values in zip(keys, fields(location, keys), strict=True):
        if None in values and sum(map(contains, location, repeat(key))) != filled:
            raise Unhandled  # locations with different members: the per-record path reads each
        members[key] = strings(values, key)
    if not keys:
        return pl.Series(["{}"] * len(location)), members
    inner = [pl.concat_str([pl.lit(json.dumps(k, ensure_ascii=False) + ":"), json_text(pl.col(k))]) for k in sorted(keys)]
    text = pl.concat_str([pl.lit("{"), pl.concat_str(inner, separator=","), pl.lit("}")])
    has = pl.Series("has", list(map(bool, location)), dtype=pl.Boolean)
    out = pl.DataFrame([has, *members.values()]).select(pl.when("has").then(text).otherwise(pl.lit("{}")))
    return out.to_series(), members


def _tags(user: pl.DataFrame, system: pl.DataFrame, project: pl.DataFrame, n: int) -> pl.DataFrame:
    """Tags (user labels over system over project labels, later over earlier) and the key's canonical labels."""
    prefixed = [(project, "goog-project:"), (system, "goog-system:"), (user, "")]
    merged = pl.concat([f.select("row", pl.concat_str([pl.lit(p), pl.col("key")]).alias("tag"), "value")
                        for f, p in prefixed])  # fmt: skip
    tag = pl.concat_str([json_text(pl.col("tag")), pl.lit(":"), json_text(pl.col("value"))])
    label = pl.concat_str([pl.lit("["), json_text(pl.col("key")), pl.lit(","), json_text(pl.col("value")), pl.lit("]")])
    frame = pl.DataFrame({"t": joined_by_row(sorted_by_row(merged, "tag", last_only=True), n, tag),
                          "l": joined_by_row(sorted_by_row(user, "key"), n, label)})  # fmt: skip
    return frame.select(
        pl.when(pl.col("t").is_null()).then(None).otherwise(pl.concat_str([pl.lit("{"), pl.col("t"), pl.lit("}")]))
        .alias("Tags"),
        json_text(pl.concat_str([pl.lit("["), pl.col("l").fill_null(""), pl.lit("]")])).alias("_key_labels"),
    )  # fmt: skip


def dimensions(rows: list[dict]) -> pl.DataFrame:
    """One row per given export row: the columns its dimension fields decide, and the key's parts they give."""
    n = len(rows)
    top = dict(zip(DIMENSIONS, fields(rows, DIMENSIONS), strict=True))
    service, sku, project, location, invoice, resource = (
        nested(top[k]) for k in ("service", "sku", "project", "location", "invoice", "resource")
    )
    service_id, service_name = fields(service, ("id", "description"))
    sku_id, sku_name = fields(sku, ("id", "description"))
    project_id, project_name, project_labels = fields(project, ("id", "name", "labels"))
    (month,) = fields(invoice, ("month",))
    resource_name, resource_global = fields(resource, ("name", "global_name"))
    _distinct_text(top["currency"], _CURRENCY.fullmatch)
    _distinct_text(top["cost_type"], _COST_TYPES.__contains__)
    _distinct_text(month, _MONTH.fullmatch)
    _distinct_text(top["billing_account_id"], bool)
    _distinct_text(service_name, bool)
    periods = {m: billing_period(m) for m in set(month)}
    location_text, members = _locations(location)
    tags = _tags(pairs(top["labels"]), pairs(top["system_labels"]), pairs(project_labels), n)
    raw = pl.DataFrame([
        strings(top["billing_account_id"], "BillingAccountId"), strings(project_id, "SubAccountId"),
        strings(service_id, "_service_id"), strings(sku_id, "_sku_id"), strings(top["cost_type"], "_cost_type"),
        strings(month, "_month"), strings(service_name, "ServiceName"), strings(top["seller_name"], "_seller"),
        strings(resource_name, "ResourceName"), strings(resource_global, "_resource_global"),
        location_text.alias("_location"), *tags,
    ])  # fmt: skip
    regular = pl.col("_cost_type") == "regular"
    has_resource = pl.Series(list(map(bool, resource)) if any(top["resource"]) else [False] * n, dtype=pl.Boolean)
    head = [pl.lit(key_head(SOURCE))] + [json_text(pl.col(c)) for c in ("BillingAccountId", "SubAccountId",
                                                                        "_service_id", "_sku_id")]  # fmt: skip
    return raw.with_columns(
        strings(top["currency"], "BillingCurrency"),
        _or_null(top["billing_account_name"]).alias("BillingAccountName"),
        strings(project_name, "SubAccountName"),
        pl.when(pl.col("SubAccountId") != "").then(pl.lit("Project")).alias("SubAccountType"),
        pl.col("ServiceName").replace_strict({s: service_category(s) for s in set(service_name)},
                                             return_dtype=pl.String).alias("ServiceCategory"),
        strings(sku_name, "ChargeDescription"),
        _or_null(sku_id).alias("SkuId"),
        members.get("region", pl.Series([None] * n, dtype=pl.String)).alias("RegionId"),
        members.get("zone", pl.Series([None] * n, dtype=pl.String)).alias("AvailabilityZone"),
        pl.when(pl.col("_resource_global") != "").then("_resource_global").otherwise("ResourceName").alias("ResourceId"),
        pl.when(pl.col("_seller") != "").then("_seller").otherwise(pl.lit(PROVIDER)).alias("ServiceProviderName"),
        pl.col("_month").replace_strict({m: s for m, (s, _) in periods.items()}, return_dtype=TS)
        .alias("BillingPeriodStart"),
        pl.col("_month").replace_strict({m: e for m, (_, e) in periods.items()}, return_dtype=TS)
        .alias("BillingPeriodEnd"),
        pl.when(regular).then(pl.lit("Usage-Based")).otherwise(pl.lit("One-Time")).alias("ChargeFrequency"),
        pl.when(regular).then(pl.lit("Standard")).alias("PricingCategory"),
        pl.when(pl.lit(has_resource)).then(pl.lit("bq-detailed-v1")).otherwise(pl.lit(EXPORT_VERSION))
        .alias("x_ExportVersion"),
        pl.concat_str(head, separator=", ").alias("_key_head"),
        pl.concat_str([json_text(pl.col("_cost_type")), json_text(pl.col("_location"))], separator=", ")
        .alias("_key_tail"),
    ).drop("_service_id", "_sku_id", "_seller", "_resource_global", "_location")  # fmt: skip
