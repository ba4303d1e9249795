"""The contract of `core.focus_costs`: FOCUS 1.2 columns verbatim, the two FOCUS 1.3 provider columns, then ours.

Money and quantities are exact decimals (DECIMAL(38,12)); timestamps are UTC (naive TIMESTAMP, UTC by contract);
Tags and SkuPriceDetails are JSON objects serialized as text. Normalizers return polars frames with any subset of
these columns; `conform` adds the rest as nulls, casts and orders them, so every source lands the same shape.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import polars as pl

F = TypeVar("F", bound=Callable[..., Any])

MONEY_SCALE = 12
MONEY = pl.Decimal(38, MONEY_SCALE)
MONEY_SQL = f"DECIMAL(38,{MONEY_SCALE})"
MONEY_LIMIT = Decimal(10) ** (38 - MONEY_SCALE)  # the first magnitude DECIMAL(38,12) cannot hold
TS = pl.Datetime("us")

_STR, _TS, _DEC, _JSON, _DATE = "VARCHAR", "TIMESTAMP", MONEY_SQL, "JSON", "DATE"

# (column, DuckDB type). Order is the table's order: FOCUS first, x_ after (FOCUS: custom columns come last).
FOCUS_COLUMNS: list[tuple[str, str]] = [
    ("AvailabilityZone", _STR),
    ("BilledCost", _DEC),
    ("BillingAccountId", _STR),
    ("BillingAccountName", _STR),
    ("BillingAccountType", _STR),
    ("BillingCurrency", _STR),
    ("BillingPeriodEnd", _TS),
    ("BillingPeriodStart", _TS),
    ("CapacityReservationId", _STR),
    ("CapacityReservationStatus", _STR),
    ("ChargeCategory", _STR),
    ("ChargeClass", _STR),
    ("ChargeDescription", _STR),
    ("ChargeFrequency", _STR),
    ("ChargePeriodEnd", _TS),
    ("ChargePeriodStart", _TS),
    ("CommitmentDiscountCategory", _STR),
    ("CommitmentDiscountId", _STR),
    ("CommitmentDiscountName", _STR),
    ("CommitmentDiscountQuantity", _DEC),
    ("CommitmentDiscountStatus", _STR),
    ("CommitmentDiscountType", _STR),
    ("CommitmentDiscountUnit", _STR),
    ("ConsumedQuantity", _DEC),
    ("ConsumedUnit", _STR),
    ("ContractedCost", _DEC),
    ("ContractedUnitPrice", _DEC),
    ("EffectiveCost", _DEC),
    ("InvoiceId", _STR),
    ("InvoiceIssuerName", _STR),
    ("ListCost", _DEC),
    ("ListUnitPrice", _DEC),
    ("PricingCategory", _STR),
    ("PricingCurrency", _STR),
    ("PricingCurrencyContractedUnitPrice", _DEC),
    ("PricingCurrencyEffectiveCost", _DEC),
    ("PricingCurrencyListUnitPrice", _DEC),
    ("PricingQuantity", _DEC),
    ("PricingUnit", _STR),
    ("ProviderName", _STR),
    ("PublisherName", _STR),
    ("RegionId", _STR),
    ("RegionName", _STR),
    ("ResourceId", _STR),
    ("ResourceName", _STR),
    ("ResourceType", _STR),
    ("ServiceCategory", _STR),
    ("ServiceName", _STR),
    ("ServiceSubcategory", _STR),
    ("SkuId", _STR),
    ("SkuMeter", _STR),
    ("SkuPriceDetails", _JSON),
    ("SkuPriceId", _STR),
    ("SubAccountId", _STR),
    ("SubAccountName", _STR),
    ("SubAccountType", _STR),
    ("Tags", _JSON),
    # FOCUS 1.3 replacements for ProviderName/PublisherName; both are kept until FOCUS 1.4.
    ("ServiceProviderName", _STR),
    ("HostProviderName", _STR),
    # Ours.
    ("x_LineId", _STR),  # stable id: the same native record gives the same id on every rerun
    ("x_SourceSystem", _STR),  # aws_cost_explorer | gcp_billing_export | azure_cost_management | focus_export
    ("x_ChargeDate", _DATE),  # UTC day of ChargePeriodStart: the partition key
    ("x_IngestedAt", _TS),
    ("x_ExportVersion", _STR),  # provider export/schema version, API version, or file checksum
    ("x_ResourceGroupName", _STR),  # Azure resource group (allocation fallback)
    ("x_CurrencyConversionRate", _DEC),  # provider-given rate, 1 USD = rate BillingCurrency (GCP, Azure)
    ("x_Estimated", "BOOLEAN"),  # AWS Cost Explorer: the period is not final yet
]

COLUMN_NAMES = [c for c, _ in FOCUS_COLUMNS]
MONEY_COLUMNS = [c for c, t in FOCUS_COLUMNS if t == _DEC]
MANDATORY_NOT_NULL = [
    "BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "ChargeCategory", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost", "EffectiveCost",
    "InvoiceIssuerName", "ListCost", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
    "x_LineId", "x_SourceSystem", "x_ChargeDate",
]  # fmt: skip
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
SOURCE_SYSTEMS = ("aws_cost_explorer", "gcp_billing_export", "azure_cost_management", "focus_export")


def _polars_type(sql_type: str) -> pl.DataType:
    return {
        _STR: pl.String, _TS: TS, _DEC: MONEY, _JSON: pl.String, _DATE: pl.Date, "BOOLEAN": pl.Boolean,
    }[sql_type]  # fmt: skip


POLARS_SCHEMA: dict[str, pl.DataType] = {c: _polars_type(t) for c, t in FOCUS_COLUMNS}


def create_table_sql(qualified_name: str) -> str:
    cols = ",\n  ".join(f'"{c}" {t}' for c, t in FOCUS_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {qualified_name} (\n  {cols}\n)"


class NormalizationError(ValueError):
    """Bad native input: the message names the source, the record and the field."""


_MALFORMED = (KeyError, IndexError, TypeError, AttributeError, ValueError, ArithmeticError, pl.exceptions.PolarsError)


def raises_normalization_error(source: str) -> Callable[[F], F]:
    """A normalizer's only error is NormalizationError: a shape the field checks did not foresee (found by the
    fuzz tests, test_fuzz_inputs.py) still fails as bad input naming the source, never as a crash of another type."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def inner(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except NormalizationError:
                raise
            except _MALFORMED as exc:
                raise NormalizationError(f"{source}: malformed record ({type(exc).__name__}: {exc})") from exc

        return inner  # type: ignore[return-value]

    return wrap


def conform(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """Cast to the contract, add missing columns as nulls, drop nothing FOCUS-named, order the columns."""
    unknown = [c for c in df.columns if c not in POLARS_SCHEMA]
    if unknown:
        raise NormalizationError(f"{source}: columns outside the core.focus_costs contract: {unknown}")
    out = []
    for name, dtype in POLARS_SCHEMA.items():
        if name in df.columns:
            out.append(df[name].cast(dtype, strict=True).alias(name))
        else:
            out.append(pl.lit(None, dtype=dtype).alias(name))
    result = df.select(out) if df.height else pl.DataFrame(schema=POLARS_SCHEMA)
    nulls = [c for c in MANDATORY_NOT_NULL if result[c].null_count()]
    if nulls:
        first = nulls[0]
        row = result.with_row_index("_row").filter(pl.col(first).is_null())["_row"][0]
        raise NormalizationError(f"{source}: mandatory column {first} is null (first at output row {row})")
    return result


def line_ids(source_system: str, keys: Iterable[Sequence[object]]) -> list[str]:
    """Stable ids from each record's natural key; identical keys get an occurrence suffix in input order."""
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        payload = json.dumps([source_system, *[None if k is None else str(k) for k in key]], ensure_ascii=False)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:32]
        n = seen.get(digest, 0)
        seen[digest] = n + 1
        out.append(digest if n == 0 else f"{digest}-{n}")
    return out


def tags_json(tags: dict[str, object] | None) -> str | None:
    """FOCUS KeyValueFormat: a flat JSON object; keys sorted so the text is stable across reruns."""
    if tags is None:
        return None
    return json.dumps(
        {str(k): v for k, v in sorted(tags.items())}, ensure_ascii=False, separators=(",", ":"), default=_json_number
    )


def _json_number(value: object) -> object:
    # Raw payloads are parsed with Decimal so money stays exact; a tag or metric number goes back out as JSON.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")
