"""AWS Cost Explorer page-days -> `core.focus_costs` rows, column by column: the fast path.

Source, grain and mapping as in normalize/aws_cost_explorer.py. Pages and their ResultsByTime (a few a day) are
read one by one with the per-record path's own helpers; the groups (thousands a page) are read field by field for
all groups of a GroupDefinitions layout at once and mapped in polars: amounts cast from their decimal text, Tags and
the key's JSON written by expressions, x_LineId hashed in one pass. A batch holding anything this path does not
read (groups whose metrics differ, a key that is not text, an amount that does not parse, ...) gives None, and the
per-record path (aws_cost_explorer_records.py) decides: the same rows, or the precise error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

import numpy as np
import polars as pl

from mlcost_pipeline.normalize.aws_cost_explorer_records import (
    _COST_METRICS,
    _CURRENCY,
    SERVICE_CATEGORIES,
    SOURCE,
    UNKNOWN_BILLING_ACCOUNT,
    billing_month,
    constant_columns,
    decimal_amount,
    filter_account,
    instant,
)
from mlcost_pipeline.normalize.focus_schema import MONEY, POLARS_SCHEMA, TS, conform
from mlcost_pipeline.normalize.native_columns import (
    FALLBACK,
    Unhandled,
    collection_paused,
    decimals,
    fields,
    json_text,
    key_head,
    key_text,
    line_ids,
    number_texts,
    only,
    strings,
)

_USAGE = "UsageQuantity"
_TAG_PREFIX = r"^[^$]*\$"  # a TAG key is "Key$value": the value is what follows the first "$"
_CONTEXT = ("page", "ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd",
            "x_ChargeDate", "x_Estimated", "BillingAccountId", "filter_account", "key_head")  # fmt: skip
_CONTEXT_TYPES = (pl.Int64, TS, TS, TS, TS, pl.Date, pl.Boolean, pl.String, pl.String, pl.String)


@dataclass(frozen=True)
class _Layout:
    """Where a page's GroupDefinitions put the service, the linked account and the tags in each group's Keys."""

    width: int
    service: int
    account: int | None
    tags: tuple[tuple[str, int], ...]  # (tag key, position) by tag key: Tags is written with its keys sorted


@dataclass
class _Batch:
    """The groups of every result whose page has one layout, with one context row per result."""

    groups: list = field(default_factory=list)
    context: list[tuple] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)


def _layout(definitions: object) -> _Layout:
    if type(definitions) is not list:
        raise Unhandled
    kinds = [(d.get("Type"), d.get("Key")) for d in definitions]
    service = [i for i, kind in enumerate(kinds) if kind == ("DIMENSION", "SERVICE")]
    account = [i for i, kind in enumerate(kinds) if kind == ("DIMENSION", "LINKED_ACCOUNT")]
    tags = [(name, i) for i, (kind, name) in enumerate(kinds) if kind == "TAG"]
    names = [name for name, _ in tags]
    if not service or any(type(n) is not str for n in names) or len(set(names)) < len(names):
        raise Unhandled  # no SERVICE (an error), or tag keys the per-record path merges its own way
    return _Layout(len(kinds), service[-1], account[-1] if account else None, tuple(sorted(tags)))


def _names(response: dict) -> dict:
    return {
        str(a.get("Value")): (a.get("Attributes") or {}).get("description")
        for a in response.get("DimensionValueAttributes") or []
    }


def _batches(payloads: list, billing_account_id: str | None) -> tuple[dict[_Layout, _Batch], list[tuple]]:
    """Pages and results read as the per-record path reads them; their groups batched by layout."""
    batches: dict[_Layout, _Batch] = {}
    names_rows: list[tuple] = []
    position = 0
    for page, payload in enumerate(payloads):
        if type(payload) is not dict or type(payload.get("response")) is not dict:
            raise Unhandled
        request, response = payload.get("request") or {}, payload["response"]
        definitions = response.get("GroupDefinitions") or request.get("GroupBy") or []
        names_rows.extend((page, value, name) for value, name in _names(response).items())
        results = response.get("ResultsByTime")
        if type(results) is not list:
            raise Unhandled
        layout = None
        for result in results:
            period = result.get("TimePeriod") or {}
            if "Start" not in period or "End" not in period:
                raise Unhandled
            start, end = instant(period["Start"], page, ""), instant(period["End"], page, "")
            groups = result.get("Groups") or []
            if end <= start or (not groups and any(result.get("Total") or {})) or type(groups) is not list:
                raise Unhandled
            if not groups:
                continue
            layout = layout or _layout(definitions)
            batch = batches.setdefault(layout, _Batch())
            billing_start, billing_end = billing_month(start)
            payer = payload.get("billing_account_id") or billing_account_id or UNKNOWN_BILLING_ACCOUNT
            account = filter_account(request.get("Filter"))
            # The key is (start text, account, *Keys): its head is the same for every group of the result.
            head = key_head(SOURCE, str(period["Start"]), *([account] if layout.account is None else []))
            batch.context.append((page, start, end, billing_start, billing_end, start.date(), result.get("Estimated"),
                                  payer, account, head))  # fmt: skip
            batch.groups.extend(groups)
            batch.counts.append(len(groups))
            batch.positions.append(np.arange(position, position + len(groups)))
            position += len(groups)
    return batches, names_rows


def _precise(text: str):
    return decimal_amount(text, 0, "")


def _amounts(values: list) -> pl.Series:
    texts = number_texts(values)
    if texts.null_count():
        raise Unhandled
    return decimals(texts, _precise)


def _currency(units: list[list], n: int) -> pl.Series:
    """The one currency every cost metric of every group names (Unhandled otherwise)."""
    distinct = set(chain.from_iterable(units))
    if len(distinct) == 1:  # the usual batch: one currency, checked once as the per-record path checks it
        (code,) = distinct
        if type(code) is not str or not _CURRENCY.match(code):
            raise Unhandled
        return pl.Series([code], dtype=pl.String).extend_constant(code, n - 1)
    billed, *others = (strings(u) for u in units)
    if billed.null_count() or not billed.str.contains(_CURRENCY.pattern).all():
        raise Unhandled
    if any(u.null_count() or (u != billed).any() for u in others):
        raise Unhandled
    return billed


def _batch_frame(layout: _Layout, batch: _Batch, names: pl.DataFrame) -> pl.DataFrame:
    groups, width = batch.groups, layout.width
    keys, metrics = fields(groups, ("Keys", "Metrics"))
    only(keys, list)
    if set(map(len, keys)) != {width}:
        raise Unhandled
    flat = list(chain.from_iterable(keys))
    columns = {f"k{i}": strings(flat[i::width]) for i in range(width)}
    if any(c.null_count() for c in columns.values()):
        raise Unhandled
    metric_names = tuple(metrics[0]) if type(metrics[0]) is dict else ()
    if not metric_names or set(map(len, metrics)) != {len(metric_names)}:
        raise Unhandled  # groups without metrics, or with different ones: the per-record path reads each
    by_name = dict(zip(metric_names, fields(metrics, metric_names), strict=True))
    if any(None in values for values in by_name.values()):
        raise Unhandled  # a group lacks a metric the others have (or holds a null one)
    billed_name = "NetUnblendedCost" if "NetUnblendedCost" in by_name else "UnblendedCost"
    if billed_name not in by_name:
        raise Unhandled
    effective_name = next((m for m in ("NetAmortizedCost", "AmortizedCost") if m in by_name), billed_name)
    cost_metrics = [billed_name, *(m for m in _COST_METRICS if m in by_name and m != billed_name)]
    read = {billed_name, effective_name, "UnblendedCost"} & set(by_name)
    units, amounts = [], {}
    for name in cost_metrics:
        if name in read:
            values, unit = fields(by_name[name], ("Amount", "Unit"))
            amounts[name] = _amounts(values)
        else:
            (unit,) = fields(by_name[name], ("Unit",))
        units.append(unit)
    n = len(groups)
    columns |= {"BillingCurrency": _currency(units, n), "BilledCost": amounts[billed_name],
                "EffectiveCost": amounts[effective_name], "ListCost": amounts.get("UnblendedCost", amounts[billed_name])}  # fmt: skip
    service = columns[f"k{layout.service}"]
    if (service == "").any():
        raise Unhandled
    is_tax = service == "Tax"
    if _USAGE in by_name:
        usage_amounts, usage_units = fields(by_name[_USAGE], ("Amount", "Unit"))
        # A Tax group has no usage: its UsageQuantity is never read.
        usage = number_texts(usage_amounts).zip_with(~is_tax, pl.Series([None], dtype=pl.String))
        if usage.null_count() != is_tax.sum():
            raise Unhandled
        columns |= {"ConsumedQuantity": decimals(usage, _precise), "_unit": strings(usage_units)}
    else:
        columns |= {"ConsumedQuantity": pl.Series(dtype=MONEY).extend_constant(None, n),
                    "_unit": pl.Series(dtype=pl.String).extend_constant(None, n)}  # fmt: skip
    context = pl.DataFrame(
        batch.context, schema=dict(zip(_CONTEXT, _CONTEXT_TYPES, strict=True)), orient="row"
    )
    frame = pl.concat(
        [context[np.repeat(np.arange(len(batch.counts)), batch.counts)], pl.DataFrame(columns)],
        how="horizontal",
    )
    return _mapped(frame.with_columns(_pos=pl.Series(np.concatenate(batch.positions))), layout, names)


def _tag_value(key: pl.Series, name: str) -> pl.Expr:
    """The value of TAG keys "name$value": what follows the first "$"."""
    prefix = name + "$"
    if "$" not in name and key.str.starts_with(prefix).all():  # the usual keys: no pattern to match
        return pl.col(key.name).str.slice(len(prefix))
    return pl.col(key.name).str.replace(_TAG_PREFIX, "")


def _mapped(frame: pl.DataFrame, layout: _Layout, names: pl.DataFrame) -> pl.DataFrame:
    service = pl.col(f"k{layout.service}")
    account = pl.col(f"k{layout.account}") if layout.account is not None else pl.col("filter_account")
    values = [
        _tag_value(frame[f"k{position}"], name).alias(f"_tag{i}")
        for i, (name, position) in enumerate(layout.tags)
    ]
    pieces = [pl.when(pl.col(f"_tag{i}") != "").then(pl.concat_str([pl.lit(json.dumps(name, ensure_ascii=False) + ":"),
                                                                     json_text(pl.col(f"_tag{i}"))]))
              for i, (name, _) in enumerate(layout.tags)]  # fmt: skip
    tags = pl.concat_str(pieces, separator=",", ignore_nulls=True) if pieces else pl.lit("")
    usage = service != "Tax"
    out = frame.with_columns(*values).with_columns(_tags=tags).with_columns(
        pl.when(usage).then(pl.lit("Usage")).otherwise(pl.lit("Tax")).alias("ChargeCategory"),
        service.alias("ServiceName"),
        service.replace_strict(SERVICE_CATEGORIES, default="Other", return_dtype=pl.String).alias("ServiceCategory"),
        account.alias("SubAccountId"),
        pl.when(pl.col("_tags") == "").then(None).otherwise(pl.concat_str([pl.lit("{"), pl.col("_tags"), pl.lit("}")]))
        .alias("Tags"),
        pl.col("ListCost").alias("ContractedCost"),
        pl.when(usage & ~pl.col("_unit").is_in(["", "N/A"])).then(pl.col("_unit")).alias("ConsumedUnit"),
        key_text(pl.col("key_head"), [*([account] if layout.account is not None else []),
                                      *(pl.col(f"k{i}") for i in range(layout.width))]).alias("_key"),
    )  # fmt: skip
    if names.height:
        out = out.join(names, left_on=["page", "SubAccountId"], right_on=["page", "value"], how="left",
                       maintain_order="left")  # fmt: skip
    else:
        out = out.with_columns(pl.lit(None, dtype=pl.String).alias("SubAccountName"))
    helpers = [
        "page",
        "key_head",
        "filter_account",
        "_unit",
        "_tags",
        *(f"_tag{i}" for i in range(len(layout.tags))),
    ]
    return out.drop(*helpers, *(f"k{i}" for i in range(layout.width)))


def _frame(payloads: list, ingested_at: datetime, billing_account_id: str | None) -> pl.DataFrame:
    """The conformed rows of the whole batch (raises what FALLBACK lists for the per-record path)."""
    batches, names_rows = _batches(payloads, billing_account_id)
    if not batches:
        return conform(pl.DataFrame(schema=POLARS_SCHEMA), SOURCE)
    pages, values, descriptions = zip(*names_rows, strict=True) if names_rows else ((), (), ())
    names = pl.DataFrame({"page": pl.Series(pages, dtype=pl.Int64), "value": strings(values),
                          "SubAccountName": strings(descriptions)}).unique(["page", "value"], keep="last")  # fmt: skip
    frames = [_batch_frame(layout, batch, names) for layout, batch in batches.items()]
    frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    if len(frames) > 1:
        frame = frame.sort("_pos")
    frame = frame.with_columns(line_ids(frame["_key"]), *(pl.lit(v).alias(k) for k, v in
                                                           constant_columns(ingested_at).items()))  # fmt: skip
    return conform(frame.drop("_key", "_pos"), SOURCE)


def columnar_frame(
    payloads: list, ingested_at: datetime, billing_account_id: str | None = None
) -> pl.DataFrame | None:
    """The conformed rows, or None when the batch holds a shape (or a bad record) for the per-record path."""
    try:
        with collection_paused():
            return _frame(payloads, ingested_at, billing_account_id)
    except FALLBACK:
        return None
