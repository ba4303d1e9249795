"""Reporting currency: provider rates, dated file rates (either direction), exact rounding, and loud failures."""

from decimal import Decimal

import pytest

from mlcost_pipeline.allocation.currency import CurrencyError, convert
from mlcost_pipeline_tests.allocation_fixtures import (
    BASE_RULES,
    D1,
    D2,
    D3,
    allocate,
    charge,
    rules,
    warehouse,
)

RATES = "date,from_currency,to_currency,rate\n2026-10-01,EUR,USD,1.25\n2026-11-02,EUR,USD,1.5\n"
WITH_RATES = BASE_RULES + "currency: {rates_file: fx.csv}\n"


def _reporting(con):
    return con.execute(
        "SELECT charge_date, billing_currency, amount, reporting_currency, amount_reporting, fx_rate, fx_source "
        "FROM core.allocated_costs ORDER BY charge_date, billing_currency, amount"
    ).fetchall()


def test_currency_provider_rate_converts_to_usd_exactly(tmp_path):
    gcp = {"BillingCurrency": "EUR", "x_CurrencyConversionRate": Decimal("0.9163"), "tags": {"project": "a"}}
    con = warehouse([charge(D1, "1", **gcp), charge(D1, "-2.5", **gcp), charge(D1, "7", tags={"project": "a"})])
    allocate(con, rules(tmp_path, BASE_RULES))  # no rates file at all: the provider's rate is enough
    got = _reporting(con)
    one = convert(Decimal(1), Decimal(1), Decimal("0.9163"))
    assert one == Decimal("1.091345629161")  # 1 / 0.9163 = 1.0913456291618465..., half-even at 12 places
    assert got == [
        (D1, "EUR", Decimal("-2.5"), "USD", convert(Decimal("-2.5"), Decimal(1), Decimal("0.9163")), one, "provider"),
        (D1, "EUR", Decimal(1), "USD", one, one, "provider"),
        (D1, "USD", Decimal(7), "USD", Decimal(7), Decimal(1), "same"),
    ]


def test_currency_file_rates_are_dated_and_work_in_either_direction(tmp_path):
    con = warehouse([charge(D1, "10", tags={"project": "a"}), charge(D2, "10", tags={"project": "a"}),
                     charge(D2, "3", BillingCurrency="EUR", tags={"project": "a"},
                            x_CurrencyConversionRate=Decimal("0.9"))])  # fmt: skip
    allocate(con, rules(tmp_path, WITH_RATES, {"fx.csv": RATES}), reporting="EUR")
    assert _reporting(con) == [
        (D1, "USD", Decimal(10), "EUR", Decimal(8), Decimal("0.8"), "file"),  # 10 / 1.25 (the rate of 2026-10-01)
        (D2, "EUR", Decimal(3), "EUR", Decimal(3), Decimal(1), "same"),  # a provider rate to USD is not used
        (D2, "USD", Decimal(10), "EUR", Decimal("6.666666666667"), Decimal("0.666666666667"), "file"),
    ]


def test_currency_missing_rate_fails_and_writes_nothing(tmp_path):
    con = warehouse([charge(D1, "10", tags={"project": "a"}), charge(D2, "4", BillingCurrency="GBP")])
    allocate(con, rules(tmp_path, BASE_RULES), D1, D2)
    before = con.execute("SELECT * FROM core.allocated_costs").fetchall()
    with pytest.raises(CurrencyError, match=r"no FX rate GBP->USD on or before 2026-11-02 for 1 charge\(s\)"):
        allocate(con, rules(tmp_path, BASE_RULES), D1, D3)
    assert con.execute("SELECT * FROM core.allocated_costs").fetchall() == before


def test_currency_stale_rate_is_missing_when_a_maximum_age_is_set(tmp_path):
    con = warehouse([charge(D1, "10", BillingCurrency="EUR")])
    text = BASE_RULES + "currency: {rates_file: fx.csv, max_rate_age_days: 7}\n"
    with pytest.raises(CurrencyError, match="no FX rate EUR->USD on or before 2026-11-01"):
        allocate(con, rules(tmp_path, text, {"fx.csv": RATES}))
    allocate(con, rules(tmp_path, text.replace("7}", "31}"), {"fx.csv": RATES}))


def test_currency_unknown_code_is_an_error_not_a_sum(tmp_path):
    con = warehouse([charge(D1, "10", BillingCurrency="ZZZ")])
    with pytest.raises(CurrencyError, match=r"BillingCurrency 'ZZZ' on 2026-11-01 \(1 charge\(s\)\) is not an ISO 4217"):
        allocate(con, rules(tmp_path, BASE_RULES))
    with pytest.raises(CurrencyError, match=r"MLCOST_REPORTING_CURRENCY\): unknown currency code .XYZ."):
        allocate(con, rules(tmp_path, BASE_RULES), reporting="XYZ")


def test_currency_split_pieces_add_up_to_the_converted_charge(tmp_path):
    eur = {"BillingCurrency": "EUR", "ServiceName": "NAT", "x_CurrencyConversionRate": Decimal("0.9163")}
    con = warehouse([charge(D1, "100.000000000007", **eur)])
    allocate(con, rules(tmp_path, BASE_RULES + "pools:\n  - {id: n, select: {services: [NAT]}, method: even, "
                                               "targets: [a, b, c, d, e, f, g]}\n"))  # fmt: skip
    amount, reporting, n = con.execute(
        "SELECT sum(amount), sum(amount_reporting), count(*) FROM core.allocated_costs"
    ).fetchall()[0]
    assert n == 7 and amount == Decimal("100.000000000007")
    assert reporting == convert(Decimal("100.000000000007"), Decimal(1), Decimal("0.9163"))
