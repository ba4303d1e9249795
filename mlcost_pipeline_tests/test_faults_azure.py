"""Azure Cost Management failing mid-pagination, and a nextLink loop: azure-mgmt-costmanagement against the stub.

test_connectors_azure.py covers faults on the first request (429 with each Retry-After header, 5xx, the retry
budget); here they hit a `$skiptoken` page after the first one, where a lost or repeated page would change totals.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

import duckdb
import pytest

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.sources.azure_cost_management import CostQueryError
from mlcost_pipeline.sources.azure_query_client import AzureThrottledError
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    failure_message,
    live_settings,
    materialize_day,
)
from mlcost_pipeline_tests.stubs.azure import published_body, serving

SCOPE = "/subscriptions/00000000-0000-0000-0000-000000000000"
DAY = date(2026, 3, 1)


@pytest.fixture(scope="module")
def azure(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("azure")) as served:
        yield served


@pytest.fixture(autouse=True)
def clean_stub(azure):
    stub, _ = azure
    stub.faults, stub.later_faults, stub.loop, stub.bad = [], [], False, None
    stub.bodies.clear()
    stub.times.clear()


def _settings(azure, root, **env):
    stub, ca = azure
    return live_settings(root, "azure", MLCOST_AZURE_SCOPES=SCOPE, MLCOST_AZURE_BASE_URL=stub.url,
                         MLCOST_AZURE_CA_BUNDLE=str(ca), MLCOST_AZURE_MAX_RETRIES="2", **env)  # fmt: skip


def _published() -> Decimal:
    return sum((Decimal(str(r[0])) for r in published_body()["properties"]["rows"]), Decimal(0))


def _actual(records) -> Decimal:
    return sum((Decimal(str(row[0])) for _, p in records if p["request"]["type"] == "ActualCost"
                for row in p["response"]["properties"]["rows"]), Decimal(0))  # fmt: skip


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_fault_on_a_later_page_is_retried_and_nothing_is_lost_or_doubled(azure, tmp_path, status):
    stub, _ = azure
    stub.later_faults = [(status, {"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "0"})]
    records = build_resources(_settings(azure, tmp_path))["azure_cost"].pull(DAY, date(2026, 3, 2),
                                                                             log=logging.getLogger("t"))
    assert not stub.later_faults  # the fault was served, on a page after the first
    assert _actual(records) == _published() > 0


def test_a_next_link_loop_is_refused(azure, tmp_path):
    stub, _ = azure
    stub.loop = True
    with pytest.raises(CostQueryError, match="pagination loop"):
        build_resources(_settings(azure, tmp_path))["azure_cost"].pull(DAY, date(2026, 3, 4))  # 4+ pages


def _day_total(settings) -> Decimal:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("SELECT sum(BilledCost) FROM core.focus_costs WHERE x_ChargeDate = $d", {"d": DAY}).fetchall()
    return rows[0][0]


def test_giving_up_fails_the_partition_keeps_the_previous_data_and_a_rerun_completes(azure, tmp_path):
    stub, _ = azure
    settings = _settings(azure, tmp_path)
    assert materialize_day(settings, "raw.azure_cost_management", DAY).success
    clean = _day_total(settings)
    assert abs(clean - _published()) < Decimal("1e-9")  # rows are stored at DECIMAL(38,12)
    stub.later_faults = [(503, {})] * 3  # page 2: first try and both retries fail
    message = assert_bad_answer_keeps_day(settings, "raw.azure_cost_management", DAY, "after 2 retries")
    assert AzureThrottledError.__name__ in message or "HTTP 503" in message
    result = materialize_day(settings, "raw.azure_cost_management", DAY)
    assert result.success, failure_message(result)
    assert _day_total(settings) == clean
