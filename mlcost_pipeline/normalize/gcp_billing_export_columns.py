"""GCP billing export rows -> `core.focus_costs` rows, column by column: the fast path.

Source, grain, key and mapping as in normalize/gcp_billing_export.py. The dimension fields are mapped once per
distinct set (gcp_billing_export_dimensions.py); money, quantities and times are read for all rows at once and
mapped in polars: amounts cast from their decimal text and summed exactly, timestamps parsed from ISO text, the key's
JSON written by expressions, x_LineId hashed in one pass. A value this path does not read as written (a float's
long repr, a timestamp with an offset, ...) goes through the per-record path's own conversion, once per distinct
value. A batch holding anything else (a shape this path does not read, or a bad row) gives None, and the per-record
path (gcp_billing_export_records.py) decides: the same rows, or the precise error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import chain

import numpy as np
import polars as pl

from mlcost_pipeline.normalize.focus_schema import MONEY, POLARS_SCHEMA, TS, conform
from mlcost_pipeline.normalize.gcp_billing_export_dimensions import dimension_groups, dimensions
from mlcost_pipeline.normalize.gcp_billing_export_records import (
    PROVIDER,
    SOURCE,
    decimal_value,
    exact,
    pacific_month,
    timestamp,
)
from mlcost_pipeline.normalize.native_columns import (
    FALLBACK,
    Unhandled,
    canonical_numbers,
    collection_paused,
    decimals,
    fields,
    line_ids,
    nested,
    number_texts,
    only,
    strings,
)

_MEASURES = ("usage_start_time", "usage_end_time", "export_time", "cost", "credits", "cost_at_list",
             "currency_conversion_rate", "usage")  # fmt: skip
# ISO 8601 UTC as BigQuery rows give it, read as written; any other text goes through records.timestamp.
_PLAIN_TIME = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
               r"(\.[0-9]{6})?(\+00:00|Z)?$")  # fmt: skip
_MAX_CREDITS = 9  # with more credits on a row their sum might pass Decimal's 28 digits: summed as records does
_NO_TEXT = pl.Series([None], dtype=pl.String)
_ZERO = pl.Series(["0"])


def _exact_text(field: str):
    return lambda text: exact(decimal_value(text, 0, field))


def _timestamps(texts: pl.Series, field: str) -> pl.DataFrame:
    """(ts: naive UTC, iso: its isoformat() as key text) per text; null stays null, Unhandled for a bad one."""
    frame = pl.DataFrame({"text": texts}).with_columns(plain=pl.col("text").str.contains(_PLAIN_TIME))
    base = pl.col("text").str.replace(r"(\+00:00|Z)$", "")
    frame = frame.with_columns(
        ts=pl.when("plain").then(base.str.strptime(TS, "%Y-%m-%dT%H:%M:%S%.f", strict=False)),
        iso=pl.when("plain").then(base.str.replace(r"\.000000$", "")),
    )
    odd = frame.filter(pl.col("text").is_not_null() & pl.col("ts").is_null())["text"].unique().to_list()
    if odd:  # an offset, a space, a date only, ...: parsed once per distinct text as the per-record path does
        moments = [timestamp(t, 0, field) for t in odd]
        fixed = pl.DataFrame({"text": odd, "ts2": pl.Series(moments, dtype=TS),
                              "iso2": [m.isoformat() for m in moments]})  # fmt: skip
        frame = frame.join(fixed, on="text", how="left", maintain_order="left").with_columns(
            ts=pl.coalesce("ts", "ts2"), iso=pl.coalesce("iso", "iso2")
        )
    quoted = pl.concat_str([pl.lit('"'), pl.col("iso"), pl.lit('"')])  # ISO text needs no JSON escaping
    return frame.select("ts", pl.when(pl.col("iso").is_null()).then(pl.lit("null")).otherwise(quoted).alias("iso"))


def _credits(credits: list, n: int) -> pl.DataFrame:
    """Per row: the sum of its credit amounts where each is plain decimal text, and whether all were."""
    only(credits, (list, type(None)))
    lists = [c or () for c in credits] if None in credits else credits
    sizes = np.fromiter(map(len, lists), dtype=np.int64, count=n)
    (amounts,) = fields(list(chain.from_iterable(lists)), ("amount",))
    texts = number_texts(amounts)
    if texts.null_count():
        raise Unhandled  # a credit without amount: an error the per-record path words
    plain = canonical_numbers(texts)
    per_row = (
        pl.DataFrame({"row": np.repeat(np.arange(n, dtype=np.int64), sizes), "plain": plain,
                      "amount": texts.zip_with(plain, _ZERO).cast(MONEY)})  # fmt: skip
        .group_by("row")
        .agg(pl.col("amount").sum(), pl.col("plain").all(), pl.len().alias("n"))
    )
    out = pl.DataFrame({"row": np.arange(n, dtype=np.int64)}).join(per_row, on="row", how="left", maintain_order="left")
    return out.select(
        pl.col("amount").fill_null(Decimal(0)).cast(MONEY).alias("credit"),
        (pl.col("plain").fill_null(True) & (pl.col("n").fill_null(0) <= _MAX_CREDITS)).alias("plain"),
    )


def _billed(cost: pl.Series, values: list, credits: list) -> tuple[pl.Series, pl.Series]:
    """BilledCost = cost + credits, exactly as records sums them, and whether it is negative (before rounding)."""
    plain = canonical_numbers(cost)
    billed = cost.zip_with(plain, _ZERO).cast(MONEY)
    if any(credits):
        credit = _credits(credits, len(values))
        plain = plain & credit["plain"]
        billed = billed + credit["credit"]
    negative = billed < 0
    odd = (~plain).arg_true()
    if odd.len():  # long floats, exponents, many credits: Decimal arithmetic as the per-record path does it
        texts, signs = [], []
        for i in odd.to_list():
            total = sum((decimal_value(c.get("amount"), i, "credits", True) for c in credits[i] or ()), Decimal(0))
            value = decimal_value(values[i], i, "cost", True) + total
            texts.append(format(exact(value), "f"))
            signs.append(value < 0)
        billed = billed.scatter(odd, pl.Series(texts).cast(MONEY))
        negative = negative.scatter(odd, pl.Series(signs, dtype=pl.Boolean))
    return billed, negative


def _frame(payloads: list, ingested_at: datetime) -> pl.DataFrame:
    n = len(payloads)
    if not n:
        return conform(pl.DataFrame(schema=POLARS_SCHEMA), SOURCE)
    only(payloads, dict)
    # An export repeats a resource's dimension fields on each of its hours: each distinct set is mapped once.
    positions, firsts = dimension_groups(payloads)
    dims = dimensions([payloads[i] for i in firsts]) if len(firsts) < n else dimensions(payloads)
    if len(firsts) < n:
        dims = dims[positions]
    top = dict(zip(_MEASURES, fields(payloads, _MEASURES), strict=True))
    amount, unit, pricing_amount, pricing_unit = fields(
        nested(top["usage"]), ("amount", "unit", "amount_in_pricing_units", "pricing_unit")
    )
    start = _timestamps(strings(top["usage_start_time"]), "usage_start_time")
    end = _timestamps(strings(top["usage_end_time"]), "usage_end_time")
    if start["ts"].null_count() or end["ts"].null_count() or (end["ts"] < start["ts"]).any():
        raise Unhandled
    export = strings(top["export_time"])
    export = _timestamps(export.zip_with(export != "", _NO_TEXT), "export_time")  # `if row.get(...)`: "" is none
    cost = number_texts(top["cost"])
    if cost.null_count():
        raise Unhandled
    billed, negative = _billed(cost, top["cost"], top["credits"])
    contracted = decimals(cost, _exact_text("cost"))
    measures = pl.DataFrame([
        billed.alias("BilledCost"), negative.alias("_negative"), contracted.alias("ContractedCost"),
        decimals(number_texts(top["cost_at_list"]), _exact_text("cost_at_list")).alias("_list"),
        decimals(number_texts(top["currency_conversion_rate"]), _exact_text("currency_conversion_rate"))
        .alias("x_CurrencyConversionRate"),
        start["ts"].alias("ChargePeriodStart"), end["ts"].alias("ChargePeriodEnd"),
        start["iso"].alias("_start"), end["iso"].alias("_end"), export["iso"].alias("_export"),
        decimals(number_texts(amount), _exact_text("usage.amount")).alias("ConsumedQuantity"),
        _or_null(unit).alias("ConsumedUnit"),
        decimals(number_texts(pricing_amount), _exact_text("usage.amount_in_pricing_units")).alias("PricingQuantity"),
        _or_null(pricing_unit).alias("PricingUnit"),
        _corrections(dims, start["ts"]).alias("_correction"),
    ])  # fmt: skip
    return _mapped(pl.concat([dims, measures], how="horizontal"), ingested_at)


def _or_null(values: list) -> pl.Series:
    """`value or None`: empty text is null."""
    series = strings(values)
    return series.zip_with(series != "", _NO_TEXT)


def _corrections(dims: pl.DataFrame, start: pl.Series) -> pl.Series:
    """An adjustment of usage in an earlier invoice month than its own is a correction (records' rule)."""
    out = pl.Series([False] * len(start), dtype=pl.Boolean)
    rows = (dims["_cost_type"] == "adjustment").arg_true()
    if rows.len():  # rare rows: the month compared in Pacific time by the per-record path's own function
        months, starts = dims["_month"].gather(rows).to_list(), start.gather(rows).to_list()
        out = out.scatter(rows, pl.Series([m > pacific_month(t) for m, t in zip(months, starts, strict=True)]))
    return out


def _mapped(frame: pl.DataFrame, ingested_at: datetime) -> pl.DataFrame:
    cost_type = pl.col("_cost_type")
    category = (
        pl.when(cost_type == "regular").then(pl.lit("Usage")).when(cost_type == "tax").then(pl.lit("Tax"))
        .when((cost_type == "adjustment") & pl.col("_negative")).then(pl.lit("Credit"))
        .otherwise(pl.lit("Adjustment"))
    )  # fmt: skip
    ingested = ingested_at.astimezone(UTC).replace(tzinfo=None) if ingested_at.tzinfo else ingested_at
    key = pl.concat_str([pl.col(c) for c in ("_key_head", "_start", "_end", "_key_labels", "_export", "_key_tail")],
                        separator=", ")  # fmt: skip
    frame = frame.with_columns(
        pl.col("BilledCost").alias("EffectiveCost"),
        pl.coalesce("_list", "ContractedCost").alias("ListCost"),
        category.alias("ChargeCategory"),
        pl.when("_correction").then(pl.lit("Correction")).alias("ChargeClass"),
        pl.lit("Billing Account").alias("BillingAccountType"),
        *(pl.lit(PROVIDER).alias(c) for c in ("ProviderName", "PublisherName", "InvoiceIssuerName", "HostProviderName")),
        pl.col("ChargePeriodStart").dt.date().alias("x_ChargeDate"),
        pl.concat_str([key, pl.lit("]")]).alias("_key"),
        pl.lit(SOURCE).alias("x_SourceSystem"),
        pl.lit(ingested, dtype=TS).alias("x_IngestedAt"),
    )
    frame = frame.with_columns(line_ids(frame["_key"]))
    return conform(frame.drop([c for c in frame.columns if c.startswith("_")]), SOURCE)


def columnar_frame(payloads: list, ingested_at: datetime) -> pl.DataFrame | None:
    """The conformed rows, or None when the batch holds a shape (or a bad row) for the per-record path."""
    try:
        with collection_paused():
            return _frame(payloads, ingested_at)
    except FALLBACK:
        return None
