"""The SQL that reads one FOCUS export file: column mapping, parsing, row checks and the line-id hash.

Pure SQL text (identifiers only, every value bound as a parameter); focus_export.py runs it. The rules it
implements are documented there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlcost_pipeline.normalize.focus_schema import (
    CHARGE_CATEGORIES,
    FOCUS_COLUMNS,
    MANDATORY_NOT_NULL,
    MONEY_SQL,
    NormalizationError,
)

SOURCE = "focus_export"
LEGACY_NAMES = {
    "Provider": "ProviderName", "Publisher": "PublisherName", "InvoiceIssuer": "InvoiceIssuerName",
    "UsageQuantity": "ConsumedQuantity", "UsageUnit": "ConsumedUnit", "AmortizedCost": "EffectiveCost",
    "ChargeType": "ChargeCategory", "Region": "RegionId",
}  # fmt: skip
ADDED_IN = {
    "1.2": {"BillingAccountType", "SubAccountType", "InvoiceId", "PricingCurrency",
            "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice"},
    "1.1": {"CapacityReservationId", "CapacityReservationStatus", "CommitmentDiscountQuantity",
            "CommitmentDiscountUnit", "ServiceSubcategory", "SkuMeter", "SkuPriceDetails"},
}  # fmt: skip
KEPT_X_COLUMNS = ("x_ResourceGroupName", "x_CurrencyConversionRate")
# Columns we read from a file: every contract column except the ones this reader computes.
TARGETS = {c: t for c, t in FOCUS_COLUMNS if not c.startswith("x_") or c in KEPT_X_COLUMNS}
# What identifies a charge: x_LineId hashes these parsed values (amounts and descriptive columns are left out: an
# identical key is rare and then gets a suffix in the order of the rows' values; hashing every column cost ~6x more).
ID_COLUMNS = (
    "BillingAccountId", "SubAccountId", "ProviderName", "ServiceName", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargePeriodStart", "ChargePeriodEnd", "CommitmentDiscountId", "PricingCategory",
    "RegionId", "ResourceId", "SkuId", "SkuPriceId", "BillingCurrency", "Tags",
)  # fmt: skip
BAD_ROW_MARKER = "mlcost-focus-bad-row"
FALLBACKS = {  # absent column -> the column it copies, or a literal
    "ContractedCost": "ListCost", "ListCost": "ContractedCost", "PublisherName": "ProviderName",
    "InvoiceIssuerName": "ProviderName", "ServiceCategory": "'Other'", "ServiceProviderName": "PublisherName",
    "HostProviderName": "ProviderName",
}  # fmt: skip
_TZ_SUFFIX = r"[+-]\d\d:?\d\d$"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_parquet(path: str) -> bool:
    return path.lower().endswith((".parquet", ".parq"))


def scan_sql(path: str) -> str:
    if _is_parquet(path):
        return "read_parquet($path, file_row_number = true)"
    return "read_csv($path, all_varchar = true, header = true, nullstr = ['', 'null', 'NULL'])"


def _stem(path: str) -> str:
    name = Path(path).name
    return name.split(".", 1)[0] if not name.startswith(".") else name


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _version(targets: set[str], legacy: bool) -> str:
    for version in ("1.2", "1.1"):
        if targets & ADDED_IN[version]:
            return version
    return "1.0-preview" if legacy else "1.0"


def _parse(name: str, sql_type: str, src: str, src_type: str) -> str:
    """SQL turning one source column into the contract's type (NULL where it does not parse)."""
    col = _q(src)
    is_text = src_type in ("VARCHAR", "JSON")
    if sql_type == "TIMESTAMP":
        if src_type == "DATE":
            value = f"CAST({col} AS TIMESTAMP)"
        elif src_type.startswith("TIMESTAMP WITH TIME ZONE"):
            value = f"timezone('UTC', {col})"
        elif src_type.startswith("TIMESTAMP"):
            value = f"CAST({col} AS TIMESTAMP)"
        else:
            s = f"trim(CAST({col} AS VARCHAR))"
            value = (f"CASE WHEN {s} LIKE '%Z' THEN TRY_CAST(rtrim({s}, 'Z') AS TIMESTAMP) "
                     f"WHEN length({s}) > 10 AND regexp_matches({s}, '{_TZ_SUFFIX}') "
                     f"THEN timezone('UTC', TRY_CAST({s} AS TIMESTAMPTZ)) ELSE TRY_CAST({s} AS TIMESTAMP) END")
        # 'infinity' parses as a timestamp; no charge period is infinite, so it is a value that does not parse.
        value = f"CASE WHEN isfinite({value}) THEN {value} END"
        if name == "BillingPeriodEnd":  # an inclusive end (date only, or 23:59:59) -> the next midnight
            date_only = "true" if src_type == "DATE" else (f"length(trim({col})) = 10" if is_text else "false")
            value = (f"CASE WHEN {date_only} OR ({value}) - date_trunc('day', {value}) >= INTERVAL '23:59:59' "
                     f"THEN date_trunc('day', {value}) + INTERVAL 1 DAY ELSE {value} END")
        return value
    if sql_type == MONEY_SQL:
        return f"TRY_CAST({'trim(' + col + ')' if is_text else col} AS {MONEY_SQL})"
    if name == "Tags" and src_type.startswith(("MAP", "STRUCT")):
        return f"CAST(to_json({col}) AS VARCHAR)"
    if name == "Tags":
        t = f"trim(CAST({col} AS VARCHAR))"
        return f"CASE WHEN {t} = '' THEN NULL WHEN {t} LIKE '\"%' THEN '{{' || {t} || '}}' ELSE {t} END"
    return f"NULLIF(CAST({col} AS VARCHAR), '')"


def _out_type(sql_type: str) -> str:
    return "VARCHAR" if sql_type == "JSON" else sql_type  # JSON is checked by _problems, not by a failing cast


def _problems(parsed: dict[str, str | None], present: set[str]) -> str:
    """SQL naming what is wrong with a row ('' when nothing): unparseable values, nulls, bad enums, bad tags."""
    checks = []
    for name, raw in parsed.items():
        if raw is not None and TARGETS[name] != "VARCHAR":
            checks.append((f"{raw} IS NOT NULL AND {_q(name)} IS NULL",
                           f"{name}: cannot parse ' || chr(34) || CAST({raw} AS VARCHAR) || chr(34) || '"))
    for name in (c for c in MANDATORY_NOT_NULL if c in present):
        raw = parsed.get(name)
        checks.append((f"{raw or _q(name)} IS NULL", f"{name}: mandatory value is empty"))
    for period in ("ChargePeriod", "BillingPeriod"):  # an end before its start is a broken row, not a refund
        if {f"{period}Start", f"{period}End"} <= present:
            checks.append((f'"{period}End" < "{period}Start"', f"{period}End: before {period}Start"))
    allowed = ", ".join(f"'{c}'" for c in CHARGE_CATEGORIES)
    checks.append((f'NOT list_contains([{allowed}], "ChargeCategory")',
                   f"ChargeCategory: not one of {', '.join(CHARGE_CATEGORIES)}"))
    # CASE, not AND: DuckDB may evaluate both sides of an AND, and json_type() fails on malformed JSON.
    if "Tags" in present:
        checks.append(("CASE WHEN NOT json_valid(\"Tags\") THEN true WHEN json_type(\"Tags\") <> 'OBJECT' THEN true "
                       "ELSE list_has_any(json_type(\"Tags\", '$.*'), ['OBJECT', 'ARRAY']) END",
                       "Tags: not a flat JSON object"))
    if "SkuPriceDetails" in present:
        checks.append(("CASE WHEN NOT json_valid(\"SkuPriceDetails\") THEN true "
                       "ELSE json_type(\"SkuPriceDetails\") <> 'OBJECT' END", "SkuPriceDetails: not a JSON object"))
    return "concat_ws('; ', " + ", ".join(f"CASE WHEN {cond} THEN '{msg}' END" for cond, msg in checks) + ")"


@dataclass(frozen=True)
class FileSql:
    """SQL over one file: `relation` yields the parsed contract columns, `__raw_<column>` and `__row` (1-based)."""

    path: str
    version: str
    relation: str
    columns: str  # the contract's file columns, cast to their types (a SELECT list over `relation`)
    problem: str  # '' when the row is fine, else what is wrong (column and value)
    line_hash: str  # md5 over ('focus_export', $stem, the ID_COLUMNS values)
    params: dict[str, object]  # what `relation` binds
    stem: str  # the file's name without extensions: bind as $stem with `line_hash`

    def guard(self) -> str:
        """A WHERE condition: true for the window's rows; fails the query on any bad row, in or out of the window,
        and on an unknown currency in the window (needs $start, $end, $currencies)."""
        return (f"CASE WHEN ({self.problem}) <> '' THEN error('{BAD_ROW_MARKER} ' || CAST(__row AS VARCHAR)) "
                f"WHEN NOT {IN_WINDOW} THEN false "
                f"WHEN NOT list_contains($currencies, \"BillingCurrency\") "
                f"THEN error('{BAD_ROW_MARKER} ' || CAST(__row AS VARCHAR)) ELSE true END")


IN_WINDOW = '("ChargePeriodStart" >= $start AND "ChargePeriodStart" < $end)'


def file_sql(path: str, columns: list[tuple[str, str]], defaults: Mapping[str, str]) -> FileSql:
    """The SQL reading one file whose columns (name, DuckDB type) are `columns`; raises on a missing column."""
    by_lower = {name.lower(): (name, typ) for name, typ in columns}
    found = {t: by_lower[t.lower()] for t in TARGETS if t.lower() in by_lower}
    legacy = False
    for old, new in LEGACY_NAMES.items():
        if new not in found and old.lower() in by_lower:
            found[new], legacy = by_lower[old.lower()], True
    parsed: dict[str, str] = {}  # target -> SQL over the file's columns or a bound default
    raws: dict[str, str | None] = {}  # target -> the source value before parsing (None for defaults)
    for target, sql_type in TARGETS.items():
        if target in found:
            src, src_type = found[target]
            parsed[target] = _parse(target, sql_type, src, src_type)
            raws[target] = f"NULLIF(trim({_q(src)}), '')" if src_type in ("VARCHAR", "JSON") else _q(src)
        elif target in defaults:
            parsed[target], raws[target] = f"CAST($default_{target} AS VARCHAR)", None
    derived: dict[str, str] = {}  # target -> a parsed column it copies, or a literal
    for target, fallback in FALLBACKS.items():
        if target not in parsed and target not in derived:
            source = fallback if fallback.startswith("'") else derived.get(fallback, fallback)
            if source.startswith("'") or source in parsed:
                derived[target] = source
    for target in ("ListCost", "ContractedCost"):
        if target not in parsed and target not in derived and "EffectiveCost" in parsed:
            derived[target] = "EffectiveCost"
    present = set(parsed) | set(derived)
    missing = [c for c in MANDATORY_NOT_NULL if c in TARGETS and c not in present]
    if missing:
        more = f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""
        raise NormalizationError(f"{SOURCE}: file {path}: missing mandatory FOCUS column {missing[0]}{more}")
    row_number = "file_row_number + 1" if _is_parquet(path) else "row_number() OVER ()"
    inner = ", ".join([*(f"{e} AS {_q(t)}" for t, e in parsed.items()),
                       *(f"{r} AS {_q('__raw_' + t)}" for t, r in raws.items() if r is not None),
                       f"{row_number} AS __row"])
    copies = "".join(f", {s if s.startswith(chr(39)) else _q(s)} AS {_q(t)}" for t, s in derived.items())
    cols = ", ".join(f"CAST({_q(c) if c in present else 'NULL'} AS {_out_type(t)}) AS {_q(c)}"
                     for c, t in TARGETS.items())
    problems = _problems({t: (_q("__raw_" + t) if r is not None else None) for t, r in raws.items()}, present)
    values = ", ".join(f"coalesce(CAST({_q(c)} AS VARCHAR), chr(30))" for c in ID_COLUMNS if c in present)
    relation = f"(SELECT *{copies} FROM (SELECT {inner} FROM {scan_sql(path)}))"  # noqa: S608 (identifiers only)
    used = {t for t in parsed if raws[t] is None}
    return FileSql(
        path=path, version=_version(set(found), legacy), relation=relation, columns=cols, problem=problems,
        line_hash=f"md5(concat_ws(chr(31), '{SOURCE}', $stem, {values}))",
        params={"path": path, **{f"default_{c}": defaults[c] for c in used}}, stem=_stem(path),
    )
