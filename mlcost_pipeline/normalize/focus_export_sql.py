"""The SQL that reads one export file as FOCUS: scan, column mapping, parsing, row checks and the line-id hash.

Pure SQL text (identifiers only, every value bound as a parameter); focus_export.py runs it. The rules it
implements are documented there. A FOCUS file is read as it is; any other dataset (export_datasets) is first turned
into FOCUS-named columns by its converter, and from there every dataset is parsed and checked by the same SQL.

Checks come in two strengths. A problem in a column that decides money, currency, date or identity (STRICT_COLUMNS,
plus the rules' cost basis) refuses the file: the guard fails the query, naming the row. A problem anywhere else
loads the row (the value becomes null, or a mandatory column its documented fallback) and is reported in
`quality` / `quality_detail`, which the landing step counts for the data-quality check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
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
# Money, currency, date and identity: a row these do not parse for is refused, never loaded (docs/exports.md).
STRICT_COLUMNS = (
    "BilledCost", "EffectiveCost", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd", "BillingAccountId",
    "ChargeCategory",
)  # fmt: skip
BAD_ROW_MARKER = "mlcost-focus-bad-row"


def strict_columns(cost_basis: str = "EffectiveCost") -> frozenset[str]:
    """STRICT_COLUMNS and the column the allocation rules split (rules' cost_basis)."""
    return frozenset((*STRICT_COLUMNS, cost_basis))

FALLBACKS = {  # absent column -> the column it copies, or a literal
    "ContractedCost": "ListCost", "ListCost": "ContractedCost", "PublisherName": "ProviderName",
    "InvoiceIssuerName": "ProviderName", "ServiceCategory": "'Other'", "ServiceProviderName": "PublisherName",
    "HostProviderName": "ProviderName",
}  # fmt: skip
# A mandatory column that is present but empty on a row (and not strict) loads with the first non-null of these.
NULL_FALLBACKS = {
    "ContractedCost": ('"ListCost"', '"EffectiveCost"'),
    "ListCost": ('"ContractedCost"', '"EffectiveCost"'),
    "PublisherName": ('"ProviderName"',),
    "InvoiceIssuerName": ('"ProviderName"',),
    "ProviderName": ('"PublisherName"', '"InvoiceIssuerName"', "'Unknown'"),
    "ServiceCategory": ("'Other'",),
    "ServiceName": ("'Unknown'",),
    "BillingPeriodStart": ("date_trunc('month', \"ChargePeriodStart\")",),
    "BillingPeriodEnd": ("date_trunc('month', \"ChargePeriodStart\") + INTERVAL 1 MONTH",),
}
_TZ_SUFFIX = r"[+-]\d\d:?\d\d$"
_NULLS = "['', 'null', 'NULL']"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def is_parquet(path: str) -> bool:
    return path.lower().endswith((".parquet", ".parq"))


def scan_sql(path: str) -> str:
    """The file's own columns plus `__row`, its 1-based data-row position; binds $path."""
    if is_parquet(path):
        return ("(SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS __row "
                "FROM read_parquet($path, file_row_number = true))")
    return (f"(SELECT *, row_number() OVER () AS __row FROM read_csv($path, all_varchar = true, header = true, "
            f"nullstr = {_NULLS}))")


def file_stem(path: str) -> str:
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
    if name == "ChargeCategory":  # the spec's values, whatever their case ('usage' is Usage)
        t = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
        cases = " ".join(f"WHEN {_lit(c.lower())} THEN {_lit(c)}" for c in CHARGE_CATEGORIES)
        return f"CASE lower({t}) {cases} ELSE {t} END"
    return f"NULLIF(CAST({col} AS VARCHAR), '')"


def _out_type(sql_type: str) -> str:
    return "VARCHAR" if sql_type == "JSON" else sql_type  # JSON is checked by _checks, not by a failing cast


_TAGS_BAD = ("CASE WHEN NOT json_valid(\"Tags\") THEN true WHEN json_type(\"Tags\") <> 'OBJECT' THEN true "
             "ELSE list_has_any(json_type(\"Tags\", '$.*'), ['OBJECT', 'ARRAY']) END")
_SKU_DETAILS_BAD = ("CASE WHEN NOT json_valid(\"SkuPriceDetails\") THEN true "
                    "ELSE json_type(\"SkuPriceDetails\") <> 'OBJECT' END")


@dataclass(frozen=True)
class Check:
    column: str
    condition: str  # SQL over the parsed relation: true when the row breaks the rule
    message: str  # SQL text fragment (inside a string literal) saying what is wrong
    may_refuse: bool = True  # False: a known provider error, counted even in a strict column, never refused


def _checks(parsed: dict[str, str | None], present: set[str]) -> list[Check]:
    """Every rule a row is held to; which ones refuse the file is decided by the strict column set."""
    checks = []
    for name, raw in parsed.items():
        if raw is not None and TARGETS[name] != "VARCHAR":
            checks.append(Check(name, f"{raw} IS NOT NULL AND {_q(name)} IS NULL",
                                f"cannot parse ' || chr(34) || CAST({raw} AS VARCHAR) || chr(34) || '"))
    for name in (c for c in MANDATORY_NOT_NULL if c in present):
        raw = parsed.get(name)
        checks.append(Check(name, f"{raw or _q(name)} IS NULL", "mandatory value is empty"))
    for period in ("ChargePeriod", "BillingPeriod"):  # an end before its start is a broken row, not a refund
        if {f"{period}Start", f"{period}End"} <= present:
            checks.append(Check(f"{period}End", f'"{period}End" < "{period}Start"', f"before {period}Start"))
    allowed = ", ".join(_lit(c) for c in CHARGE_CATEGORIES)
    checks.append(Check("ChargeCategory", f'NOT list_contains([{allowed}], "ChargeCategory")',
                        f"not one of {', '.join(CHARGE_CATEGORIES)}"))
    # CASE, not AND: DuckDB may evaluate both sides of an AND, and json_type() fails on malformed JSON.
    if "Tags" in present:
        checks.append(Check("Tags", _TAGS_BAD, "not a flat JSON object"))
    if "SkuPriceDetails" in present:
        checks.append(Check("SkuPriceDetails", _SKU_DETAILS_BAD, "not a JSON object"))
    # Known provider errors (Microsoft FocusCost: finops-toolkit #1092, #834): loaded as they are, counted.
    if {"CommitmentDiscountId", "EffectiveCost"} <= present:
        checks.append(Check("EffectiveCost", "\"ChargeCategory\" = 'Purchase' AND \"CommitmentDiscountId\" IS NOT NULL "
                                             "AND \"EffectiveCost\" <> 0",
                            "a commitment purchase with EffectiveCost <> 0 (FOCUS: 0, amortized into usage)", False))
    if {"CommitmentDiscountStatus", "EffectiveCost", "BilledCost"} <= present:
        checks.append(Check("EffectiveCost", "\"CommitmentDiscountStatus\" = 'Unused' AND \"EffectiveCost\" = 0 "
                                             "AND \"ChargeCategory\" = 'Usage'",
                            "unused commitment with EffectiveCost 0 (its cost is the waste)", False))
    return checks


def _problem_text(checks: list[Check], source_of: Mapping[str, str]) -> str:
    if not checks:
        return "''"
    parts = []
    for c in checks:
        origin = f" (from {source_of[c.column]})" if c.column in source_of else ""
        parts.append(f"CASE WHEN {c.condition} THEN '{c.column}{origin.replace(chr(39), chr(39) * 2)}: {c.message}' END")
    return "concat_ws('; ', " + ", ".join(parts) + ")"


@dataclass(frozen=True)
class FileSql:
    """SQL over one file: `relation` yields the parsed contract columns, `__raw_<column>` and `__row` (1-based)."""

    path: str
    version: str  # x_ExportVersion's prefix: focus-<version> or the converted dataset
    relation: str
    columns: str  # the contract's file columns, cast, with tolerated problems nulled or filled (a SELECT list)
    problem: str  # '' when nothing refuses the row, else what does (column and value)
    quality: str  # the list of columns with a tolerated problem on the row (VARCHAR[]; empty when none)
    quality_detail: str  # what those problems are, with the values
    line_hash: str  # md5 over ('focus_export', $stem, the ID_COLUMNS values): for rows that are not a file's
    line_id: str  # a file's row: $file_id (its sha256, 16 hex) '-' its 1-based position in the file
    params: dict[str, object]  # what `relation` binds
    stem: str  # the file's name without extensions: bind as $stem with `line_hash`
    warnings: tuple[str, ...] = field(default=())

    def guard(self, days: bool = False) -> str:
        """A WHERE condition: true for the window's rows (and, with `days`, only rows charged on `$days`); fails the
        query on a refused row, in or out of the window, and on an unknown currency in the window (needs $start,
        $end, $currencies)."""
        on_days = 'WHEN NOT list_contains($days, CAST("ChargePeriodStart" AS DATE)) THEN false ' if days else ""
        return (f"CASE WHEN ({self.problem}) <> '' THEN error('{BAD_ROW_MARKER} ' || CAST(__row AS VARCHAR)) "
                f"WHEN NOT {IN_WINDOW} THEN false {on_days}"
                f"WHEN NOT list_contains($currencies, \"BillingCurrency\") "
                f"THEN error('{BAD_ROW_MARKER} ' || CAST(__row AS VARCHAR)) ELSE true END")


IN_WINDOW = '("ChargePeriodStart" >= $start AND "ChargePeriodStart" < $end)'


def file_sql(
    path: str, columns: list[tuple[str, str]], defaults: Mapping[str, str], *, source: str | None = None,
    params: Mapping[str, object] | None = None, strict: frozenset[str] = frozenset(STRICT_COLUMNS),
    dataset: str | None = None, source_of: Mapping[str, str] | None = None,
) -> FileSql:
    """The SQL reading one file whose FOCUS-named columns (name, DuckDB type) are `columns`.

    `source` is the relation they come from (default: the file's scan), `params` what it binds. Raises
    NormalizationError when a mandatory column is absent and has no fallback.
    """
    source_of = dict(source_of or {})
    by_lower = {name.lower(): (name, typ) for name, typ in columns if name != "__row"}
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
            copied = fallback if fallback.startswith("'") else derived.get(fallback, fallback)
            if copied.startswith("'") or copied in parsed:
                derived[target] = copied
    for target in ("ListCost", "ContractedCost"):
        if target not in parsed and target not in derived and "EffectiveCost" in parsed:
            derived[target] = "EffectiveCost"
    present = set(parsed) | set(derived)
    missing = [c for c in MANDATORY_NOT_NULL if c in TARGETS and c not in present]
    if missing:
        more = f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""
        raise NormalizationError(f"{SOURCE}: file {path}: missing mandatory FOCUS column {missing[0]}{more}")
    inner = ", ".join([*(f"{e} AS {_q(t)}" for t, e in parsed.items()),
                       *(f"{r} AS {_q('__raw_' + t)}" for t, r in raws.items() if r is not None), "__row"])
    copies = "".join(f", {s if s.startswith(chr(39)) else _q(s)} AS {_q(t)}" for t, s in derived.items())
    checks = _checks({t: (_q("__raw_" + t) if r is not None else None) for t, r in raws.items()}, present)
    refused = [c for c in checks if c.column in strict and c.may_refuse]
    tolerated = [c for c in checks if c not in refused]
    cols = ", ".join(f"{_output(c, t, present, tolerated)} AS {_q(c)}" for c, t in TARGETS.items())
    quality = ("list_filter([" + ", ".join(f"CASE WHEN {c.condition} THEN {_lit(c.column)} END" for c in tolerated)
               + "], lambda x: x IS NOT NULL)") if tolerated else "CAST([] AS VARCHAR[])"
    values = ", ".join(f"coalesce(CAST({_q(c)} AS VARCHAR), chr(30))" for c in ID_COLUMNS if c in present)
    relation = f"(SELECT *{copies} FROM (SELECT {inner} FROM {source or scan_sql(path)}))"  # noqa: S608
    used = {t for t in parsed if raws[t] is None}
    version = f"focus-{_version(set(found), legacy)}" if dataset in (None, "focus") else dataset
    return FileSql(
        path=path, version=version, relation=relation, columns=cols, problem=_problem_text(refused, source_of),
        quality=quality, quality_detail=_problem_text(tolerated, source_of),
        line_hash=f"md5(concat_ws(chr(31), '{SOURCE}', $stem, {values}))",
        line_id="$file_id || '-' || CAST(__row AS VARCHAR)",
        params={"path": path, **(params or {}), **{f"default_{c}": defaults[c] for c in used}}, stem=file_stem(path),
    )


def _output(column: str, sql_type: str, present: set[str], tolerated: list[Check]) -> str:
    """One output column: absent -> NULL; a tolerated bad value -> NULL; an empty mandatory value -> its fallback."""
    out = _out_type(sql_type)
    if column not in present:
        return f"CAST(NULL AS {out})"
    value = _q(column)
    flagged = any(c.column == column and c.may_refuse for c in tolerated)
    if column in ("Tags", "SkuPriceDetails") and flagged:
        value = f"CASE WHEN {_TAGS_BAD if column == 'Tags' else _SKU_DETAILS_BAD} THEN NULL ELSE {value} END"
    if column in NULL_FALLBACKS and flagged:
        value = f"coalesce({value}, {', '.join(NULL_FALLBACKS[column])})"
    return f"CAST({value} AS {out})"
