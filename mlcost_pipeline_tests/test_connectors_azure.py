"""Azure Cost Management live connector: azure-mgmt-costmanagement over HTTPS (trustme) against a local stub.

The stub answers with Microsoft's published SubscriptionQuery example re-dated onto the window, in pages.
Credentials come through DefaultAzureCredential's standard chain, restricted to the Azure CLI credential, with
an `az` stand-in on PATH that prints a token: nothing reaches Microsoft Entra or a managed-identity endpoint.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

import pytest

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.sources.azure_query_client import AzureThrottledError, retry_after_seconds
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    live_settings,
    materialize_day,
)
from mlcost_pipeline_tests.stubs.azure import published_body, serving

SCOPE = "/subscriptions/00000000-0000-0000-0000-000000000000"
RATE_LIMIT = "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"


@pytest.fixture(scope="module")
def azure(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("azure")) as served:
        yield served


@pytest.fixture(autouse=True)
def clean_stub(azure):
    stub, _ = azure
    stub.faults, stub.bad = [], None
    stub.bodies.clear()
    stub.times.clear()
    yield


def _settings(azure, root, **env):
    stub, ca = azure
    return live_settings(root, "azure", MLCOST_AZURE_SCOPES=SCOPE, MLCOST_AZURE_BASE_URL=stub.url,
                         MLCOST_AZURE_CA_BUNDLE=str(ca), **env)  # fmt: skip


def _pull(azure, root, start, end, **env):
    return build_resources(_settings(azure, root, **env))["azure_cost"].pull(start, end, log=logging.getLogger("t"))


def _cost(records, cost_type):
    return sum(Decimal(str(row[0])) for _, p in records if p["request"]["type"] == cost_type
               for row in p["response"]["properties"]["rows"])  # fmt: skip


def test_pages_are_followed_per_cost_type_and_window_of_at_most_31_days(azure, tmp_path):
    stub, _ = azure
    start, end = date(2026, 1, 1), date(2026, 2, 5)  # 35 days: two Daily windows per cost type
    records = _pull(azure, tmp_path, start, end)
    published = sum(Decimal(str(r[0])) for r in published_body()["properties"]["rows"])
    assert _cost(records, "ActualCost") == _cost(records, "AmortizedCost") == published * 35
    windows = sorted({(b["type"], b["timePeriod"]["from"][:10], b["timePeriod"]["to"][:10]) for b in stub.bodies})
    assert windows == [("ActualCost", "2026-01-01", "2026-01-31"), ("ActualCost", "2026-02-01", "2026-02-04"),
                       ("AmortizedCost", "2026-01-01", "2026-01-31"), ("AmortizedCost", "2026-02-01", "2026-02-04")]
    assert len(stub.bodies) > 4  # nextLink followed
    assert {d for d, _ in records} == {start + timedelta(days=n) for n in range(35)}
    grouping = stub.bodies[0]["dataset"]["grouping"]
    assert {"type": "TagKey", "name": "Project"} in grouping and stub.bodies[0]["timeframe"] == "Custom"


@pytest.mark.parametrize("headers", [{RATE_LIMIT: "1"}, {"Retry-After": "1"},
                                     {RATE_LIMIT: "0", "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": "1"}])
def test_429_is_retried_after_the_longest_retry_after(azure, tmp_path, headers):
    stub, _ = azure
    stub.faults = [(429, headers)]
    records = _pull(azure, tmp_path, date(2026, 3, 1), date(2026, 3, 2))
    assert _cost(records, "ActualCost") > 0
    assert stub.times[1] - stub.times[0] >= 0.9  # waited as asked, not immediately


def test_5xx_then_success(azure, tmp_path):
    stub, _ = azure
    stub.faults = [(503, {}), (500, {})]
    records = _pull(azure, tmp_path, date(2026, 3, 1), date(2026, 3, 2))
    assert _cost(records, "ActualCost") == sum(Decimal(str(r[0])) for r in published_body()["properties"]["rows"])


def test_throttling_past_the_retry_budget_fails_clearly(azure, tmp_path):
    stub, _ = azure
    stub.faults = [(429, {RATE_LIMIT: "0"})] * 3
    with pytest.raises(AzureThrottledError, match="after 2 retries"):
        _pull(azure, tmp_path, date(2026, 3, 1), date(2026, 3, 2), MLCOST_AZURE_MAX_RETRIES="2")
    stub.faults = [(429, {RATE_LIMIT: "900"})]
    with pytest.raises(AzureThrottledError, match="asked to wait 900 s"):
        _pull(azure, tmp_path, date(2026, 3, 1), date(2026, 3, 2))


def test_retry_after_takes_the_longest_header():
    assert retry_after_seconds({RATE_LIMIT: "3", "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after": "7",
                                "Retry-After": "5", "x-ms-ratelimit-remaining": "QueryResource=0"}) == 7
    assert retry_after_seconds({"Content-Type": "application/json"}) is None


@pytest.fixture(scope="module")
def good_day(azure, tmp_path_factory):
    settings = _settings(azure, tmp_path_factory.mktemp("azure_dagster"))
    assert materialize_day(settings, "raw.azure_cost_management", date(2026, 10, 7)).success
    return settings


@pytest.mark.parametrize("kind, field", [("malformed", "malformed page: properties.rows[0] does not match the 4 columns"),
                                         ("missing_column", "column Currency is missing"),
                                         ("unknown_currency", "field properties.rows[0].Currency: unknown currency 'XYZ'")])
def test_bad_answer_fails_the_partition_and_keeps_the_previous_data(azure, good_day, kind, field):
    stub, _ = azure
    stub.bad = kind
    assert_bad_answer_keeps_day(good_day, "raw.azure_cost_management", date(2026, 10, 7),
                                "azure_cost_management", "partition 2026-10-07", field)  # fmt: skip
