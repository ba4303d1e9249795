"""Billed-cost totals of landed native records, per provider and currency, for the raw assets' metadata.

They are what each provider said it billed, read before normalization, so the UI shows a raw asset's totals beside
core.focus_costs' and a normalization that loses or invents money shows up. Per source, the billed amount is:
Cost Explorer `UnblendedCost` (per group, or the period Total when not grouped); the GCP export's `cost` (credits
are listed apart, in `credits`), or BilledCost for rows of Google's FOCUS export table; the cost column of Azure `ActualCost` pages (AmortizedCost pages restate the same
spend); FOCUS files' `BilledCost`. Exact decimals, rendered as text. A record these rules cannot read is counted,
not fatal: landing keeps native data even when it is malformed, and normalization names the problem.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import duckdb

from mlcost_pipeline.normalize.azure_cost_management import COST_COLUMNS as AZURE_COST_COLUMNS
from mlcost_pipeline.normalize.focus_schema import NormalizationError

if TYPE_CHECKING:
    from mlcost_pipeline.normalize.focus_export import ExportRead

UNREADABLE = "unreadable_records"
Totals = dict[tuple[str, str], Decimal]


def _add(totals: Totals, provider: str, currency: object, amount: object) -> None:
    totals[(provider, str(currency or "?"))] += Decimal(str(amount))


def _aws(payload: dict, totals: Totals) -> None:
    for result in payload["response"]["ResultsByTime"]:
        entries = [g["Metrics"] for g in result.get("Groups") or []] or [result.get("Total") or {}]
        for metrics in entries:
            metric = metrics.get("UnblendedCost")
            if metric is not None:
                _add(totals, "AWS", metric.get("Unit"), metric["Amount"])


def _gcp(payload: dict, totals: Totals) -> None:
    if payload.get("x_Dataset") == "focus":  # Google's FOCUS export table: its BilledCost is the billed amount
        _add(totals, "Google Cloud", payload["BillingCurrency"], payload["BilledCost"])
    else:
        _add(totals, "Google Cloud", payload["currency"], payload["cost"])


def _azure(payload: dict, totals: Totals) -> None:
    if str(payload["request"].get("type", "")).lower() not in ("actualcost", "usage"):
        return
    properties = payload["response"]["properties"]
    names = [c["name"] for c in properties["columns"]]
    cost = next(c for c in AZURE_COST_COLUMNS if c in names)
    currency = names.index("Currency") if "Currency" in names else None
    for row in properties["rows"]:
        code = "USD" if cost.endswith("USD") else (row[currency] if currency is not None else None)
        _add(totals, "Microsoft", code, row[names.index(cost)])


READERS: dict[str, Callable[[dict, Totals], None]] = {
    "raw.aws_cost_explorer": _aws,
    "raw.gcp_billing_export": _gcp,
    "raw.azure_cost_management": _azure,
}


def _rendered(totals: Totals, unreadable: int) -> dict[str, str]:
    out = {f"{provider} ({currency})": str(amount) for (provider, currency), amount in sorted(totals.items())}
    if unreadable:
        out[UNREADABLE] = str(unreadable)
    return out


def native_totals(table: str, records: Iterable[tuple[date, dict]]) -> dict[str, str]:
    """`{"<provider> (<currency>)": "<exact total>"}` for a raw table's records; {} for a source without cost."""
    reader = READERS.get(table)
    if reader is None:
        return {}
    totals: Totals = defaultdict(Decimal)
    unreadable = 0
    for _, payload in records:
        partial: Totals = defaultdict(Decimal)
        try:
            reader(payload, partial)
        except (KeyError, IndexError, TypeError, ValueError, StopIteration, AttributeError, InvalidOperation):
            unreadable += 1
            continue
        for key, amount in partial.items():
            totals[key] += amount
    return _rendered(totals, unreadable)


def focus_file_totals(
    con: duckdb.DuckDBPyConnection, files: Sequence[ExportRead], start: date, end: date
) -> dict[str, str]:
    """The same totals for export files (BilledCost by ProviderName), parsed as the production reader does."""
    from mlcost_pipeline.normalize.focus_export import billed_totals

    if not files:
        return {}
    try:
        rows = billed_totals(con, files, start, end)
    except (NormalizationError, OSError, duckdb.Error):
        return {UNREADABLE: str(len(files))}
    totals: Totals = defaultdict(Decimal)
    for provider, currency, amount in rows:
        _add(totals, str(provider), currency, amount or 0)
    return _rendered(totals, 0)
