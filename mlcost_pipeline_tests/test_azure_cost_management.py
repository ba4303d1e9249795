"""Azure Cost Management Query API: sample query, extraction loop, normalizer."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import polars as pl
import pytest

from mlcost_pipeline.normalize.azure_cost_management import normalize_cost_query
from mlcost_pipeline.normalize.focus_schema import COLUMN_NAMES, NormalizationError
from mlcost_pipeline.sources.azure_cost_management import fetch_cost_query, query_windows
from mlcost_pipeline.sources.sample import org
from mlcost_pipeline.sources.sample.azure_cost_management import SampleCostQuery

FIXTURES = Path(__file__).parent / "fixtures" / "azure-rest-api-specs-costmanagement"
INGESTED = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
SUBSCRIPTION = next(iter(org.AZURE_SUBSCRIPTIONS))
SCOPE = f"/subscriptions/{SUBSCRIPTION}"
STEP = Decimal("1e-12")


def _stored(value: Decimal) -> Decimal:
    return value.quantize(STEP, rounding=ROUND_HALF_EVEN)


def _landed(records: list[tuple[date, dict]]) -> list[dict]:
    """What the pipeline hands the normalizer: each payload through JSON text, floats as Decimal."""
    return [json.loads(json.dumps(payload), parse_float=Decimal) for _, payload in records]


def _example(name: str) -> tuple[dict, dict]:
    """(payload as landed, exact costs from the JSON text) of a public azure-rest-api-specs example."""
    example = json.loads((FIXTURES / name).read_text(), parse_float=Decimal)
    request = {"scope": example["parameters"]["scope"], "type": example["parameters"]["parameters"]["type"],
               "api_version": example["parameters"]["api-version"]}  # fmt: skip
    return {"request": request, "response": example["responses"]["200"]["body"]}, example


class _Spy:
    """Counts calls and records the query windows asked of the wrapped query."""

    def __init__(self, inner):
        self.inner, self.windows, self.next_calls = inner, [], 0

    def usage(self, scope, parameters):
        self.windows.append(
            (parameters["type"], parameters["timePeriod"]["from"][:10], parameters["timePeriod"]["to"][:10])
        )
        return self.inner.usage(scope, parameters)

    def next_page(self, next_link):
        self.next_calls += 1
        return self.inner.next_page(next_link)


def _sample_records(start=date(2026, 10, 30), end=date(2026, 11, 3), page_size=20):
    return fetch_cost_query(SampleCostQuery(page_size=page_size), SCOPE, start, end)


def _raw_total(records, cost_type: str) -> Decimal:
    return sum(
        (_stored(Decimal(str(row[0]))) for _, p in records if p["request"]["type"] == cost_type
         for row in p["response"]["properties"]["rows"]),
        Decimal(0),
    )  # fmt: skip


def test_public_subscription_query_normalizes_to_the_file_totals():
    payload, _ = _example("SubscriptionQuery.json")
    frame = normalize_cost_query([payload], INGESTED)

    exact = [Decimal(str(row[0])) for row in payload["response"]["properties"]["rows"]]
    assert frame.height == 4 and frame.columns == COLUMN_NAMES
    # each cost is kept at the stored scale (12 decimals, half-even); the file has up to 18
    assert frame["BilledCost"].sum() == sum(_stored(c) for c in exact)
    assert abs(frame["BilledCost"].sum() - sum(exact)) <= Decimal("0.5e-12") * len(exact)
    assert frame["EffectiveCost"].sum() == frame["BilledCost"].sum()  # only one cost type was queried
    row = frame.row(1, named=True)
    assert row["x_ResourceGroupName"] == "Ict_StratAndPlan_GoldSprova_Prod"
    assert row["ChargePeriodStart"] == datetime(2018, 3, 31) and row["ChargePeriodEnd"] == datetime(
        2018, 4, 1
    )
    assert row["BillingPeriodStart"] == datetime(2018, 3, 1) and row["BillingPeriodEnd"] == datetime(
        2018, 4, 1
    )
    assert (
        row["SubAccountId"] == "00000000-0000-0000-0000-000000000000"
        and row["SubAccountType"] == "Subscription"
    )
    assert row["BillingAccountId"] == "00000000-0000-0000-0000-000000000000"
    assert row["ServiceName"] == "Unknown" and row["ProviderName"] == "Microsoft"
    assert row["x_ExportVersion"] == "2023-03-01"


def test_public_grouping_query_without_usage_date_is_refused():
    payload, _ = _example("SubscriptionQueryGrouping.json")
    with pytest.raises(NormalizationError, match="page 0, response: column UsageDate is missing"):
        normalize_cost_query([payload], INGESTED)


@pytest.mark.parametrize("column", ["Cost", "PreTaxCost", "CostUSD", "PreTaxCostUSD"])
def test_every_cost_column_name_is_accepted(column):
    payload, _ = _example("SubscriptionQuery.json")
    payload["response"]["properties"]["columns"][0]["name"] = column
    rows = payload["response"]["properties"]["rows"]
    rows[0][3] = "EUR"
    frame = normalize_cost_query([payload], INGESTED)
    assert frame["BilledCost"].sum() == sum(_stored(Decimal(str(r[0]))) for r in rows)
    assert frame["BillingCurrency"][0] == ("USD" if column.endswith("USD") else "EUR")


def test_sample_pages_normalize_to_the_raw_totals_with_actual_and_amortized_joined():
    records = _sample_records()
    frame = normalize_cost_query(_landed(records), INGESTED)

    assert frame["BilledCost"].sum() == _raw_total(records, "ActualCost")
    assert frame["EffectiveCost"].sum() == _raw_total(records, "AmortizedCost")
    assert frame["x_LineId"].n_unique() == frame.height
    # one row per (resource, service) of the sample: Actual and Amortized joined, not stacked
    assert frame.filter(pl.col("x_ChargeDate") == date(2026, 11, 2)).height == 15
    purchase = frame.filter(pl.col("ChargeCategory") == "Purchase")
    assert purchase["x_ChargeDate"].to_list() == [date(2026, 11, 1)]
    assert purchase["EffectiveCost"].to_list() == [Decimal(0)] and purchase["BilledCost"][0] > 0
    reserved = frame.filter(
        pl.col("ResourceName") == "llm-a100-01", pl.col("ServiceName") == "Virtual Machines"
    )
    assert (reserved["BilledCost"] == 0).all() and (reserved["EffectiveCost"] > 0).all()
    shared = frame.filter(pl.col("x_ResourceGroupName") == "rg-shared-gpu")
    assert shared.height and shared["Tags"].null_count() == shared.height
    vm = frame.filter(
        pl.col("ResourceName") == "llm-a100-02", pl.col("ServiceName") == "Virtual Machines"
    ).row(0, named=True)
    assert vm["ResourceType"] == "Microsoft.Compute/virtualMachines" and vm["ServiceCategory"] == "Compute"
    assert vm["Tags"] == '{"Project":"llm-assistant"}' and vm["x_ResourceGroupName"] == "rg-llm-assistant"
    assert set(frame["ServiceCategory"]) == {"Compute", "Storage", "AI and Machine Learning", "Networking"}


def test_paging_follows_next_link_and_gives_the_same_rows_as_one_big_page():
    spy = _Spy(SampleCostQuery(page_size=20))
    paged = fetch_cost_query(spy, SCOPE, date(2026, 10, 30), date(2026, 11, 3))
    single = _sample_records(page_size=10_000)
    assert spy.next_calls >= 4
    assert all(len(p["response"]["properties"]["rows"]) <= 20 for _, p in paged)
    paged_frame, single_frame = (
        normalize_cost_query(_landed(paged), INGESTED),
        normalize_cost_query(_landed(single), INGESTED),
    )
    assert sorted(paged_frame["x_LineId"]) == sorted(single_frame["x_LineId"])
    assert paged_frame["BilledCost"].sum() == single_frame["BilledCost"].sum()


def test_records_are_one_per_page_day():
    for day, payload in _sample_records():
        dates = {row[1] for row in payload["response"]["properties"]["rows"]}
        assert dates == {int(day.strftime("%Y%m%d"))}
        assert payload["request"]["scope"] == SCOPE and payload["request"]["api_version"] == "2023-03-01"


def test_long_windows_are_split_into_31_day_queries():
    assert query_windows(date(2026, 1, 1), date(2026, 3, 5)) == [
        (date(2026, 1, 1), date(2026, 1, 31)), (date(2026, 2, 1), date(2026, 3, 3)), (date(2026, 3, 4), date(2026, 3, 4)),
    ]  # fmt: skip
    spy = _Spy(SampleCostQuery(page_size=1000))
    records = fetch_cost_query(spy, SCOPE, date(2026, 1, 1), date(2026, 3, 1))
    assert spy.windows == [
        ("ActualCost", "2026-01-01", "2026-01-31"), ("ActualCost", "2026-02-01", "2026-02-28"),
        ("AmortizedCost", "2026-01-01", "2026-01-31"), ("AmortizedCost", "2026-02-01", "2026-02-28"),
    ]  # fmt: skip
    assert {day for day, _ in records} == {date(2026, 1, 1) + timedelta(days=n) for n in range(59)}


def test_sample_is_deterministic():
    parameters = {"type": "ActualCost", "timeframe": "Custom",
                  "timePeriod": {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T23:59:59Z"},
                  "dataset": {"granularity": "Daily", "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
                              "grouping": [{"type": "Dimension", "name": "ResourceId"}]}}  # fmt: skip
    a = SampleCostQuery().usage(SCOPE, parameters)
    b = SampleCostQuery().usage(SCOPE, copy.deepcopy(parameters))
    assert a == b
    assert (
        a["properties"]["rows"][0][0]
        != SampleCostQuery().next_page(a["properties"]["nextLink"])["properties"]["rows"][0][0]
    )


def test_missing_column_and_bad_currency_name_the_page_and_field():
    payload, _ = _example("SubscriptionQuery.json")
    no_currency = copy.deepcopy(payload)
    no_currency["response"]["properties"]["columns"].pop(3)
    for row in no_currency["response"]["properties"]["rows"]:
        row.pop(3)
    with pytest.raises(NormalizationError, match="page 1, response: column Currency is missing"):
        normalize_cost_query([payload, no_currency], INGESTED)

    bad_currency = copy.deepcopy(payload)
    bad_currency["response"]["properties"]["rows"][2][3] = "usd"
    with pytest.raises(
        NormalizationError, match="page 0, row 2, field Currency: not an ISO 4217 code: 'usd'"
    ):
        normalize_cost_query([bad_currency], INGESTED)

    bad_cost = copy.deepcopy(payload)
    bad_cost["response"]["properties"]["rows"][1][0] = "n/a"
    with pytest.raises(NormalizationError, match="page 0, row 1, field PreTaxCost: not a number"):
        normalize_cost_query([bad_cost], INGESTED)

    no_cost = copy.deepcopy(payload)
    no_cost["response"]["properties"]["columns"][0]["name"] = "Quantity"
    with pytest.raises(NormalizationError, match="page 0, response: no cost column"):
        normalize_cost_query([no_cost], INGESTED)
