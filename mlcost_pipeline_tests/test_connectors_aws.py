"""AWS Cost Explorer live connector: the real boto3 `ce` client against moto's server, seeded with pages."""

from __future__ import annotations

import copy
import logging
from datetime import date
from decimal import Decimal

import pytest
from moto.server import ThreadedMotoServer

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.sources.aws_cost_explorer import CostExplorerRequestCapError, parse_group_by
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    live_settings,
    materialize_day,
)
from mlcost_pipeline_tests.stubs.aws import sample_pages, seed

ACCOUNTS = ["111111111111", "222222222222"]
START, END = date(2026, 11, 19), date(2026, 11, 22)  # the sample's "today" is 2026-11-22: these are Estimated


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch):
    # The SDK's standard chain reads these; moto accepts any.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _resource(endpoint, tmp_path, **env):
    settings = live_settings(tmp_path, "aws", MLCOST_AWS_ENDPOINT_URL=endpoint,
                             MLCOST_AWS_ACCOUNTS=",".join(ACCOUNTS), MLCOST_AWS_PAYER_ACCOUNT="999999999999", **env)
    return build_resources(settings)["aws_billing"]


def _unblended(records_or_pages):
    total = Decimal(0)
    for item in records_or_pages:
        page = item[1]["response"] if isinstance(item, tuple) else item
        for result in page["ResultsByTime"]:
            for group in result["Groups"]:
                total += Decimal(group["Metrics"]["UnblendedCost"]["Amount"])
    return total


def test_live_pull_follows_next_page_token_per_account_and_logs_the_request_count(moto_endpoint, tmp_path, caplog):
    pages = sample_pages(START, END, ACCOUNTS, page_size=10)
    assert len(pages) > len(ACCOUNTS)  # several pages per account
    seed(moto_endpoint, pages)
    with caplog.at_level(logging.INFO):
        records = _resource(moto_endpoint, tmp_path).pull(START, END, log=logging.getLogger("test"))
    assert _unblended(records) == _unblended(pages) > 0
    assert {d for d, _ in records} == {date(2026, 11, 19), date(2026, 11, 20), date(2026, 11, 21)}
    assert all(p["response"]["ResultsByTime"][0]["Estimated"] is True for _, p in records)
    assert {p["request"]["Filter"]["Dimensions"]["Values"][0] for _, p in records} == set(ACCOUNTS)
    assert all(p["billing_account_id"] == "999999999999" for _, p in records)
    assert f"{len(pages)} GetCostAndUsage request(s)" in caplog.text
    assert "still Estimated" in caplog.text


def test_live_pull_stops_at_the_request_cap(moto_endpoint, tmp_path):
    seed(moto_endpoint, sample_pages(START, END, ACCOUNTS, page_size=10))
    with pytest.raises(CostExplorerRequestCapError, match="max_requests=2"):
        _resource(moto_endpoint, tmp_path, MLCOST_AWS_MAX_REQUESTS="2").pull(START, END)


def test_live_pull_without_accounts_queries_the_whole_organization_once(moto_endpoint, tmp_path):
    pages = sample_pages(START, END, [], page_size=500)
    seed(moto_endpoint, pages)
    settings = live_settings(tmp_path, "aws", MLCOST_AWS_ENDPOINT_URL=moto_endpoint)
    records = build_resources(settings)["aws_billing"].pull(START, END)
    assert len(pages) == 1 and "Filter" not in records[0][1]["request"]
    assert _unblended(records) == _unblended(pages)


def test_group_by_is_at_most_two_keys_and_keeps_service():
    assert parse_group_by(["TAG:team", "DIMENSION:SERVICE"]) == [
        {"Type": "TAG", "Key": "team"}, {"Type": "DIMENSION", "Key": "SERVICE"}]
    with pytest.raises(ValueError, match="at most 2"):
        parse_group_by(["TAG:team", "DIMENSION:SERVICE", "DIMENSION:REGION"])
    with pytest.raises(ValueError, match="SERVICE"):
        parse_group_by(["TAG:team", "DIMENSION:REGION"])


def _bad(pages, kind):
    pages = copy.deepcopy(pages)
    group = pages[-1]["ResultsByTime"][-1]["Groups"][-1]
    if kind == "malformed":
        group["Keys"] = group["Keys"][:1]
        return pages, "field Keys"
    if kind == "missing_column":
        del group["Metrics"]["UnblendedCost"]
        return pages, "field Metrics.UnblendedCost is missing"
    group["Metrics"]["UnblendedCost"]["Unit"] = group["Metrics"]["AmortizedCost"]["Unit"] = "XYZ"
    group["Metrics"]["NetAmortizedCost"]["Unit"] = "XYZ"
    return pages, "field ResultsByTime[0].Groups"


@pytest.fixture(scope="module")
def good_day(moto_endpoint, tmp_path_factory):
    day = date(2026, 10, 5)
    settings = live_settings(tmp_path_factory.mktemp("aws"), "aws", MLCOST_AWS_ENDPOINT_URL=moto_endpoint,
                             MLCOST_AWS_ACCOUNTS=",".join(ACCOUNTS))  # fmt: skip
    pages = sample_pages(day, date(2026, 10, 6), ACCOUNTS, page_size=10)
    seed(moto_endpoint, pages)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            mp.setenv(k, v)
        assert materialize_day(settings, "raw.aws_cost_explorer", day).success
    return settings, day, pages


@pytest.mark.parametrize("kind", ["malformed", "missing_column", "unknown_currency"])
def test_bad_answer_fails_the_partition_and_keeps_the_previous_data(moto_endpoint, good_day, kind):
    settings, day, pages = good_day
    bad, field = _bad(pages, kind)
    seed(moto_endpoint, bad)
    message = assert_bad_answer_keeps_day(settings, "raw.aws_cost_explorer", day,
                                          "aws_cost_explorer", f"partition {day}", field)  # fmt: skip
    if kind == "unknown_currency":
        assert "unknown currency 'XYZ'" in message
