"""SQL fragments over one CUR file's columns: money and quantity terms, dimensions, the Tags object.

Pure SQL text (identifiers quoted, tag keys bound as a parameter); aws_cur_sql assembles the SELECT. A money
term renders as an exact DECIMAL(38,12) when every column it reads is typed (Parquet) and as text when one is
text (CSV): the reader parses the text, and a sum whose part does not parse yields that part as the file has
it, so the reader's error names the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlcost_pipeline.normalize.aws_cur_columns import Layout
from mlcost_pipeline.normalize.focus_schema import MONEY_SQL

_TEXT = ("VARCHAR", "JSON")
_FLOATS = ("DOUBLE", "FLOAT", "REAL")


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def in_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(lit(v) for v in values) + ")"


@dataclass(frozen=True)
class Term:
    """A money or quantity term: a field, the sum or difference of two, the first present of two, 0, null."""

    op: str  # "field" | "+" | "-" | "coalesce" | "zero" | "null"
    a: str | None = None
    b: str | None = None

    def fields(self) -> list[str]:
        return [f for f in (self.a, self.b) if f]


def field(name: str) -> Term:
    return Term("field", name)


ZERO, NULL = Term("zero"), Term("null")


class Sql:
    """SQL over one file's columns; records which file columns each FOCUS column reads (for the errors)."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.used: dict[str, set[str]] = {}
        # Per-line values computed once, in a projection under the row split (`leaf_select`). The reader's row
        # checks are filters, and DuckDB pushes a filter down by substituting the expressions of the
        # projections it crosses: anything costly above the split runs once per reference (5x for Tags).
        self.leaves: dict[str, str] = {}

    def _leaf(self, alias: str, expr: str) -> str:
        self.leaves.setdefault(alias, expr)
        return q(alias)

    def leaf_select(self) -> str:
        return "".join(f", {expr} AS {q(alias)}" for alias, expr in self.leaves.items())

    def col(self, name: str) -> str:
        c = self.layout.column(name)
        return q(c[0]) if c else "NULL"

    def _type(self, name: str) -> str | None:
        c = self.layout.column(name)
        return c[1] if c else None

    def text(self, name: str) -> str:
        """A dimension as text, '' as null; CUR 2.0 product attributes come from the `product` map."""
        c = self.layout.column(name)
        if c is not None:
            return f"NULLIF({q(c[0]) if c[1] in _TEXT else f'CAST({q(c[0])} AS VARCHAR)'}, '')"
        mapped = self.layout.product_map(name)
        if mapped is None:
            return "NULL"
        (col, typ), key = mapped
        if typ.startswith("MAP"):
            return self._leaf(f"__product_{key}", f"NULLIF({q(col)}[{lit(key)}], '')")
        # CUR 2.0 delivered as CSV writes the map as JSON text; other text has no product attributes to give.
        value = f"NULLIF(json_extract_string({q(col)}, {lit('$.' + key)}), '')"
        return self._leaf(f"__product_{key}", f"CASE WHEN json_valid({q(col)}) THEN {value} END")

    def _num(self, name: str) -> str:
        typ = self._type(name)
        if typ is None:
            return "NULL"
        col = self.col(name)
        if typ in _TEXT:
            expr = f"TRY_CAST(trim({col}) AS {MONEY_SQL})"
        elif typ in _FLOATS:
            # The digits AWS wrote are the double's shortest round-trip text. A direct cast gives exactly
            # those below 1,000 (checked on 2M random values of up to 12 decimals) and is 3x cheaper; above,
            # it is off in the last digits (1234567.123456789 -> ...788992): larger amounts go via the text.
            expr = (f"CASE WHEN abs({col}) < 1000 THEN CAST({col} AS {MONEY_SQL}) "
                    f"ELSE TRY_CAST(CAST({col} AS VARCHAR) AS {MONEY_SQL}) END")
        else:
            expr = f"TRY_CAST({col} AS {MONEY_SQL})"
        return self._leaf(f"__n_{name}", expr)

    def _bad(self, name: str) -> str:
        if self._type(name) not in _TEXT:
            return "false"
        return f"(NULLIF(trim({self.col(name)}), '') IS NOT NULL AND {self._num(name)} IS NULL)"

    def _raw(self, name: str) -> str:
        typ = self._type(name)
        if typ is None:
            return "NULL"
        return self.col(name) if typ in _TEXT else f"CAST({self.col(name)} AS VARCHAR)"

    def _render(self, term: Term, text: bool) -> str:
        if term.op == "null":
            return "NULL"
        if term.op == "zero":
            return "'0'" if text else f"CAST(0 AS {MONEY_SQL})"
        if term.op == "field":
            return self._raw(term.a) if text else self._num(term.a)
        if term.op == "coalesce":
            if text:
                return f"coalesce(NULLIF(trim({self._raw(term.a)}), ''), {self._raw(term.b)})"
            return f"coalesce({self._num(term.a)}, {self._num(term.b)})"
        a, b = f"coalesce({self._num(term.a)}, 0)", f"coalesce({self._num(term.b)}, 0)"
        value = f"CAST({a} {term.op} {b} AS {MONEY_SQL})"
        if not text:
            return value
        return (f"CASE WHEN {self._bad(term.a)} THEN {self._raw(term.a)} WHEN {self._bad(term.b)} "
                f"THEN {self._raw(term.b)} ELSE CAST({value} AS VARCHAR) END")

    def amount(self, target: str, branches: list[tuple[str, Term]], default: Term) -> str:
        """A CASE over the branches (the first true one wins); text when any column it reads is text."""
        terms = [t for _, t in branches] + [default]
        names = [f for t in terms for f in t.fields() if self.layout.column(f)]
        self.used.setdefault(target, set()).update(self.layout.column(f)[0] for f in names)
        text = any(self._type(f) in _TEXT for f in names)
        if not branches:
            return self._render(default, text)
        whens = " ".join(f"WHEN {cond} THEN {self._render(t, text)}" for cond, t in branches)
        return f"CASE {whens} ELSE {self._render(default, text)} END"

    def nonzero_or_bad(self, term: Term) -> str:
        """True when a sum term is not 0, or when a part of it does not parse (the reader then names it)."""
        value = f"coalesce({self._num(term.a)}, 0) {term.op} coalesce({self._num(term.b)}, 0)"
        return f"({self._bad(term.a)} OR {self._bad(term.b)} OR {value} <> 0)"

    def tags(self, params: dict[str, object], prefix: str) -> str:
        """Tags as flat JSON object text, user tags unprefixed and AWS's as `aws:` (aws_cur_columns.snake_tag_key),
        null when untagged.

        Built as text (measured on 1M rows: map and list lambdas cost 2-9 s, this 0.3 s): CUR 2.0's map is
        serialized once and its key prefixes rewritten where a key starts (`{"user_`, `,"user_`: in valid
        JSON a quote inside a string is escaped, so these occur only before a key); legacy tag columns are
        joined as `"key":value` pairs, empty values left out.
        """
        mapped = self.layout.tag_map()
        if mapped is not None:
            col, typ, snake_keys = q(mapped[0]), mapped[1], mapped[2]
            rename = _prefixed if snake_keys else (lambda text: text)
            if typ.startswith("MAP"):
                text = rename(f"CAST(to_json({col}) AS VARCHAR)")
                return self._leaf("__tags", f"CASE WHEN cardinality({col}) > 0 THEN {text} END")
            # CUR 2.0 as CSV: the map is JSON text (re-serialized compactly first); other text passes through
            # for the reader's Tags check.
            text = rename(f"CAST(json({col}) AS VARCHAR)")
            return self._leaf("__tags", f"CASE WHEN NULLIF(trim({col}), '') IS NULL OR trim({col}) = '{{}}' "
                                        f"THEN NULL WHEN json_valid({col}) THEN {text} ELSE {col} END")
        columns = self.layout.tag_columns()
        if not columns:
            return "NULL"
        params[f"{prefix}_tag_keys"] = [key for _, key in columns]
        pairs = ", ".join(f"CASE WHEN {q(c)} <> '' THEN to_json(${prefix}_tag_keys[{i}]) || ':' || "
                          f"to_json(CAST({q(c)} AS VARCHAR)) END" for i, (c, _) in enumerate(columns, 1))
        return self._leaf("__tags", f"NULLIF('{{' || concat_ws(',', {pairs}) || '}}', '{{}}')")


def _prefixed(json_text: str) -> str:
    """Keys `user_<k>` / `aws_<k>` of a compact JSON object renamed `<k>` / `aws:<k>` (snake_tag_key)."""
    out = json_text
    for snake_prefix, prefix in (('"user_', '"'), ('"aws_', '"aws:')):
        for start in ("{", ","):
            out = f"replace({out}, {lit(start + snake_prefix)}, {lit(start + prefix)})"
    return out
