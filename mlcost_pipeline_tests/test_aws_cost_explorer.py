"""AWS Cost Explorer: sample client, extraction loop (sample and moto + real boto3), normalizer."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import boto3
import polars as pl
import pytest
from moto import mock_aws

from mlcost_pipeline.normalize.aws_cost_explorer import normalize_cost_explorer
from mlcost_pipeline.normalize.focus_schema import COLUMN_NAMES, NormalizationError
from mlcost_pipeline.sources.aws_cost_explorer import (
    CostExplorerRequestCapError,
    cost_and_usage_request,
    fetch_cost_and_usage,
)
from mlcost_pipeline.sources.sample import org
from mlcost_pipeline.sources.sample.aws_cost_explorer import SampleCostExplorerClient

FIXTURES = Path(__file__).parent / "fixtures" / "aws-cost-explorer"
INGESTED = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
ACCOUNTS = list(org.AWS_ACCOUNTS)
START, END = date(2026, 11, 1), date(2026, 11, 5)


def _landed(records: list[tuple[date, dict]]) -> list[dict]:
    """What the pipeline hands the normalizer: each payload through JSON text, floats as Decimal."""
    return [json.loads(json.dumps(payload), parse_float=Decimal) for _, payload in records]


def _public_payload() -> dict:
    request_file = json.loads((FIXTURES / "awscli_example_get-cost-and-usage_request.json").read_text())
    request = {
        "TimePeriod": {"Start": "2017-09-01", "End": "2017-10-01"},
        "Granularity": "MONTHLY",
        "Metrics": ["BlendedCost", "UnblendedCost", "UsageQuantity"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "TAG", "Key": "Environment"}],
        "Filter": request_file["filters.json"],
    }
    text = (FIXTURES / "awscli_example_get-cost-and-usage_output.json").read_text()
    return {"request": request, "response": json.loads(text, parse_float=Decimal)}


def _sample_pull(page_size: int = 25, max_requests: int = 500):
    client = SampleCostExplorerClient(today=date(2026, 11, 22), page_size=page_size)
    return fetch_cost_and_usage(client, START, END, accounts=ACCOUNTS, max_requests=max_requests)


def _raw_unblended_total(records: list[tuple[date, dict]]) -> Decimal:
    return sum(
        (Decimal(g["Metrics"]["UnblendedCost"]["Amount"])
         for _, p in records for r in p["response"]["ResultsByTime"] for g in r["Groups"]),
        Decimal(0),
    )  # fmt: skip


def test_public_sample_normalizes_to_the_exact_file_total():
    payload = _public_payload()
    frame = normalize_cost_explorer([payload], INGESTED, billing_account_id="123456789012")

    expected = sum(
        (
            Decimal(g["Metrics"]["UnblendedCost"]["Amount"])
            for g in payload["response"]["ResultsByTime"][0]["Groups"]
        ),
        Decimal(0),
    )
    assert expected == Decimal("40.6226137778")
    assert frame.height == 2
    assert frame["BilledCost"].sum() == expected
    assert frame["ListCost"].sum() == expected
    assert frame.columns == COLUMN_NAMES
    first, second = frame.row(0, named=True), frame.row(1, named=True)
    assert first["ServiceName"] == "Amazon Simple Storage Service" and first["ServiceCategory"] == "Storage"
    assert first["Tags"] is None and second["Tags"] == '{"Environment":"Dev"}'
    assert first["ChargePeriodStart"] == datetime(2017, 9, 1) and first["ChargePeriodEnd"] == datetime(
        2017, 10, 1
    )
    assert first["BillingCurrency"] == "USD" and first["ChargeCategory"] == "Usage"
    assert first["ConsumedQuantity"] == Decimal("9312771.098461578") and first["ConsumedUnit"] is None
    assert first["x_Estimated"] is False and first["BillingAccountId"] == "123456789012"


@pytest.mark.parametrize("as_type", [str, float, Decimal])
def test_normalizer_accepts_amounts_as_any_number_type(as_type):
    payload = _public_payload()
    for group in payload["response"]["ResultsByTime"][0]["Groups"]:
        group["Metrics"]["UnblendedCost"]["Amount"] = as_type(group["Metrics"]["UnblendedCost"]["Amount"])
    frame = normalize_cost_explorer([payload], INGESTED)
    assert frame["BilledCost"].sum() == Decimal("40.6226137778")
    assert frame["BillingAccountId"].to_list() == ["unknown", "unknown"]


def test_group_keys_are_matched_by_position_in_any_order():
    payload = _public_payload()
    response = payload["response"]
    response["GroupDefinitions"].reverse()
    for group in response["ResultsByTime"][0]["Groups"]:
        group["Keys"].reverse()
    frame = normalize_cost_explorer([payload], INGESTED)
    assert frame["ServiceName"].to_list() == ["Amazon Simple Storage Service"] * 2
    assert frame["Tags"].to_list() == [None, '{"Environment":"Dev"}']


def test_sample_pages_normalize_to_the_raw_totals():
    pull = _sample_pull()
    frame = normalize_cost_explorer(_landed(pull.records), INGESTED, billing_account_id=org.AWS_PAYER_ACCOUNT)

    assert frame["BilledCost"].sum() == _raw_unblended_total(pull.records)
    assert frame["x_LineId"].n_unique() == frame.height
    assert set(frame["SubAccountId"]) == set(ACCOUNTS)
    assert set(frame["x_ChargeDate"]) == {date(2026, 11, d) for d in range(1, 5)}
    assert frame.filter(pl.col("ServiceName") == "Tax")["ChargeCategory"].unique().to_list() == ["Tax"]
    # the overhead account is never tagged; prod carries spelling variants of the churn project
    assert (
        frame.filter(pl.col("SubAccountId") == "333333333333")["Tags"].null_count()
        == frame.filter(pl.col("SubAccountId") == "333333333333").height
    )
    churn = frame.filter(pl.col("Tags").str.contains("(?i)churn"))["Tags"].unique().to_list()
    assert len(churn) >= 2
    assert (frame["EffectiveCost"] <= frame["BilledCost"]).all()
    assert frame.filter(pl.col("ServiceCategory") == "Other")["ServiceName"].unique().to_list() == ["Tax"]


def test_paging_is_followed_and_gives_the_same_rows_as_one_big_page():
    paged, single = _sample_pull(page_size=7), _sample_pull(page_size=10_000)
    assert single.requests == len(ACCOUNTS)
    assert paged.requests > 3 * len(ACCOUNTS)
    paged_frame = normalize_cost_explorer(_landed(paged.records), INGESTED)
    single_frame = normalize_cost_explorer(_landed(single.records), INGESTED)
    assert sorted(paged_frame["x_LineId"]) == sorted(single_frame["x_LineId"])
    assert paged_frame["BilledCost"].sum() == single_frame["BilledCost"].sum()


def test_records_are_one_per_page_day_with_the_request_without_token():
    pull = _sample_pull(page_size=7)
    for day, payload in pull.records:
        results = payload["response"]["ResultsByTime"]
        assert len(results) == 1 and results[0]["TimePeriod"]["Start"] == day.isoformat()
        assert "NextPageToken" not in payload["request"]
        assert payload["request"]["Filter"]["Dimensions"]["Key"] == "LINKED_ACCOUNT"


def test_line_ids_are_stable_across_runs():
    first = normalize_cost_explorer(_landed(_sample_pull().records), INGESTED)
    second = normalize_cost_explorer(_landed(_sample_pull().records), datetime(2026, 11, 23, tzinfo=UTC))
    assert first["x_LineId"].to_list() == second["x_LineId"].to_list()


def test_sample_generator_is_deterministic_per_day_and_account():
    kwargs = cost_and_usage_request(START, END, "111111111111", "Project", ["UnblendedCost"])
    a = SampleCostExplorerClient(today=date(2026, 11, 22)).get_cost_and_usage(**kwargs)
    b = SampleCostExplorerClient(today=date(2026, 11, 22)).get_cost_and_usage(**copy.deepcopy(kwargs))
    assert a == b
    days = [r["Groups"] for r in a["ResultsByTime"] if r["Groups"]]
    assert days[0] != days[1]


def test_sample_honours_metrics_filter_and_estimated():
    kwargs = cost_and_usage_request(
        date(2026, 11, 18), date(2026, 11, 20), "333333333333", "Project", ["AmortizedCost"]
    )
    response = SampleCostExplorerClient(today=date(2026, 11, 22)).get_cost_and_usage(**kwargs)
    groups = [g for r in response["ResultsByTime"] for g in r["Groups"]]
    assert {tuple(g["Metrics"]) for g in groups} == {("AmortizedCost",)}
    assert {g["Keys"][0] for g in groups} == {"Project$"}
    assert [r["Estimated"] for r in response["ResultsByTime"]] == [False, True]


def test_request_cap_raises_before_paying_for_more():
    with pytest.raises(CostExplorerRequestCapError, match="max_requests=2"):
        _sample_pull(page_size=7, max_requests=2)


def test_malformed_page_names_the_page_and_field():
    good = _public_payload()
    missing = copy.deepcopy(good)
    del missing["response"]["ResultsByTime"][0]["Groups"][1]["Metrics"]
    with pytest.raises(NormalizationError, match=r"page 1, ResultsByTime\[0\], Groups\[1\]: field Metrics"):
        normalize_cost_explorer([good, missing], INGESTED)

    bad_amount = copy.deepcopy(good)
    bad_amount["response"]["ResultsByTime"][0]["Groups"][0]["Metrics"]["UnblendedCost"]["Amount"] = "12,5"
    with pytest.raises(
        NormalizationError, match=r"page 0, .*Groups\[0\], field Metrics.UnblendedCost.Amount"
    ):
        normalize_cost_explorer([bad_amount], INGESTED)

    no_unblended = copy.deepcopy(good)
    del no_unblended["response"]["ResultsByTime"][0]["Groups"][0]["Metrics"]["UnblendedCost"]
    with pytest.raises(NormalizationError, match="Metrics.UnblendedCost is missing"):
        normalize_cost_explorer([no_unblended], INGESTED)


def _moto_page(day: str, next_day: str, groups: list[tuple[str, str]], token: str | None) -> dict:
    page = {
        "GroupDefinitions": [{"Type": "TAG", "Key": "Project"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
        "ResultsByTime": [{
            "TimePeriod": {"Start": day, "End": next_day}, "Total": {}, "Estimated": False,
            "Groups": [{"Keys": [tag, "Amazon SageMaker"],
                        "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"},
                                    "AmortizedCost": {"Amount": amount, "Unit": "USD"}}}
                       for tag, amount in groups],
        }],
        "DimensionValueAttributes": [],
    }  # fmt: skip
    if token:
        page["NextPageToken"] = token
    return page


def test_fetch_follows_next_page_token_with_real_boto3_against_moto(monkeypatch):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
        monkeypatch.setenv(name, value)
    pages = [
        _moto_page("2026-11-01", "2026-11-02", [("Project$churn", "12.5000000000")], "page-2"),
        _moto_page("2026-11-01", "2026-11-02", [("Project$recsys", "3.2500000000")], "page-3"),
        _moto_page("2026-11-02", "2026-11-03", [("Project$", "0.4200000000")], None),
    ]
    with mock_aws():
        from moto.ce.models import ce_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        ce_backends[DEFAULT_ACCOUNT_ID]["aws"].cost_usage_results_queue.extend(pages)
        client = boto3.client("ce", region_name="us-east-1")
        pull = fetch_cost_and_usage(client, date(2026, 11, 1), date(2026, 11, 3), accounts=["111111111111"])

    assert pull.requests == 3
    assert [day for day, _ in pull.records] == [date(2026, 11, 1), date(2026, 11, 1), date(2026, 11, 2)]
    assert all("ResponseMetadata" not in p["response"] for _, p in pull.records)
    frame = normalize_cost_explorer(_landed(pull.records), INGESTED, billing_account_id=org.AWS_PAYER_ACCOUNT)
    assert frame["BilledCost"].sum() == Decimal("16.17")
    assert frame["SubAccountId"].unique().to_list() == ["111111111111"]
    assert frame["Tags"].to_list() == ['{"Project":"churn"}', '{"Project":"recsys"}', None]
