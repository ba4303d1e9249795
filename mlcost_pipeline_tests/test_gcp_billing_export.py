"""GCP billing export: the sample generator's rows and their normalization to core.focus_costs."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from mlcost_pipeline.normalize.focus_schema import COLUMN_NAMES, NormalizationError
from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export
from mlcost_pipeline.sources.sample import org
from mlcost_pipeline.sources.sample.gcp_billing_export import GPU_POOL_NODES, export_rows

FIXTURE = Path(__file__).parent / "fixtures" / "gcp-billing-export-handmade" / "rows.json"
INGESTED = datetime(2026, 12, 2, 6, 0)
DAY = date(2026, 11, 14)


def _landed(rows: list[dict]) -> list[dict]:
    """What the pipeline hands the normalizer: the payload stored as JSON text, read back with exact decimals."""
    return [json.loads(json.dumps(r), parse_float=Decimal) for r in rows]


@pytest.fixture(scope="module")
def handmade() -> pl.DataFrame:
    return normalize_billing_export(json.loads(FIXTURE.read_text(), parse_float=Decimal), INGESTED)


def _row(df: pl.DataFrame, i: int) -> dict:
    return df.row(i, named=True)


def test_gcp_billing_export_two_credits_row_maps_by_hand(handmade):
    r = _row(handmade, 0)
    assert r["BilledCost"] == Decimal("0.5112")  # 1.264 - 0.2528 - 0.5
    assert r["EffectiveCost"] == Decimal("0.5112")
    assert (r["ListCost"], r["ContractedCost"]) == (Decimal("1.33"), Decimal("1.264"))
    assert (r["ChargeCategory"], r["PricingCategory"], r["ChargeClass"]) == ("Usage", "Standard", None)
    assert (r["ChargePeriodStart"], r["ChargePeriodEnd"]) == (datetime(2026, 11, 10, 13), datetime(2026, 11, 10, 14))
    # November 2026 in Pacific time: PDT until 1 Nov 02:00, PST on 1 Dec.
    assert (r["BillingPeriodStart"], r["BillingPeriodEnd"]) == (datetime(2026, 11, 1, 7), datetime(2026, 12, 1, 8))
    assert r["Tags"] == (
        '{"goog-project:env":"prod","goog-system:compute.googleapis.com/machine_spec":"n1-standard-4",'
        '"project":"churn_pred","team":"ml"}'
    )
    assert (r["SubAccountId"], r["SubAccountName"], r["SubAccountType"]) == ("proj-a", "Project A", "Project")
    assert (r["ServiceName"], r["ServiceCategory"], r["SkuId"]) == ("Compute Engine", "Compute", "2E27-4F75-95CD")
    assert r["ChargeDescription"] == "N1 Predefined Instance Core running in Americas"
    assert (r["RegionId"], r["AvailabilityZone"]) == ("us-central1", "us-central1-b")
    assert (r["ConsumedQuantity"], r["ConsumedUnit"]) == (Decimal(14400), "seconds")
    assert (r["PricingQuantity"], r["PricingUnit"]) == (Decimal(4), "hour")
    assert (r["BillingAccountId"], r["BillingCurrency"]) == ("012345-6789AB-CDEF01", "USD")
    assert r["x_ChargeDate"] == date(2026, 11, 10)
    assert (r["ProviderName"], r["PublisherName"], r["InvoiceIssuerName"]) == ("Google Cloud",) * 3
    assert (r["ServiceProviderName"], r["HostProviderName"]) == ("Google Cloud",) * 2
    assert (r["x_SourceSystem"], r["x_ExportVersion"], r["x_IngestedAt"]) == (
        "gcp_billing_export", "bq-standard-v1", INGESTED)


def test_gcp_billing_export_tax_row_maps_by_hand(handmade):
    r = _row(handmade, 1)
    assert (r["ChargeCategory"], r["PricingCategory"]) == ("Tax", None)
    assert r["BilledCost"] == r["EffectiveCost"] == r["ListCost"] == r["ContractedCost"] == Decimal("0.45")
    assert (r["SubAccountId"], r["SubAccountType"], r["Tags"]) == (None, None, None)
    assert (r["ServiceName"], r["ServiceCategory"]) == ("Invoice", "Other")


def test_gcp_billing_export_eur_row_with_string_numbers_maps_by_hand(handmade):
    r = _row(handmade, 2)
    assert r["BillingCurrency"] == "EUR"
    assert r["x_CurrencyConversionRate"] == Decimal("0.9234")
    assert r["BilledCost"] == Decimal("11.345677")  # 12.345678 - 1.000001
    assert r["ListCost"] == r["ContractedCost"] == Decimal("12.345678")  # no cost_at_list: list = cost
    assert (r["ChargePeriodStart"], r["ChargePeriodEnd"]) == (datetime(2026, 11, 30, 23), datetime(2026, 12, 1))
    assert r["ServiceCategory"] == "AI and Machine Learning"
    assert r["Tags"] == '{"model":"churn-lgbm"}'


def test_gcp_billing_export_adjustment_and_rounding_rows_map_by_hand(handmade):
    adjustment, rounding = _row(handmade, 3), _row(handmade, 4)
    assert (adjustment["ChargeCategory"], adjustment["ChargeClass"]) == ("Credit", "Correction")
    assert adjustment["BilledCost"] == Decimal("-2.5")
    assert adjustment["x_ChargeDate"] == date(2026, 10, 20)
    assert adjustment["BillingPeriodStart"] == datetime(2026, 11, 1, 7)  # the invoice month, not the usage month
    assert (rounding["ChargeCategory"], rounding["BilledCost"]) == ("Adjustment", Decimal("0.000001"))
    assert rounding["ChargePeriodStart"] == datetime(2026, 11, 10)  # no offset: UTC


def test_gcp_billing_export_numbers_as_int_float_decimal_or_str_agree():
    base = json.loads(FIXTURE.read_text())[0]
    variants = []
    for cost, credit in ((2, -1), (2.0, -1.0), (Decimal("2"), Decimal("-1")), ("2", "-1")):
        row = copy.deepcopy(base)
        row["cost"], row["credits"] = cost, [{"name": "x", "amount": credit, "type": "PROMOTION"}]
        variants.append(row)
    df = normalize_billing_export(variants, INGESTED)
    assert df["BilledCost"].to_list() == [Decimal(1)] * 4
    assert df["x_LineId"].to_list()[1:] == [f"{df['x_LineId'][0]}-{n}" for n in (1, 2, 3)]  # same key: suffixed


def test_gcp_billing_export_sample_rows_all_normalize():
    rows = export_rows(DAY)
    df = normalize_billing_export(_landed(rows), INGESTED)
    assert 100 <= len(rows) <= 300 and df.height == len(rows)
    assert df.columns == COLUMN_NAMES
    assert set(df["BillingCurrency"]) == {org.GCP_CURRENCY}
    assert set(df["SubAccountId"].drop_nulls()) == set(org.GCP_PROJECTS)
    assert df.filter(pl.col("ChargeCategory") == "Tax").height == 1
    assert df["x_LineId"].n_unique() == df.height
    pool = df.filter(pl.col("Tags").str.contains('"cluster":"gpu-shared"'))
    assert pool.height == GPU_POOL_NODES * 24 * 2
    assert set(pool["SubAccountId"]) == {"acme-shared-ml"}
    assert not pool["Tags"].str.contains('"(project|proj)":').any()
    assert df["Tags"].str.contains('"proj":').any() and df["Tags"].str.contains('"project":').any()
    user_labelled = pl.col("Tags").str.contains('"(project|proj|cluster)":')
    assert df.filter(~user_labelled.fill_null(False)).height > 0  # unlabelled resources exist
    credited = [r for r in rows if r["credits"]]
    assert {c["type"] for r in credited for c in r["credits"]} == {"SUSTAINED_USAGE_DISCOUNT", "PROMOTION"}
    assert all(c["amount"] < 0 for r in credited for c in r["credits"])
    assert any(len(r["credits"]) == 2 for r in rows)


def test_gcp_billing_export_sample_is_deterministic():
    first, second = export_rows(DAY), export_rows(DAY)
    assert first == second
    ids = [normalize_billing_export(_landed(r), INGESTED)["x_LineId"].to_list() for r in (first, second)]
    assert ids[0] == ids[1]
    assert export_rows(date(2026, 11, 15)) != first


def test_gcp_billing_export_billed_cost_equals_cost_plus_credits_per_day():
    for day in (DAY, date(2026, 11, 15), date(2026, 12, 1)):
        rows = _landed(export_rows(day))
        expected = sum(
            (r["cost"] + sum((c["amount"] for c in r["credits"]), Decimal(0)) for r in rows), Decimal(0)
        )
        df = normalize_billing_export(rows, INGESTED)
        assert df["x_ChargeDate"].unique().to_list() == [day]
        assert df["BilledCost"].sum() == expected


def test_gcp_billing_export_sample_invoice_month_is_pacific():
    df = normalize_billing_export(_landed(export_rows(date(2026, 12, 1))), INGESTED)
    early = df.filter(pl.col("ChargePeriodStart") == datetime(2026, 12, 1, 0))
    late = df.filter(pl.col("ChargePeriodStart") == datetime(2026, 12, 1, 12))
    assert set(early["BillingPeriodStart"]) == {datetime(2026, 11, 1, 7)}  # still 30 Nov in California
    assert set(late["BillingPeriodStart"]) == {datetime(2026, 12, 1, 8)}


def test_gcp_billing_export_sample_rate_is_eur_per_usd_near_092():
    rates = {r["currency_conversion_rate"] for d in (DAY, date(2026, 11, 15)) for r in export_rows(d)}
    assert len(rates) == 2 and all(0.91 < r < 0.93 for r in rates)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("cost", None, "field cost: missing"),
        ("cost", "12,50", "field cost: not a number"),
        ("cost", float("nan"), "field cost: not a finite number"),
        ("currency", "eur", "field currency"),
        ("currency", "EURO", "field currency"),
        ("cost_type", "credit", "field cost_type"),
        ("usage_start_time", "yesterday", "field usage_start_time"),
    ],
)
def test_gcp_billing_export_bad_row_names_row_and_field(field, value, needle):
    rows = json.loads(FIXTURE.read_text(), parse_float=Decimal)
    rows[1][field] = value
    with pytest.raises(NormalizationError, match=rf"gcp_billing_export: row 1: {needle}"):
        normalize_billing_export(rows, INGESTED)


def test_gcp_billing_export_missing_cost_key_names_row_and_field():
    rows = json.loads(FIXTURE.read_text(), parse_float=Decimal)
    del rows[2]["cost"]
    with pytest.raises(NormalizationError, match="row 2: field cost: missing"):
        normalize_billing_export(rows, INGESTED)


def test_gcp_billing_export_no_rows_gives_the_empty_contract():
    df = normalize_billing_export([], INGESTED)
    assert df.height == 0 and df.columns == COLUMN_NAMES
