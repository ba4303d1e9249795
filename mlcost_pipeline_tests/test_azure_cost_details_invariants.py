"""Azure ActualCost / AmortizedCost / Usage exports through the FOCUS reader: the totals a user checks.

An actual export alone gives, per day, BilledCost equal to the file's total; an amortized export alone gives
EffectiveCost equal to its total; both exports of one scope taken at the same moment give both, nothing
doubled.
Expected totals are summed with Python's csv and Decimal from the fixture bytes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pytest

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.focus_export import ExportRead, read_focus_export, summarize_file
from mlcost_pipeline.normalize.focus_schema import NormalizationError
from mlcost_pipeline_tests.test_azure_cost_details_sql import FIXTURES, SHAPES, day_of, file_rows, write

INGESTED = datetime(2026, 1, 5, 6, 0)
# pair -> (first day of its month, reader defaults: the 2019 EA schema lacks currency and billing account)
PAIRS = {
    "EA2021": (date(2024, 2, 1), {}),
    "MCA": (date(2024, 3, 1), {}),
    "OldEA": (date(2019, 10, 1), {"BillingCurrency": "USD", "BillingAccountId": "enrollment-100"}),
}
COMMITMENT = ("Reservation", "SavingsPlan")


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def cents12(value: str) -> Decimal:
    return Decimal(value).quantize(
        Decimal("1e-12"), rounding=ROUND_HALF_UP
    )  # DECIMAL(38,12), as DuckDB rounds


def per_day(rows: list[dict[str, str]], name: str, keep=lambda r: True) -> dict[date, Decimal]:
    cost, day, _ = SHAPES[name]
    out: dict[date, Decimal] = defaultdict(Decimal)
    for r in rows:
        if keep(r):
            out[day_of(r[day])] += cents12(r[cost])
    return {d: v for d, v in out.items() if v}  # a day whose rows sum to 0 compares as absent


def got(df, column: str) -> dict[date, Decimal]:
    out: dict[date, Decimal] = defaultdict(Decimal)
    for day, value in zip(df["x_ChargeDate"].to_list(), df[column].to_list(), strict=True):
        out[day] += value
    return {d: v for d, v in out.items() if v}


def month(first: date) -> tuple[date, date, tuple[date, ...]]:
    end = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, end, tuple(first + timedelta(days=i) for i in range((end - first).days))


def commitment_purchase(row: dict[str, str]) -> bool:
    """A reservation or savings-plan purchase or refund, read from the file's own columns."""
    lower = {k.lower(): v for k, v in row.items()}
    committed = (
        (lower["pricingmodel"] in COMMITMENT) if "pricingmodel" in lower else bool(lower["reservationid"])
    )
    return committed and lower["chargetype"] in ("Purchase", "Refund")


def read(con, files, first: date, defaults=None):
    start, end, _ = month(first)
    return read_focus_export(con, files, start, end, INGESTED, defaults=defaults or None)


def pair(name: str, first: date) -> list[ExportRead]:
    _, _, days = month(first)
    suffix = "_Small" if name == "EA" else ""
    return [
        ExportRead(
            str(FIXTURES / f"{name}_ActualCost{suffix}.csv"),
            ds.AZURE_ACTUAL,
            options=ds.ConvertOptions(paired_days=days),
        ),
        ExportRead(str(FIXTURES / f"{name}_AmortizedCost{suffix}.csv"), ds.AZURE_AMORTIZED),
    ]


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_each_export_alone_gives_its_own_total_per_day(con, name):
    first, defaults = PAIRS[name]
    actual, amortized = f"{name}_ActualCost.csv", f"{name}_AmortizedCost.csv"
    billed = read(con, [ExportRead(str(FIXTURES / actual), ds.AZURE_ACTUAL)], first, defaults)
    effective = read(con, [ExportRead(str(FIXTURES / amortized), ds.AZURE_AMORTIZED)], first, defaults)
    assert got(billed, "BilledCost") == per_day(file_rows(FIXTURES / actual), actual)
    assert got(effective, "EffectiveCost") == per_day(file_rows(FIXTURES / amortized), amortized)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_both_exports_of_one_moment_give_both_totals_nothing_doubled(con, name):
    first, defaults = PAIRS[name]
    actual_rows = file_rows(FIXTURES / f"{name}_ActualCost.csv")
    amortized_rows = file_rows(FIXTURES / f"{name}_AmortizedCost.csv")
    df = read(con, pair(name, first), first, defaults)
    assert got(df, "BilledCost") == per_day(actual_rows, f"{name}_ActualCost.csv")
    assert got(df, "EffectiveCost") == per_day(amortized_rows, f"{name}_AmortizedCost.csv")
    assert df.height == len(amortized_rows) + sum(map(commitment_purchase, actual_rows))
    assert df["x_LineId"].n_unique() == df.height


def test_ea_sample_alone_and_paired(con):
    """The toolkit's EA pair is two extracts, not one moment: the amortized file has on-demand rows the actual
    file lacks. Paired, billed is the actual total plus those rows; effective is the amortized total."""
    first = date(2023, 9, 1)
    actual, amortized = "EA_ActualCost_Small.csv", "EA_AmortizedCost_Small.csv"
    actual_rows, amortized_rows = file_rows(FIXTURES / actual), file_rows(FIXTURES / amortized)
    alone = read(con, [str(FIXTURES / actual)], first)  # a bare file: classified from its rows
    assert got(alone, "BilledCost") == per_day(actual_rows, actual)
    alone = read(con, [str(FIXTURES / amortized)], first)
    assert got(alone, "EffectiveCost") == per_day(amortized_rows, amortized)

    only_amortized = Counter(tuple(r.items()) for r in amortized_rows) - Counter(
        tuple(r.items()) for r in actual_rows
    )
    extra = [
        dict(r) for r, n in only_amortized.items() for _ in range(n) if dict(r)["PricingModel"] == "OnDemand"
    ]
    assert not Counter(tuple(r.items()) for r in actual_rows if not commitment_purchase(r)) - Counter(
        tuple(r.items()) for r in amortized_rows
    )  # every other actual row is in the amortized file
    df = read(con, pair("EA", first), first)
    expected = per_day(actual_rows, actual)
    for day, value in per_day(extra, amortized).items():
        expected[day] = expected.get(day, Decimal(0)) + value
    assert got(df, "BilledCost") == expected
    assert got(df, "EffectiveCost") == per_day(amortized_rows, amortized)
    assert df.height == len(amortized_rows) + sum(map(commitment_purchase, actual_rows))


def test_usage_export_bills_and_costs_the_same(con):
    name = "PAYG_Usage.csv"
    rows = file_rows(FIXTURES / name)
    df = read(con, [ExportRead(str(FIXTURES / name), ds.AZURE_USAGE)], date(2019, 11, 1))
    expected = per_day(rows, name)
    assert got(df, "BilledCost") == expected and got(df, "EffectiveCost") == expected
    # pay-as-you-go: the subscription is the billing account
    assert sorted(df["BillingAccountId"].to_list()) == sorted(r["SubscriptionGuid"] for r in rows)


def test_a_bare_file_without_commitment_rows_warns(con):
    path = str(FIXTURES / "PAYG_Usage.csv")
    summary = summarize_file(con, ExportRead(path), date(2019, 11, 1), date(2019, 12, 1))
    assert any("cannot tell" in w and "no commitment rows" in w for w in summary.warnings)


def test_a_bare_amortized_file_is_read_as_amortized(con):
    name = "MCA_AmortizedCost.csv"
    df = read(con, [str(FIXTURES / name)], date(2024, 3, 1))
    assert got(df, "EffectiveCost") == per_day(file_rows(FIXTURES / name), name)
    assert set(df["x_ExportVersion"].str.split(";").list.first()) == {ds.AZURE_AMORTIZED}


def test_a_bad_value_refuses_the_file_naming_row_and_column(con, tmp_path):
    rows = file_rows(FIXTURES / "EA_ActualCost_Small.csv")
    rows[4]["Cost"] = "1,25"
    bad = write(tmp_path / "bad_cost.csv", rows)
    with pytest.raises(NormalizationError, match=r"bad_cost\.csv: row 5: BilledCost \(from Cost\).*1,25"):
        read(con, [ExportRead(str(bad), ds.AZURE_ACTUAL)], date(2023, 9, 1))
    rows = file_rows(FIXTURES / "EA_ActualCost_Small.csv")
    rows[6]["Date"] = "21.09.2023"
    bad = write(tmp_path / "bad_date.csv", rows)
    with pytest.raises(
        NormalizationError, match=r"bad_date\.csv: row 7: ChargePeriod\w+ \(from Date\).*21\.09\.2023"
    ):
        read(con, [ExportRead(str(bad), ds.AZURE_ACTUAL)], date(2023, 9, 1))


def test_old_ea_without_a_currency_column_needs_a_default(con):
    with pytest.raises(NormalizationError, match="BillingCurrency"):
        read(con, [ExportRead(str(FIXTURES / "OldEA_ActualCost.csv"), ds.AZURE_ACTUAL)], date(2019, 10, 1))
