"""Azure cost-details converter: its SQL run straight over the files, checked against the files' own bytes.

Every expectation comes from the fixture read with Python's csv module (and the finops-toolkit lookups read
the same way), never from the converter; see fixtures/azure-cost-details/README.md for what each file is.
"""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from mlcost_pipeline.normalize import azure_cost_details_sql as az
from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.focus_export_sql import scan_sql

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures" / "azure-cost-details"
LOOKUPS = HERE.parent / "mlcost_pipeline" / "normalize" / "lookups"
# fixture -> (cost column, day column, currency column): the file's own names, from Microsoft's schema pages
SHAPES = {
    "EA_ActualCost_Small.csv": ("Cost", "Date", "BillingCurrency"),
    "EA_AmortizedCost_Small.csv": ("Cost", "Date", "BillingCurrency"),
    "EA2021_ActualCost.csv": ("CostInBillingCurrency", "Date", "BillingCurrencyCode"),
    "EA2021_AmortizedCost.csv": ("CostInBillingCurrency", "Date", "BillingCurrencyCode"),
    "MCA_ActualCost.csv": ("costInBillingCurrency", "date", "billingCurrency"),
    "MCA_AmortizedCost.csv": ("costInBillingCurrency", "date", "billingCurrency"),
    "OldEA_ActualCost.csv": ("PreTaxCost", "UsageDateTime", None),
    "OldEA_AmortizedCost.csv": ("PreTaxCost", "UsageDateTime", None),
    "PAYG_Usage.csv": ("PreTaxCost", "UsageDateTime", "Currency"),
}
KIND = {"Actual": ds.AZURE_ACTUAL, "Amortized": ds.AZURE_AMORTIZED, "Usage": ds.AZURE_USAGE}


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def file_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def day_of(text: str) -> date:
    """Azure's two day formats, parsed the way a reader of the file would."""
    return datetime.strptime(text, "%m/%d/%Y").date() if "/" in text else date.fromisoformat(text[:10])


def kind_of(name: str) -> str:
    return next(k for word, k in KIND.items() if f"_{word}" in name)


def converted(con, path: Path, dataset: str, options: ds.ConvertOptions | None = None) -> list[dict]:
    """The converter's rows over the reader's own scan of the file, by file row (__row)."""
    scan = scan_sql(str(path))
    columns = [
        (r[0], r[1])
        for r in con.execute(f"DESCRIBE SELECT * EXCLUDE (__row) FROM {scan}", {"path": str(path)}).fetchall()
    ]
    out = az.convert(scan, columns, options or ds.ConvertOptions(), dataset=dataset)
    cur = con.execute(out.sql, {"path": str(path), **out.params})
    names = [d[0] for d in cur.description]
    return sorted((dict(zip(names, r, strict=True)) for r in cur.fetchall()), key=lambda r: r["__row"])


def by_row(con, name: str, dataset: str | None = None) -> list[tuple[dict[str, str], dict]]:
    """(file row, converted row) pairs of a fixture converted as the dataset its name says."""
    path = FIXTURES / name
    rows = converted(con, path, dataset or kind_of(name))
    source = file_rows(path)
    return [(source[r["__row"] - 1], r) for r in rows]


def money(text: str) -> Decimal:
    """A value as core.focus_costs holds it: DECIMAL(38,12), rounded half away from zero."""
    return Decimal(text).quantize(Decimal("1e-12"), rounding=ROUND_HALF_UP)


def get(row: dict[str, str], name: str) -> str:
    return next(v for k, v in row.items() if k.lower() == name.lower())


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_row_keeps_its_cost_day_and_currency(con, name):
    cost, day, currency = SHAPES[name]
    pairs = by_row(con, name)
    assert len(pairs) == len(file_rows(FIXTURES / name))  # no pairing: an export alone keeps every row
    for src, out in pairs:
        basis = out["BilledCost"] if kind_of(name) != ds.AZURE_AMORTIZED else out["EffectiveCost"]
        assert Decimal(basis) == Decimal(src[cost])
        start = datetime.combine(day_of(src[day]), datetime.min.time())
        assert out["ChargePeriodStart"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert out["ChargePeriodEnd"] == (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if currency:
            assert out["BillingCurrency"] == src[currency]
        else:  # the 2019 EA schema has no currency column: the reader's default supplies it
            assert "BillingCurrency" not in out


def test_matches_cost_details_and_nothing_else():
    for name in SHAPES:
        assert az.matches(list(file_rows(FIXTURES / name)[0])), name
    focus = next(
        csv.reader(
            (
                HERE / "fixtures" / "focus-spec-v1.2-examples" / "commitment_discount_usage_scenario_1.csv"
            ).open()
        )
    )
    cur_legacy = [
        "identity/LineItemId",
        "bill/PayerAccountId",
        "lineItem/UsageStartDate",
        "lineItem/ProductCode",
        "lineItem/UsageAmount",
        "lineItem/CurrencyCode",
        "lineItem/UnblendedCost",
        "product/region",
    ]
    cur2 = ["bill_payer_account_id", "line_item_usage_start_date", "line_item_unblended_cost", "product"]
    assert not az.matches(focus)
    assert not az.matches(cur_legacy) and not az.matches(cur2)


@pytest.mark.parametrize(("name", "expected"), [
    ("EA_ActualCost_Small.csv", ds.AZURE_ACTUAL), ("EA_AmortizedCost_Small.csv", ds.AZURE_AMORTIZED),
    ("EA2021_ActualCost.csv", ds.AZURE_ACTUAL), ("EA2021_AmortizedCost.csv", ds.AZURE_AMORTIZED),
    ("MCA_ActualCost.csv", ds.AZURE_ACTUAL), ("MCA_AmortizedCost.csv", ds.AZURE_AMORTIZED),
    ("OldEA_ActualCost.csv", ds.AZURE_ACTUAL), ("OldEA_AmortizedCost.csv", ds.AZURE_AMORTIZED),
    ("PAYG_Usage.csv", None),
])  # fmt: skip
def test_classify_tells_actual_from_amortized_by_the_rows(con, name, expected):
    path = str(FIXTURES / name)
    scan = scan_sql(path)
    columns = [
        (r[0], r[1])
        for r in con.execute(f"DESCRIBE SELECT * EXCLUDE (__row) FROM {scan}", {"path": path}).fetchall()
    ]
    kind, reason = az.classify(con, scan, columns, {"path": path})
    assert kind == expected, reason
    if expected is None:
        assert "no commitment rows" in reason


def test_classify_refuses_to_guess_on_a_file_with_both_kinds(con, tmp_path):
    mixed = write(
        tmp_path / "mixed.csv",
        file_rows(FIXTURES / "MCA_ActualCost.csv") + file_rows(FIXTURES / "MCA_AmortizedCost.csv"),
    )
    scan = scan_sql(str(mixed))
    columns = [
        (r[0], r[1])
        for r in con.execute(
            f"DESCRIBE SELECT * EXCLUDE (__row) FROM {scan}", {"path": str(mixed)}
        ).fetchall()
    ]
    kind, reason = az.classify(con, scan, columns, {"path": str(mixed)})
    assert kind is None and "both kinds" in reason


@pytest.mark.parametrize(
    "name",
    [
        "MCA_AmortizedCost.csv",
        "EA2021_AmortizedCost.csv",
        "OldEA_AmortizedCost.csv",
        "EA_AmortizedCost_Small.csv",
    ],
)
def test_amortized_bills_nothing_for_commitment_usage(con, name):
    for src, out in by_row(con, name):
        ctype = get(src, "ChargeType") if any(k.lower() == "chargetype" for k in src) else "Usage"
        model = next((v for k, v in src.items() if k.lower() == "pricingmodel"), None)
        committed = (
            model in ("Reservation", "SavingsPlan") if model is not None else bool(get(src, "ReservationId"))
        )
        cost = Decimal(get(src, SHAPES[name][0]))
        assert Decimal(out["EffectiveCost"]) == cost
        if ctype.startswith("Unused") or (committed and ctype == "Usage"):
            assert Decimal(out["BilledCost"]) == 0
            assert out["CommitmentDiscountStatus"] == ("Unused" if ctype.startswith("Unused") else "Used")
            assert out["ChargeCategory"] == "Usage" and out["PricingCategory"] == "Committed"
        else:
            assert Decimal(out["BilledCost"]) == cost


def test_actual_amortizes_commitment_purchases_and_refunds_only(con):
    for src, out in by_row(con, "MCA_ActualCost.csv"):
        cost = Decimal(src["costInBillingCurrency"])
        assert Decimal(out["BilledCost"]) == cost
        commitment = src["pricingModel"] in ("Reservation", "SavingsPlan")
        if src["chargeType"] in ("Purchase", "Refund") and commitment:
            assert Decimal(out["EffectiveCost"]) == 0
        else:  # a marketplace purchase (On Demand) is not amortized by anyone: it stays effective
            assert Decimal(out["EffectiveCost"]) == cost
        if src["chargeType"] == "Refund":
            assert (out["ChargeCategory"], out["ChargeClass"]) == ("Purchase", "Correction")
        else:
            assert out["ChargeClass"] is None


def test_paired_days_keep_only_commitment_purchases_from_the_actual_export(con):
    path = FIXTURES / "MCA_ActualCost.csv"
    source = file_rows(path)
    paired = {date(2024, 3, 2)}
    rows = converted(con, path, ds.AZURE_ACTUAL, ds.ConvertOptions(paired_days=tuple(paired)))
    kept = {r["__row"] for r in rows}
    expected = {
        i
        for i, s in enumerate(source, 1)
        if day_of(s["date"]) not in paired
        or (s["chargeType"] in ("Purchase", "Refund") and s["pricingModel"] in ("Reservation", "SavingsPlan"))
    }
    assert kept == expected and len(kept) < len(source)


def test_charge_categories_and_pricing_categories(con):
    category = {
        "Usage": "Usage",
        "Purchase": "Purchase",
        "Refund": "Purchase",
        "Tax": "Tax",
        "UnusedReservation": "Usage",
        "UnusedSavingsPlan": "Usage",
        "RoundingAdjustment": "Adjustment",
    }
    pricing = {
        "On Demand": "Standard",
        "OnDemand": "Standard",
        "Spot": "Dynamic",
        "Reservation": "Committed",
        "SavingsPlan": "Committed",
        "": None,
    }
    seen = set()
    for name in ("MCA_AmortizedCost.csv", "MCA_ActualCost.csv", "EA_ActualCost_Small.csv"):
        for src, out in by_row(con, name):
            assert out["ChargeCategory"] == category[get(src, "ChargeType")]
            assert out["PricingCategory"] == pricing[get(src, "PricingModel")]
            seen.add(get(src, "PricingModel"))
    assert {"On Demand", "OnDemand", "Spot"} <= seen


@pytest.mark.parametrize(
    "name", ["MCA_ActualCost.csv", "EA_AmortizedCost_Small.csv", "OldEA_ActualCost.csv", "PAYG_Usage.csv"]
)
def test_tags_become_the_json_object_azure_meant(con, name):
    for src, out in by_row(con, name):
        raw = get(src, "Tags").strip()
        if not raw:
            assert out["Tags"] is None
        else:
            assert json.loads(out["Tags"]) == json.loads(raw if raw.startswith("{") else "{" + raw + "}")


def test_subscription_is_null_for_the_zero_guid_and_for_none(con):
    zero = "00000000-0000-0000-0000-000000000000"
    seen = set()
    for name, column in (
        ("OldEA_AmortizedCost.csv", "SubscriptionGuid"),
        ("MCA_AmortizedCost.csv", "SubscriptionId"),
        ("EA2021_AmortizedCost.csv", "SubscriptionId"),
    ):
        for src, out in by_row(con, name):
            sub = src[column]
            if sub in ("", zero):
                assert (out["SubAccountId"], out["SubAccountType"], out["SubAccountName"]) == (
                    None,
                    None,
                    None,
                )
                seen.add(sub)
            else:
                assert (out["SubAccountId"], out["SubAccountType"]) == (sub, "Subscription")
    assert seen == {"", zero}


def test_billing_account_ea_and_mca(con):
    for src, out in by_row(con, "EA_ActualCost_Small.csv"):
        assert (out["BillingAccountId"], out["BillingAccountType"]) == (
            src["BillingAccountId"],
            "Billing Account",
        )
    for src, out in by_row(
        con, "MCA_ActualCost.csv"
    ):  # MCA: the billing profile is what an invoice belongs to
        assert (out["BillingAccountId"], out["BillingAccountName"], out["BillingAccountType"]) == (
            src["billingProfileId"],
            src["billingProfileName"],
            "Billing Profile",
        )
        assert out["BillingPeriodStart"] == "2024-03-01T00:00:00Z"
        assert out["BillingPeriodEnd"] == "2024-04-01T00:00:00Z"  # billingPeriodEndDate 2024-03-31, inclusive
    for _, out in by_row(
        con, "OldEA_ActualCost.csv"
    ):  # no billing columns at all: the reader's default applies
        assert "BillingAccountId" not in out
        assert out["BillingPeriodStart"] == "2019-10-01T00:00:00Z"
        assert out["BillingPeriodEnd"] == "2019-11-01T00:00:00Z"


def test_mca_prices_and_exchange_rate(con):
    for src, out in by_row(con, "MCA_AmortizedCost.csv"):
        assert out["x_CurrencyConversionRate"] == src["exchangeRatePricingToBilling"]  # pricing currency USD
        assert out["PricingCurrency"] == "USD"
        if src["paygCostInBillingCurrency"]:
            assert Decimal(out["ListCost"]) == Decimal(src["paygCostInBillingCurrency"])
        if src["unitPrice"] and src["quantity"]:
            rate = Decimal(src["exchangeRatePricingToBilling"])
            expected = Decimal(src["unitPrice"]) * Decimal(src["quantity"]) * rate
            assert abs(Decimal(out["ContractedCost"]) - expected) <= Decimal("1e-12")
    assert all("x_CurrencyConversionRate" not in out for _, out in by_row(con, "EA_ActualCost_Small.csv"))


def _lookup(name: str) -> list[dict[str, str]]:
    with (LOOKUPS / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_lookups_name_service_region_and_pricing_unit(con):
    services = {
        (r["ConsumedService"].lower(), r["ResourceType"].lower()): r for r in _lookup("azure_services.csv")
    }
    regions = {r["OriginalValue"].lower(): r for r in _lookup("azure_regions.csv")}
    units = {r["UnitOfMeasure"]: r for r in _lookup("azure_pricing_units.csv")}
    checked = 0
    for src, out in by_row(con, "EA_AmortizedCost_Small.csv"):
        rid = src["ResourceId"].lower()
        arm = rid.split("/providers/")[-1].split("/")
        key = (src["ConsumedService"].lower(), "/".join([arm[0], *arm[1:-1:2]]))
        if key in services:
            s = services[key]
            assert (out["ServiceName"], out["ServiceCategory"], out["ServiceSubcategory"]) == (
                s["ServiceName"],
                s["ServiceCategory"],
                s["ServiceSubcategory"],
            )
            checked += 1
        location = src["ResourceLocation"].lower()
        if location in regions:
            assert (out["RegionId"], out["RegionName"]) == (
                regions[location]["RegionId"],
                regions[location]["RegionName"],
            )
        unit = units[src["UnitOfMeasure"]]
        block = int(unit["PricingBlockSize"])
        assert out["ConsumedUnit"] == unit["DistinctUnits"]
        assert out["PricingUnit"] == (
            unit["DistinctUnits"] if block == 1 else f"{block} {unit['DistinctUnits']}"
        )
        assert Decimal(out["PricingQuantity"]) == Decimal(src["Quantity"])
        assert Decimal(out["ConsumedQuantity"]) == (Decimal(src["Quantity"]) * block).quantize(
            Decimal("1e-12")
        )
    assert checked > 20


def test_a_value_that_does_not_convert_passes_through_unchanged(con, tmp_path):
    rows = file_rows(FIXTURES / "EA_ActualCost_Small.csv")
    rows[1]["Date"], rows[2]["Cost"], rows[3]["Quantity"] = "2023.09.04", "2,64", "lots"
    out = converted(con, write(tmp_path / "bad.csv", rows), ds.AZURE_ACTUAL)
    assert out[1]["ChargePeriodStart"] == "2023.09.04" and out[1]["ChargePeriodEnd"] == "2023.09.04"
    assert out[2]["BilledCost"] == "2,64" and out[2]["EffectiveCost"] == "2,64"
    assert out[3]["PricingQuantity"] == "lots" and out[3]["ConsumedQuantity"] == "lots"


def test_typed_parquet_columns_convert_like_text(con, tmp_path):
    csv_path = FIXTURES / "EA_AmortizedCost_Small.csv"
    parquet = tmp_path / "amortized.parquet"
    con.execute(
        "COPY (SELECT * REPLACE (CAST(Cost AS DOUBLE) AS Cost, CAST(strptime(Date, '%m/%d/%Y') AS DATE) "
        "AS Date) FROM read_csv($p, all_varchar = true)) TO '" + str(parquet) + "' (FORMAT parquet)",
        {"p": str(csv_path)},
    )
    text_rows = converted(con, csv_path, ds.AZURE_AMORTIZED)
    typed_rows = converted(con, parquet, ds.AZURE_AMORTIZED)
    for t, p in zip(text_rows, typed_rows, strict=True):  # a DOUBLE is exact to 12 places here
        assert money(p["EffectiveCost"]) == money(t["EffectiveCost"])
        assert p["ChargePeriodStart"] == t["ChargePeriodStart"]
