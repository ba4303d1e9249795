"""FOCUS export files (AWS Data Exports, Azure FocusCost, GCP, OCI, ...) -> core.focus_costs, scanned by DuckDB.

Source: FOCUS 1.0-preview to 1.2 files as CSV, gzip CSV or Parquet. Grain: one row per file row whose
ChargePeriodStart falls in [start, end). Key: x_LineId = md5 over ('focus_export', the file's name without
extensions, every FOCUS column value after parsing), with `-<n>` appended to the n-th exact duplicate (by file
order, then row order); it does not depend on the file's folder or format, so a CSV and its Parquet copy agree.

Reading rules (parsing, checks and hashing run in DuckDB SQL, one statement per file; polars only adds the
duplicate suffix; row order of the result is not significant):
- CSV is read with `all_varchar` so nothing is inferred; '', 'null' and 'NULL' are nulls (the FOCUS spec's
  own examples write `null`). Parquet keeps its types: numbers, TIMESTAMP[TZ], DATE, MAP/STRUCT Tags.
- Column names match case-insensitively. Pre-1.0 names map to 1.2: Provider, Publisher, InvoiceIssuer,
  UsageQuantity/UsageUnit -> Consumed*, AmortizedCost -> EffectiveCost, ChargeType -> ChargeCategory,
  Region -> RegionId. x_ columns of our contract (x_ResourceGroupName, x_CurrencyConversionRate) are kept;
  any other provider column (x_*, oci_*, ...) is ignored.
- Every row of a file is checked, also rows outside the window: a broken file fails whole, naming file and row.
- Money and quantities are parsed exactly as DECIMAL(38,12) (rounded beyond 12 decimals); a value that does not
  parse is an error naming the file, the row and the column, never a null.
- Timestamps: 'Z', '+00:00' or another offset are converted to UTC; no offset means UTC. BillingPeriodEnd that
  is a date only or ends at 23:59:59 (Azure's inclusive end) becomes the next midnight (FOCUS: exclusive).
- Tags must be a flat JSON object (values string/number/bool/null); a brace-less Azure fragment is wrapped.
- Absent columns: ContractedCost falls back to ListCost and ListCost to ContractedCost; when both are absent
  both equal EffectiveCost (no invented savings). PublisherName and InvoiceIssuerName fall back to ProviderName,
  ServiceCategory to "Other"; ServiceProviderName (1.3) to PublisherName and HostProviderName to ProviderName.
  Any other absent mandatory column is an error unless `defaults` supplies a constant for it.
- x_ExportVersion = "focus-<detected version>;sha256=<first 16 hex of the file>"; the version is the newest
  whose added columns appear (1.2, 1.1), else 1.0-preview when pre-1.0 names appear, else 1.0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path

import duckdb
import polars as pl

from mlcost_pipeline.normalize.focus_schema import (
    CHARGE_CATEGORIES,
    FOCUS_COLUMNS,
    MANDATORY_NOT_NULL,
    MONEY_SQL,
    POLARS_SCHEMA,
    NormalizationError,
    conform,
)
from mlcost_pipeline.sources.currencies import ISO_4217

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
FOCUS_VALUE_COLUMNS = [c for c in TARGETS if not c.startswith("x_")]
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


def _scan(path: str) -> str:
    if _is_parquet(path):
        return "read_parquet($path, file_row_number = true)"
    return "read_csv($path, all_varchar = true, header = true, nullstr = ['', 'null', 'NULL'])"


def _stem(path: str) -> str:
    name = Path(path).name
    return name.split(".", 1)[0] if not name.startswith(".") else name


def _sha256(path: str) -> str:
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
    checks.append((f'"ChargeCategory" NOT IN ({allowed})', f"ChargeCategory: not one of {', '.join(CHARGE_CATEGORIES)}"))
    # CASE, not AND: DuckDB may evaluate both sides of an AND, and json_type() fails on malformed JSON.
    if "Tags" in present:
        checks.append(("CASE WHEN NOT json_valid(\"Tags\") THEN true WHEN json_type(\"Tags\") <> 'OBJECT' THEN true "
                       "ELSE list_has_any(json_type(\"Tags\", '$.*'), ['OBJECT', 'ARRAY']) END",
                       "Tags: not a flat JSON object"))
    if "SkuPriceDetails" in present:
        checks.append(("CASE WHEN NOT json_valid(\"SkuPriceDetails\") THEN true "
                       "ELSE json_type(\"SkuPriceDetails\") <> 'OBJECT' END", "SkuPriceDetails: not a JSON object"))
    return "concat_ws('; ', " + ", ".join(f"CASE WHEN {cond} THEN '{msg}' END" for cond, msg in checks) + ")"


def _resolve(path: str, columns: list[tuple[str, str]], defaults: Mapping[str, str]) -> tuple[str, str, set[str]]:
    """The SELECT for one file, the detected FOCUS version, and the default parameters it binds.

    Rows come out when they are in the window ($start, $end) or have a problem, with `__row` (1-based data row),
    `__problem` ('' when fine) and `__hash` (md5 over the parsed FOCUS values, before any duplicate suffix).
    """
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
    values = ", ".join(f"coalesce(CAST({_q(c)} AS VARCHAR), chr(30))" for c in FOCUS_VALUE_COLUMNS if c in present)
    select = (  # identifiers only (quoted), every value bound as a parameter
        f"SELECT {cols}, __row, {problems} AS __problem, "  # noqa: S608
        f"md5(concat_ws(chr(31), '{SOURCE}', $stem, {values})) AS __hash "
        f"FROM (SELECT *{copies} FROM (SELECT {inner} FROM {_scan(path)})) "
        f'WHERE ("ChargePeriodStart" >= $start AND "ChargePeriodStart" < $end) OR __problem <> \'\''
    )
    return select, _version(set(found), legacy), {t for t in parsed if raws[t] is None}


def _with_line_ids(df: pl.DataFrame) -> pl.DataFrame:
    """x_LineId = the row hash, plus `-<n>` on the n-th repeat of an identical row (by file, then row order)."""
    if not df.select(pl.col("__hash").is_duplicated().any()).item():
        return df.with_columns(pl.col("__hash").alias("x_LineId"))
    n = (pl.struct("__file", "__row").rank("ordinal").over("__hash") - 1).cast(pl.String)
    return df.with_columns(
        pl.when(n == "0").then(pl.col("__hash")).otherwise(pl.col("__hash") + "-" + n).alias("x_LineId")
    )


def read_focus_export(
    con: duckdb.DuckDBPyConnection, paths: Sequence[str], start: date, end: date, ingested_at: datetime,
    *, defaults: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Rows of the given FOCUS files charged in [start, end), conformed to core.focus_costs.

    `defaults` gives constants for text columns a partial file does not carry (e.g. BillingCurrency).
    """
    defaults = dict(defaults or {})
    not_text = [c for c in defaults if TARGETS.get(c) != "VARCHAR"]
    if not_text:
        raise ValueError(f"defaults only apply to text columns of the contract, not {not_text}")
    ingested = ingested_at.astimezone(UTC).replace(tzinfo=None) if ingested_at.tzinfo else ingested_at
    window = {"start": datetime.combine(start, time()), "end": datetime.combine(end, time())}
    cur = con.cursor()  # our own session: the settings below never leak into the caller's connection
    try:
        cur.execute("SET SESSION produce_arrow_string_view = true")  # polars reads string views without copying
        frames = []
        for index, path in enumerate(str(p) for p in paths):
            if not Path(path).is_file():
                raise FileNotFoundError(f"{SOURCE}: no such file {path}")
            columns = [(r[0], r[1]) for r in cur.execute(
                f"DESCRIBE SELECT * FROM {_scan(path)}", {"path": path}).fetchall()]  # noqa: S608
            select, version, used = _resolve(path, columns, defaults)
            params = {"path": path, "stem": _stem(path), **window, **{f"default_{c}": defaults[c] for c in used}}
            df = cur.sql(select, params=params).pl()
            bad = df.filter(pl.col("__problem") != "").sort("__row")
            if bad.height:
                raise NormalizationError(f"{SOURCE}: file {path}: row {bad['__row'][0]}: {bad['__problem'][0]}")
            unknown = df.filter(~pl.col("BillingCurrency").is_in(sorted(ISO_4217))).sort("__row")
            if unknown.height:
                raise NormalizationError(f"{SOURCE}: file {path}: row {unknown['__row'][0]}: field BillingCurrency: unknown "
                                         f"currency {unknown['BillingCurrency'][0]!r} (not an ISO 4217 code)")
            frames.append(df.with_columns(
                pl.lit(index).alias("__file"),
                pl.lit(f"focus-{version};sha256={_sha256(path)[:16]}").alias("x_ExportVersion"),
            ))
    finally:
        cur.close()
    if not frames:
        return conform(pl.DataFrame(schema=POLARS_SCHEMA), SOURCE)
    df = _with_line_ids(pl.concat(frames, how="vertical"))
    return conform(df.drop("__file", "__row", "__problem", "__hash").with_columns(
        pl.lit(SOURCE).alias("x_SourceSystem"),
        pl.col("ChargePeriodStart").dt.date().alias("x_ChargeDate"),
        pl.lit(ingested, dtype=POLARS_SCHEMA["x_IngestedAt"]).alias("x_IngestedAt"),
    ), SOURCE)
