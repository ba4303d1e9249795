"""Google's native FOCUS export table (`gcp_billing_export_focus_<ACCOUNT>`, preview) read like any FOCUS source:
found by its name or its FOCUS columns, aggregated per UTC day over the FOCUS dimensions in BigQuery (the stub
runs the GoogleSQL in DuckDB over a table of the live table's 55 columns), money summed exactly and landed in
raw.gcp_billing_export as FOCUS-named records marked `"x_Dataset": "focus"`. Expectations come from the rows.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest

from mlcost_pipeline.normalize.focus_schema import COLUMN_NAMES
from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export
from mlcost_pipeline.normalize.gcp_focus_export import focus_rows
from mlcost_pipeline.sources.gcp_billing_export import describe_table, fetch_billing_export
from mlcost_pipeline.sources.landing_checks import SourceDataError
from mlcost_pipeline.warehouse.raw_landing import land_records, read_payloads
from mlcost_pipeline.warehouse.schema import ensure_schema
from mlcost_pipeline_tests.connector_helpers import failure_message, live_settings, materialize_day
from mlcost_pipeline_tests.stubs.gcp import GcpStub, google_adc
from mlcost_pipeline_tests.stubs.gcp_schemas import FOCUS_TABLE_COLUMNS

ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
TABLE = "acme-billing.gcp_billing_immutable_01A2B3_C4D5E6_F7A8B9_us.gcp_billing_export_focus_01A2B3_C4D5E6_F7A8B9"
DAYS = [date(2026, 10, 14), date(2026, 10, 15)]
MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity", "PricingQuantity")


def _iso(ts: datetime) -> str:
    return ts.replace(tzinfo=UTC).isoformat()


def _row(start: datetime, *, billed: str, cost_type: str = "regular", sku: str = "N2C0-0003-CORE",
         project: str = "acme-search", labels: dict | None = None, exported: datetime | None = None,
         hours: int = 1) -> dict:  # fmt: skip
    end = start + timedelta(hours=hours)
    billed_d = Decimal(billed)
    category = {"regular": "Usage", "tax": "Tax", "adjustment": "Adjustment"}[cost_type]
    return {
        "AvailabilityZone": "europe-west4-a", "BilledCost": billed, "BillingAccountId": ACCOUNT,
        "BillingCurrency": "EUR", "BillingPeriodStart": "2026-10-01T07:00:00+00:00",
        "BillingPeriodEnd": "2026-11-01T07:00:00+00:00", "ChargeCategory": category, "ChargeClass": None,
        "ChargeDescription": f"{sku} running in EMEA", "ChargePeriodStart": _iso(start), "ChargePeriodEnd": _iso(end),
        "ConsumedQuantity": str(8 * hours) if cost_type == "regular" else None, "ConsumedUnit": "hour",
        "ContractedCost": str(billed_d + Decimal("0.1")), "ContractedUnitPrice": "0.034773",
        "ListCost": str(billed_d + Decimal("0.2")), "ListUnitPrice": "0.036603", "PricingCategory": "Standard",
        "PricingQuantity": str(8 * hours), "PricingUnit": "hour", "ProviderName": "Google Cloud",
        "PublisherName": "Google Cloud", "RegionId": "europe-west4", "RegionName": "Netherlands",
        "ResourceId": None, "ResourceName": None, "ServiceName": "Compute Engine", "SkuId": sku, "SkuPriceId": None,
        "SubAccountId": project, "SubAccountName": project.title(),
        "x_Credits": [{"Name": "Sustained usage discount", "Amount": "-0.1", "FullName": None, "Id": "",
                       "Type": "SUSTAINED_USAGE_DISCOUNT"}],
        "x_CostType": cost_type, "x_CurrencyConversionRate": 0.9234,
        "x_ExportTime": _iso(exported or end + timedelta(hours=3)),
        "x_Location": "europe-west4", "x_Project": {"Id": project, "Number": "42", "Name": project.title(),
                                                    "AncestryNumbers": "/1/42/", "Ancestors": []},
        "x_ServiceId": "6F81-5844-456A", "x_SystemLabels": [{"Key": "compute.googleapis.com/cores", "Value": "8"}],
        "x_Labels": [{"Key": k, "Value": v} for k, v in (labels or {}).items()],
        "x_ProjectLabels": [{"Key": "env", "Value": "prod"}], "x_Tags": [],
        "EffectiveCost": billed, "PricingCurrency": "USD", "PricingCurrencyContractedUnitPrice": "0.0377",
        "PricingCurrencyEffectiveCost": str(billed_d * 2), "PricingCurrencyListUnitPrice": "0.0397",
        "BillingAccountType": "Billing Account", "x_SubscriptionInstanceId": None,
        "x_PriceEffectivePriceDefault": None, "x_PriceListPriceConsumptionModel": None,
        "x_CostAtEffectivePriceDefault": None, "x_CostAtListConsumptionModel": None, "x_ConsumptionModelId": None,
        "x_ConsumptionModelDescription": None,
    }  # fmt: skip


def _rows() -> list[dict]:
    rows = []
    for day in DAYS:
        start = datetime.combine(day, datetime.min.time())
        for h in range(24):
            rows.append(_row(start + timedelta(hours=h), billed=f"0.{h + 10:02d}1234", labels={"proj": "search"}))
            rows.append(_row(start + timedelta(hours=h), billed="0.25", sku="A1C0-0001-GPU1", project="acme-recsys"))
        rows.append(_row(start, billed="1.19", cost_type="tax", hours=24, sku="TAX"))
        rows.append(_row(start, billed="-2.5", cost_type="adjustment", hours=24))
    return rows


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    with (GcpStub(_rows(), table=TABLE, columns=FOCUS_TABLE_COLUMNS, export_time="x_ExportTime",
                  account_names={ACCOUNT: "Acme ML billing"}) as s,
          google_adc(s, tmp_path_factory.mktemp("gcp_focus"))):  # fmt: skip
        yield s


@pytest.fixture
def client(stub):
    from google.cloud import bigquery

    return bigquery.Client(project="acme-billing", client_options={"api_endpoint": stub.url})


def _fetch(client, stub, rows=None):
    stub.load(rows or _rows(), columns=FOCUS_TABLE_COLUMNS, export_time="x_ExportTime")
    stub.queries.clear()
    return fetch_billing_export(client, describe_table(client, stub.table), DAYS[0], DAYS[-1] + timedelta(days=1))


def test_the_focus_table_is_found_by_its_name_or_its_focus_columns(client, stub):
    assert describe_table(client, stub.table).dataset == "focus"
    copy = "acme-billing.finops.focus_daily_copy"  # a user's copy of the table: no Google name, FOCUS columns
    stub.table = copy
    try:
        assert describe_table(client, copy).dataset == "focus"
    finally:
        stub.table = TABLE


def test_aggregated_per_day_with_money_summed_exactly(client, stub):
    rows = _rows()
    pull = _fetch(client, stub, rows)
    [sql] = stub.queries
    assert "@window_start" in sql and "_PARTITIONTIME >= TIMESTAMP_SUB(@window_start, INTERVAL 1 DAY)" in sql
    payloads = [p for _, p in pull.records]
    assert all(p["x_Dataset"] == "focus" for p in payloads)
    assert len(payloads) == 4 * len(DAYS)  # two SKUs, tax and adjustment kept apart, per day
    assert pull.export_rows == sum(p["x_ExportRows"] for p in payloads) == len(rows)
    for day in DAYS:
        mine = [r for r in rows if r["ChargePeriodStart"].startswith(str(day))]
        landed = [p for d, p in pull.records if d == day]
        usage = next(p for p in landed if p["ChargeCategory"] == "Usage")
        for column in MONEY:
            assert isinstance(usage[column], str)  # exact text, never a float
            assert sum(Decimal(p[column]) for p in landed if p[column] is not None) == sum(
                Decimal(r[column]) for r in mine if r[column] is not None), column
    gpu = next(p for p in payloads if p["SkuId"] == "A1C0-0001-GPU1")
    assert (gpu["ChargePeriodStart"], gpu["ChargePeriodEnd"]) == ("2026-10-14T00:00:00+00:00",
                                                                   "2026-10-15T00:00:00+00:00")
    assert Decimal(gpu["ListUnitPrice"]) == Decimal("0.036603")  # a unit price is a dimension, never summed
    assert {p["x_CostType"] for p in payloads} == {"regular", "tax", "adjustment"}
    assert set(payloads[0]) >= {"BillingAccountId", "ServiceName", "SubAccountId", "RegionId", "BillingPeriodStart"}


def test_records_land_in_raw_gcp_billing_export_as_focus_named_dicts(client, stub, tmp_path):
    pull = _fetch(client, stub)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ensure_schema(con)
        n = land_records(con, "raw.gcp_billing_export", DAYS[0], DAYS[-1] + timedelta(days=1), pull.records, "live")
        landed, _ = read_payloads(con, "raw.gcp_billing_export", DAYS[0], DAYS[-1] + timedelta(days=1))
    assert n == len(pull.records) and landed == [json.loads(json.dumps(p)) for _, p in pull.records]
    rows = focus_rows(landed)
    assert all(set(r) <= set(COLUMN_NAMES) for r in rows)
    search = next(r for r in rows if r["SubAccountId"] == "acme-search" and r["SkuId"] == "N2C0-0003-CORE"
                  and r["ChargeCategory"] == "Usage")  # fmt: skip
    # the same keys as the standard export's Tags: user labels bare, system and project labels prefixed
    assert json.loads(search["Tags"]) == {"proj": "search", "goog-system:compute.googleapis.com/cores": "8",
                                          "goog-project:env": "prod"}  # fmt: skip
    frame = normalize_billing_export(landed, datetime(2026, 10, 20))  # what core.focus_costs is built with
    assert frame.height == len(landed) and set(frame["x_SourceSystem"]) == {"gcp_billing_export"}
    for day in DAYS:
        mine = [r for r in _rows() if r["ChargePeriodStart"].startswith(str(day))]
        built = frame.filter(frame["x_ChargeDate"] == day)
        for column in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
            assert built[column].sum() == sum(Decimal(r[column]) for r in mine), column
    assert frame["x_LineId"].n_unique() == frame.height


def test_rows_exported_later_are_picked_up_by_the_re_pull(client, stub):
    rows = _rows()
    late = _row(datetime(2026, 10, 14, 9), billed="3.75", sku="LATE-SKU", exported=datetime(2026, 10, 18, 2))
    before, after = _fetch(client, stub, rows), _fetch(client, stub, [*rows, late])
    total = lambda pull: sum(Decimal(p["BilledCost"]) for d, p in pull.records if d == DAYS[0])  # noqa: E731
    assert total(after) - total(before) == Decimal("3.75")
    assert after.export_rows == before.export_rows + 1


def test_a_focus_row_ending_before_it_starts_is_refused(client, stub):
    rows = _rows()
    rows[3]["ChargePeriodEnd"] = "2026-10-14T00:30:00+00:00"  # starts at 01:00
    with pytest.raises(SourceDataError) as err:
        _fetch(client, stub, rows)
    message = str(err.value)
    assert message.startswith(f"gcp_billing_export partition {DAYS[0]}: table {TABLE}: 1 export row(s) of usage "
                              f"day {DAYS[0]} have ChargePeriodEnd before ChargePeriodStart")  # fmt: skip
    assert "ChargePeriodEnd: before ChargePeriodStart" in message and "SkuId=A1C0-0001-GPU1" in message


def _settings(stub, root):
    return live_settings(root, "gcp", MLCOST_GCP_BILLING_TABLE=TABLE, MLCOST_BIGQUERY_API_ENDPOINT=stub.url,
                         MLCOST_CLOUD_BILLING_API_ENDPOINT=stub.url)  # fmt: skip


def test_the_focus_table_lands_and_normalizes_end_to_end(stub, tmp_path):
    rows = _rows()
    stub.load(rows, columns=FOCUS_TABLE_COLUMNS, export_time="x_ExportTime")
    settings = _settings(stub, tmp_path)
    result = materialize_day(settings, "raw.gcp_billing_export", DAYS[0])
    assert result.success, failure_message(result)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        got = con.execute("SELECT ChargeCategory, sum(BilledCost), sum(EffectiveCost), any_value(BillingAccountName) "
                          "FROM core.focus_costs WHERE x_ChargeDate = $d GROUP BY 1 ORDER BY 1",
                          {"d": DAYS[0]}).fetchall()  # fmt: skip
    expected = {}
    for r in (r for r in rows if r["ChargePeriodStart"].startswith(str(DAYS[0]))):
        expected[r["ChargeCategory"]] = expected.get(r["ChargeCategory"], Decimal(0)) + Decimal(r["BilledCost"])
    assert [(c, b) for c, b, _, _ in got] == sorted(expected.items())
    assert {e for _, _, e, _ in got} == {b for _, b, _, _ in got} and {n for *_, n in got} == {"Acme ML billing"}
