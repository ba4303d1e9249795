"""Columnar building blocks for the API normalizers (Cost Explorer pages, BigQuery export rows): records -> columns.

Source: records as landing hands them over (lists of dicts from JSON, numbers as str, int, float or Decimal).
Grain: one value per record and field. A window holds tens of thousands of records, so each field is read once
for all records from C (`operator.itemgetter`, `map`), a few hundred records at a time so they stay in cache, and
the parsing, arithmetic, escaping and hashing run in polars. Every helper returns exactly what the per-record
path computes for the same value, or raises `Unhandled`; the normalizer then runs its per-record path, which gives
the same result or the precise error message.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from hashlib import sha256
from itertools import chain, repeat

import numpy as np
import polars as pl

from mlcost_pipeline.normalize.focus_schema import MONEY

EMPTY: dict = {}  # read-only: what a missing record-valued field reads as
_NONE = type(None)
_NUMBERS = frozenset({str, int, float, Decimal, _NONE})
_CHUNK = 256  # records per pass: a chunk of records stays in cache while each of its fields is read
# Exact in DECIMAL(38,12) as written, and a sum of up to nine of them stays within Decimal's 28 digits.
_CANONICAL_NUMBER = r"^-?[0-9]{1,15}(\.[0-9]{1,12})?$"
# Python's json encoder (ensure_ascii=False) escapes exactly these characters.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES |= {chr(c): f"\\u{c:04x}" for c in range(32) if chr(c) not in _ESCAPES}


class Unhandled(Exception):
    """A shape the columnar path does not take, or bad input: the per-record path decides."""


# What reading a shape nobody foresaw raises; the per-record path then names the record, or handles it.
FALLBACK = (Unhandled, KeyError, IndexError, TypeError, AttributeError, ValueError, ArithmeticError,
            pl.exceptions.PolarsError)  # fmt: skip


@contextmanager
def collection_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a batch is read: reading a window allocates hundreds of thousands
    of lists and strings, each allocation burst makes the collector walk every payload still alive (a full pass
    costs up to a third of the normalizer), and none of them forms a cycle. Collection resumes, not skipped, on
    exit; a caller that had paused it keeps it paused."""
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()


def only(values: Sequence, allowed: type | tuple[type, ...]) -> None:
    """Unhandled unless every value's type is exactly one of `allowed` (no subclasses: bool is not an int)."""
    allowed = allowed if isinstance(allowed, tuple) else (allowed,)
    if not set(map(type, values)) <= set(allowed):
        raise Unhandled


def fields(records: Sequence[dict], keys: Sequence[str]) -> list[list]:
    """Each key's values across `records`, None where a record lacks the key (TypeError if one is not a dict)."""
    if len(keys) == 1:
        return [list(map(dict.get, records, repeat(keys[0])))]
    out: list[list] = [[] for _ in keys]
    for start in range(0, len(records), _CHUNK):
        part = records[start : start + _CHUNK]
        for column, key in zip(out, keys, strict=True):
            column.extend(map(dict.get, part, repeat(key)))
    return out


def nested(values: list) -> list[dict]:
    """Record-valued fields with None read as {}, as the per-record path reads them."""
    types = set(map(type, values))
    if types <= {dict}:
        return values
    if types <= {dict, _NONE}:
        return [EMPTY if v is None else v for v in values]
    raise Unhandled


def strings(values: Sequence, name: str = "") -> pl.Series:
    """Text values (None as null) as a String series; a value of any other type is Unhandled."""
    try:
        return pl.Series(name, values, dtype=pl.String, strict=True)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:  # a number, a list, a lone surrogate
        raise Unhandled from exc


def number_texts(values: list, name: str = "") -> pl.Series:
    """Numbers as the per-record path reads them, `str(value)`, None as null; bool or any other type Unhandled."""
    types = set(map(type, values))
    if not types <= _NUMBERS:
        raise Unhandled
    if types <= {str, _NONE}:
        texts = values
    elif _NONE in types:
        texts = [None if v is None else str(v) for v in values]
    else:
        texts = list(map(str, values))
    return pl.Series(name, texts, dtype=pl.String)


def canonical_numbers(texts: pl.Series) -> pl.Series:
    """True where the text is a plain decimal that DECIMAL(38,12) holds exactly (null stays null)."""
    return texts.str.contains(_CANONICAL_NUMBER)


def decimals(texts: pl.Series, precise: Callable[[str], Decimal]) -> pl.Series:
    """DECIMAL(38,12) from number texts: plain ones cast as written, any other once per distinct text through
    `precise` (the per-record path's own conversion: rounding, range and finiteness rules, errors)."""
    odd = texts.filter(~canonical_numbers(texts)).unique()
    if odd.len():
        odd_texts = odd.to_list()
        texts = texts.replace(odd_texts, [format(precise(t), "f") for t in odd_texts])
    return texts.cast(MONEY, strict=True)


def json_text(expr: pl.Expr) -> pl.Expr:
    """The JSON text `json.dumps(value, ensure_ascii=False)` writes for a text value (null: `null`)."""
    escaped = expr.str.replace_many(list(_ESCAPES), list(_ESCAPES.values()))
    return (
        pl.when(expr.is_null())
        .then(pl.lit("null"))
        .otherwise(pl.concat_str([pl.lit('"'), escaped, pl.lit('"')]))
    )


def key_head(source_system: str, *parts: str | None) -> str:
    """The start of the text focus_schema.line_ids hashes, for the key's leading parts: `["<source>", ...` ."""
    return json.dumps([source_system, *parts], ensure_ascii=False)[:-1]


def key_text(head: pl.Expr, columns: Sequence[pl.Expr]) -> pl.Expr:
    """The whole text: json.dumps([source_system, *key]) from its head (key_head) and the parts that follow."""
    parts = pl.concat_str([json_text(c) for c in columns], separator=", ")
    return pl.concat_str([head, pl.lit(", "), parts, pl.lit("]")])


def line_ids(key_texts: pl.Series) -> pl.Series:
    """focus_schema.line_ids from the key texts: the same ids, `-<n>` on the n-th repeat in row order."""
    digests = [h.hexdigest()[:32] for h in map(sha256, map(str.encode, key_texts.to_list()))]
    ids = pl.Series("x_LineId", digests, dtype=pl.String)
    repeated = ids.is_duplicated()
    if not repeated.any():
        return ids
    at = repeated.arg_true()  # only rows whose key repeats are numbered (numbering every row costs more)
    digest, seen = pl.col("x_LineId"), pl.int_range(pl.len()).over("x_LineId")
    numbered = (
        ids.gather(at)
        .to_frame()
        .select(
            pl.when(seen == 0)
            .then(digest)
            .otherwise(pl.concat_str([digest, pl.lit("-"), seen.cast(pl.String)]))
        )
    )
    return ids.scatter(at, numbered.to_series())


def pairs(lists: list) -> pl.DataFrame:
    """Label lists ([{key, value}], None as []) as rows (row, key, value) in row, then list order."""
    only(lists, (list, _NONE))
    if _NONE in set(map(type, lists)):
        lists = [() if v is None else v for v in lists]
    sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = list(chain.from_iterable(lists))
    keys, values = fields(flat, ("key", "value"))
    key = strings(keys, "key")
    if key.null_count():  # a label without key (or a null one): the per-record path decides
        raise Unhandled
    rows = np.repeat(np.arange(len(lists), dtype=np.int64), sizes)
    return pl.DataFrame([pl.Series("row", rows), key, strings(values, "value")])


def sorted_by_row(items: pl.DataFrame, key: str, *, last_only: bool = False) -> pl.DataFrame:
    """Items by (row, `key`), keys compared as Python compares str, ties in their order; with `last_only`, only
    the last item of each (row, key), as a dict built in that order keeps it."""
    if not items.height:
        return items
    distinct = sorted(items[key].unique().to_list())
    ordinal = items[key].replace_strict(distinct, list(range(len(distinct))), return_dtype=pl.Int64).to_numpy()
    composite = items["row"].to_numpy() * len(distinct) + ordinal
    order = np.argsort(composite, kind="stable")
    if last_only:
        ranked = composite[order]
        order = order[np.append(ranked[1:] != ranked[:-1], True)]
    return items[order]


def joined_by_row(items: pl.DataFrame, n: int, text: pl.Expr) -> pl.Series:
    """Per row 0..n-1, the `text` of its items (sorted by row) in their order, joined with ","; null without items."""
    empty = pl.Series(dtype=pl.String).extend_constant(None, n)
    if not items.height:
        return empty
    texts = items.select(text).to_series()
    rows = items["row"].to_numpy()
    slots = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")  # each item's place in its row
    parts = []
    for slot in range(int(slots.max()) + 1):  # a row has a few labels: one scatter per place, no grouping
        at = slots == slot
        parts.append(empty.clone().scatter(rows[at], texts.filter(pl.Series(at))).alias(f"p{slot}"))
    joined = pl.DataFrame(parts).select(pl.concat_str(pl.all(), separator=",", ignore_nulls=True)).to_series()
    return joined.zip_with(joined != "", empty)
