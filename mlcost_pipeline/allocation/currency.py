"""Reporting currency: which dated rate converts each charge, and the exact conversion in SQL.

Rate choice per charge (DESIGN.md §4): the same currency needs none; a provider-given rate on the row
(`x_CurrencyConversionRate`, 1 USD = rate BillingCurrency: GCP's currency_conversion_rate, Azure's exchange rate)
converts to USD when the reporting currency is USD; otherwise the rates file's latest rate on or before the
charge day, either direction (1 from = rate to). A code that is not ISO 4217, or a charge without a rate, is a
CurrencyError naming the currency, the day and how many charges: never a silent sum.

A conversion is the fraction amount x num / den, computed in 128-bit integers and rounded half-even to the
stored 12 decimals, so the same inputs give the same digits on every run.
"""

from __future__ import annotations

import bisect
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from mlcost_pipeline.allocation.templates import render
from mlcost_pipeline.normalize.focus_schema import MONEY
from mlcost_pipeline.sources.currencies import ISO_4217

if TYPE_CHECKING:
    from mlcost_pipeline.allocation.plan import Statement

FX_SCHEMA = {"day": pl.Date, "currency": pl.String, "fx_num": MONEY, "fx_den": MONEY, "fx_source": pl.String}


class CurrencyError(ValueError):
    """An unknown currency or a missing rate: names the currency, the day and the charges affected."""


def check_currency(code: str) -> str:
    value = (code or "").strip().upper()
    if value not in ISO_4217:
        raise ValueError(f"unknown currency code {code!r} (not an ISO 4217 code)")
    return value


class RateBook:
    """The rates file, searchable by (from, to) and day: the latest rate on or before the day."""

    def __init__(self, rates: list[tuple[date, str, str, Decimal]], max_age_days: int | None = None):
        self._by_pair: dict[tuple[str, str], tuple[list[date], list[Decimal]]] = {}
        for day, src, dst, rate in sorted(rates):
            days, values = self._by_pair.setdefault((src, dst), ([], []))
            days.append(day)
            values.append(rate)
        self.max_age = None if max_age_days is None else timedelta(days=max_age_days)

    def _latest(self, src: str, dst: str, day: date) -> tuple[date, Decimal] | None:
        found = self._by_pair.get((src, dst))
        if not found:
            return None
        i = bisect.bisect_right(found[0], day) - 1
        if i < 0 or (self.max_age is not None and day - found[0][i] > self.max_age):
            return None
        return found[0][i], found[1][i]

    def fraction(self, currency: str, reporting: str, day: date) -> tuple[Decimal, Decimal] | None:
        """(num, den) with amount_reporting = amount x num / den; the more recent of the two directions wins."""
        direct = self._latest(currency, reporting, day)
        inverse = self._latest(reporting, currency, day)
        if direct and (not inverse or direct[0] >= inverse[0]):
            return direct[1], Decimal(1)
        if inverse:
            return Decimal(1), inverse[1]
        return None


def fx_plan(
    con: duckdb.DuckDBPyConnection,
    needs: Statement,
    start: date,
    end: date,
    reporting: str,
    book: RateBook,
    use_provider_rates: bool,
    basis: str,
    rates_file: str | None,
) -> pl.DataFrame:
    """The file rate for every (day, currency) of the window that needs one; raises CurrencyError if missing.

    `needs`, the plan's fx_needs statement: per (day, currency), the charges without a provider rate, and all.
    """
    try:
        reporting = check_currency(reporting)
    except ValueError as exc:
        raise CurrencyError(f"reporting currency (MLCOST_REPORTING_CURRENCY): {exc}") from None
    provider_ok = use_provider_rates and reporting == "USD"  # from the checked code (the plan's, if valid)
    rows = con.execute(needs.sql, {**needs.bind(start, end), "provider_ok": provider_ok}).fetchall()
    plan = []
    for day, currency, needing_file, total in rows:
        if currency not in ISO_4217:
            raise CurrencyError(
                f"core.focus_costs: BillingCurrency {currency!r} on {day} ({total} charge(s)) is not an ISO 4217 "
                f"code; fix the source or its normalizer (the {basis} of these charges cannot be converted)"
            )
        if currency == reporting or not needing_file:
            continue
        fraction = book.fraction(currency, reporting, day)
        if fraction is None:
            where = rates_file or "no rates file (currency.rates_file)"
            raise CurrencyError(
                f"no FX rate {currency}->{reporting} on or before {day} for {needing_file} charge(s) in "
                f"{currency}: add one to {where}"
            )
        plan.append({"day": day, "currency": currency, "fx_num": fraction[0], "fx_den": fraction[1],
                     "fx_source": "file"})  # fmt: skip
    return pl.DataFrame(plan, schema=FX_SCHEMA) if plan else pl.DataFrame(schema=FX_SCHEMA)


@cache
def _macros_sql() -> str:
    return render("macros.sql")


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Exact integer helpers (sql/macros.sql): money <-> 10^-12 units, and a x n / d rounded half-even."""
    con.execute(_macros_sql())


def convert(amount: Decimal, num: Decimal, den: Decimal) -> Decimal:
    """The Python twin of the SQL conversion (sql/_money.sql), for tests and explain."""
    a, n, d = (int(x.scaleb(12).to_integral_value()) for x in (amount, num, den))
    p = a * n
    q, r = divmod(abs(p), d)
    if 2 * r > d or (2 * r == d and q % 2):
        q += 1
    return Decimal(q if p >= 0 else -q).scaleb(-12).quantize(Decimal(1).scaleb(-12))

