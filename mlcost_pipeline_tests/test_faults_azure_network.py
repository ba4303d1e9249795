"""Azure Cost Management: a dropped connection and a stalled answer, through azure-mgmt-costmanagement (HTTPS stub).

The stub resets the TCP connection without answering, or answers only after the client's read timeout
(MLCOST_AZURE_TIMEOUT_SECONDS, 1 s here as a user would set it), on the first query or on a later
`$skiptoken` page. A user checks: the pull is retried and gives exactly the records of a clean pull; when the
fault persists past MLCOST_AZURE_MAX_RETRIES the partition fails naming the source, the days and the scope, and
keeps its previous data; a rerun completes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    failure_message,
    live_settings,
    materialize_day,
)
from mlcost_pipeline_tests.stubs.azure import RESET, SLOW, serving

SCOPE = "/subscriptions/00000000-0000-0000-0000-000000000000"
DAY = date(2026, 3, 1)
WINDOW = (DAY, date(2026, 3, 3))  # 2 days x 4 published rows, 3 rows a page: 3 pages per cost type


@pytest.fixture(scope="module")
def azure(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("azure_network")) as served:
        served[0].slow_seconds = 2.5  # past the 1 s read timeout, whichever page it stalls
        yield served


@pytest.fixture(autouse=True)
def clean_stub(azure):
    stub, _ = azure
    stub.faults, stub.later_faults, stub.bad = [], [], None
    stub.bodies.clear()


def _settings(azure, root):
    stub, ca = azure
    return live_settings(root, "azure", MLCOST_AZURE_SCOPES=SCOPE, MLCOST_AZURE_BASE_URL=stub.url,
                         MLCOST_AZURE_CA_BUNDLE=str(ca), MLCOST_AZURE_MAX_RETRIES="2",
                         MLCOST_AZURE_TIMEOUT_SECONDS="1")  # fmt: skip


def _pull(azure, root, start=WINDOW[0], end=WINDOW[1]):
    return build_resources(_settings(azure, root))["azure_cost"].pull(start, end)


@pytest.fixture(scope="module")
def clean(azure, tmp_path_factory):
    stub, _ = azure
    records = _pull(azure, tmp_path_factory.mktemp("clean"))
    requests = len(stub.bodies)
    assert requests == 6 and records
    return records, requests


@pytest.mark.parametrize("where", ["first", "later"])
@pytest.mark.parametrize("fault", [RESET, SLOW], ids=["reset", "timeout"])
def test_a_dropped_or_stalled_request_is_retried_and_gives_the_clean_records(azure, clean, tmp_path, fault, where):
    stub, _ = azure
    records, requests = clean
    (stub.faults if where == "first" else stub.later_faults).append((fault, {}))
    assert _pull(azure, tmp_path) == records  # nothing lost, the late answer not counted twice
    assert not stub.faults and not stub.later_faults  # the fault was served
    assert len(stub.bodies) == requests + 1  # one retry, of the page that failed


def _day_total(settings) -> Decimal:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("SELECT sum(BilledCost) FROM core.focus_costs WHERE x_ChargeDate = $d", {"d": DAY}).fetchall()
    return rows[0][0]


def test_a_persistent_fault_fails_the_partition_naming_source_days_and_scope(azure, tmp_path):
    stub, _ = azure
    settings = _settings(azure, tmp_path)
    first = materialize_day(settings, "raw.azure_cost_management", DAY)
    assert first.success, failure_message(first)
    clean_total = _day_total(settings)
    stub.later_faults = [(SLOW, {}), (RESET, {}), (SLOW, {})]  # page 2: the first try and both retries
    message = assert_bad_answer_keeps_day(
        settings, "raw.azure_cost_management", DAY,
        f"azure_cost_management days {DAY}..{DAY} {SCOPE}: still Service", "after 2 retries",
    )  # fmt: skip
    assert "MLCOST_AZURE_MAX_RETRIES=2" in message
    rerun = materialize_day(settings, "raw.azure_cost_management", DAY)
    assert rerun.success, failure_message(rerun)
    assert _day_total(settings) == clean_total > 0
