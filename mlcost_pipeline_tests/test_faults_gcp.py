"""GCP faults: google-cloud-bigquery and google-cloud-billing against the BigQuery + Cloud Billing REST stub.

Each fault (5xx, 429, a dropped connection, an answer later than the request timeout, a truncated answer) is
served to one request of one operation: the query, a later result page, the table lookup, a SKU page of the
Catalog, the billing account. Bounds are set small as a user would set them (MLCOST_GCP_RETRY_DEADLINE_SECONDS,
MLCOST_GCP_TIMEOUT_SECONDS). A user checks: retried, and exactly the records of a clean pull; or, when the fault
persists or the answer cannot be read or loops, a failed partition whose message names the source and the days,
with the previous data kept.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, timedelta

import pytest

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.sources.gcp_billing_export import BigQueryUnavailableError
from mlcost_pipeline.sources.landing_checks import SourceDataError
from mlcost_pipeline.sources.sample.gcp_billing_export import export_rows
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    day_snapshot,
    failure_message,
    live_settings,
    materialize_day,
)
from mlcost_pipeline_tests.stubs.gcp import (
    MALFORMED,
    RESET,
    SLOW,
    TRUNCATED,
    UNIVERSE_DOMAIN,
    GcpStub,
    write_service_account,
)

DAYS = [date(2026, 10, 14), date(2026, 10, 15)]
WINDOW = (DAYS[0], DAYS[-1] + timedelta(days=1))
ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
STORAGE = "95FF-2EF5-5EA1"  # Cloud Storage: its rows need catalog list prices
BOUNDS = {"MLCOST_GCP_RETRY_DEADLINE_SECONDS": "3", "MLCOST_GCP_TIMEOUT_SECONDS": "1"}


def _rows():
    rows = [r for d in DAYS for r in export_rows(d)]
    for r in rows:
        if r["service"]["description"] == "Cloud Storage":
            r["cost_at_list"] = None
    return rows


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    skus = {STORAGE: [{"id": "GCS0-0006-STD1", "price": "0.020", "unit": "gibibyte month"}]
            + [{"id": f"OTHER-{n}", "price": "1", "unit": "hour"} for n in range(3)]}  # fmt: skip (2 SKU pages)
    with GcpStub(_rows(), page_size=6, account_names={ACCOUNT: "Acme ML billing"}, skus=skus) as s:
        key = write_service_account(tmp_path_factory.mktemp("gcp_faults") / "sa.json", s.url + "/token")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
            mp.setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", UNIVERSE_DOMAIN)
            yield s


@pytest.fixture(autouse=True)
def clean_stub(stub):
    yield
    stub.faults.clear()
    stub.page_loop = False


def _settings(stub, root):
    return live_settings(root, "gcp", MLCOST_GCP_BILLING_TABLE=stub.table, MLCOST_BIGQUERY_API_ENDPOINT=stub.url,
                         MLCOST_CLOUD_BILLING_API_ENDPOINT=stub.url, **BOUNDS)  # fmt: skip


def _pull(stub, root, start=WINDOW[0], end=WINDOW[1], log=None):
    return build_resources(_settings(stub, root))["gcp_billing"].pull(start, end, log=log)


def _operations(stub) -> list[str]:
    return [stub.operation(method, path) for method, path, _ in stub.server.requests]


@pytest.fixture(scope="module")
def clean(stub, tmp_path_factory):
    stub.server.requests.clear()
    records = _pull(stub, tmp_path_factory.mktemp("clean"))
    ops = _operations(stub)
    assert ops.count("getQueryResults") >= 2 and ops.count("skus.list") == 2  # result and SKU pages after the first
    assert any(p.get("cost_at_list_source") == "cloud_billing_catalog" for _, p in records)
    return records, Counter(ops)


@pytest.mark.parametrize("operation, faults", [
    ("jobs.query", [503]), ("jobs.query", [RESET]), ("jobs.query", [SLOW]),
    ("getQueryResults", [500]), ("getQueryResults", [429]), ("getQueryResults", [None, RESET]),
    ("getQueryResults", [None, TRUNCATED]),  # a stalled result page: the client waits at least 120 s for it
    ("tables.get", [503]), ("tables.get", [SLOW]),
    ("skus.list", [None, 503]), ("skus.list", [429]), ("skus.list", [None, RESET]), ("skus.list", [SLOW]),
    ("billingAccounts.get", [503]),
])  # fmt: skip
def test_a_transient_fault_is_retried_and_gives_the_clean_records(stub, clean, tmp_path, operation, faults):
    records, requests = clean
    stub.server.requests.clear()
    stub.faults[operation] = list(faults)
    assert _pull(stub, tmp_path) == records  # the same rows, money, list prices and names: nothing lost or doubled
    assert stub.faults[operation] == []  # every fault was served ...
    retried = sum(f is not None for f in faults)
    # ... and retried (a page cut short may also make the client re-run the query: same job, same rows)
    assert Counter(_operations(stub))[operation] >= requests[operation] + retried


def test_a_refused_catalog_is_a_warning_and_the_rows_land_without_catalog_prices(stub, clean, tmp_path, caplog):
    records, _ = clean
    stub.faults["skus.list"] = [403]  # API disabled / no permission: a lasting state, not an outage
    with caplog.at_level(logging.WARNING):
        refused = _pull(stub, tmp_path, log=logging.getLogger("test"))
    assert "Cloud Billing Catalog: list prices not filled: Forbidden" in caplog.text
    assert not any(p.get("cost_at_list_source") for _, p in refused)
    assert [p["cost"] for _, p in refused] == [p["cost"] for _, p in records]


@pytest.mark.parametrize("operation", ["getQueryResults", "tables.get", "skus.list"])
def test_a_persistent_outage_fails_the_pull_naming_source_days_and_call(stub, tmp_path, operation):
    stub.faults[operation] = [503] * 100
    expected = {"getQueryResults": "BigQuery query failed (gave up after MLCOST_GCP_RETRY_DEADLINE_SECONDS=3)",
                "tables.get": f"BigQuery tables.get {stub.table}: RetryError",
                "skus.list": f"Cloud Billing list_skus services/{STORAGE} EUR: still failing after retries"}[operation]
    with pytest.raises(RuntimeError) as failure:
        _pull(stub, tmp_path)
    assert str(failure.value).startswith(f"gcp_billing_export partitions {DAYS[0]}..{DAYS[-1]}: ")
    assert expected in str(failure.value) and "503" in str(failure.value)


def test_an_unreadable_result_page_fails_the_window_naming_it(stub, tmp_path):
    stub.faults["getQueryResults"] = [MALFORMED]  # a complete 200 whose JSON is cut: not retried, not guessed at
    with pytest.raises(BigQueryUnavailableError, match=rf"gcp_billing_export partitions {DAYS[0]}..{DAYS[-1]}: "
                                                       r"BigQuery query failed: JSONDecodeError"):
        _pull(stub, tmp_path)


def test_a_result_page_token_loop_is_refused(stub, tmp_path):
    stub.page_loop = True
    with pytest.raises(SourceDataError, match=r"BigQuery pageToken '\d+' repeated \(pagination loop\)"):
        _pull(stub, tmp_path)


def test_a_catalog_page_token_loop_is_refused(stub, tmp_path):
    stub.faults["getQueryResults"] = []
    stub.page_size = 1000  # one result page, so only the Catalog's pages loop
    try:
        stub.page_loop = True
        with pytest.raises(RuntimeError, match=r"Cloud Billing list_skus services/.*nextPageToken '2' repeated"):
            _pull(stub, tmp_path)
    finally:
        stub.page_size = 6


@pytest.fixture(scope="module")
def good_day(stub, tmp_path_factory):
    settings = _settings(stub, tmp_path_factory.mktemp("gcp_faults_dagster"))
    result = materialize_day(settings, "raw.gcp_billing_export", DAYS[0])
    assert result.success, failure_message(result)
    return settings, day_snapshot(settings, "raw.gcp_billing_export", DAYS[0])


@pytest.mark.parametrize("operation, fault, expected", [
    ("getQueryResults", RESET, "gave up after MLCOST_GCP_RETRY_DEADLINE_SECONDS=3"),
    ("jobs.query", MALFORMED, "BigQuery query failed: JSONDecodeError"),
], ids=["page-reset", "query-malformed"])  # fmt: skip
def test_giving_up_fails_the_partition_keeps_the_previous_data_and_a_rerun_completes(stub, good_day, operation,
                                                                                      fault, expected):
    settings, before = good_day
    stub.page_size = 2  # the day's rows over several pages
    try:
        stub.faults[operation] = [fault] * 100
        assert_bad_answer_keeps_day(settings, "raw.gcp_billing_export", DAYS[0],
                                    f"gcp_billing_export partition {DAYS[0]}: ", expected)  # fmt: skip
        stub.faults.clear()
        result = materialize_day(settings, "raw.gcp_billing_export", DAYS[0])
    finally:
        stub.page_size = 6
    assert result.success, failure_message(result)
    assert day_snapshot(settings, "raw.gcp_billing_export", DAYS[0]) == before


def test_the_bounds_default_to_the_clients_own_and_refuse_nonsense():
    from mlcost_pipeline.settings import load_settings

    c = load_settings({}).connectors
    assert (c.gcp_retry_deadline_seconds, c.gcp_timeout_seconds, c.azure_timeout_seconds) == (600.0, 600.0, 300.0)
    for name, value in (("MLCOST_GCP_RETRY_DEADLINE_SECONDS", "0"), ("MLCOST_GCP_TIMEOUT_SECONDS", "soon"),
                        ("MLCOST_AZURE_TIMEOUT_SECONDS", "-1"), ("MLCOST_AZURE_TIMEOUT_SECONDS", "inf")):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            load_settings({name: value})
