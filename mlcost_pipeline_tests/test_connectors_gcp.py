"""GCP billing export live connector: google-cloud-bigquery and google-cloud-billing against a local stub.

The stub runs the connector's GoogleSQL (transpiled to DuckDB) over the sample organization's export rows, so
these tests check the aggregation itself: fewer rows, the same money to the last digit, late rows picked up.
Credentials come through Google's ADC: a service-account key file whose token endpoint is the stub.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export
from mlcost_pipeline.sources.sample.gcp_billing_export import export_rows
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    live_settings,
    materialize_day,
)
from mlcost_pipeline_tests.stubs.gcp import UNIVERSE_DOMAIN, GcpStub, write_service_account

DAYS = [date(2026, 10, 14), date(2026, 10, 15)]  # the 15th carries a goodwill adjustment
ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
GCS = {"GCS0-0006-STD1": "0.020"}  # EUR per gibibyte month, served by the catalog stub


def _rows(days=DAYS):
    rows = [r for d in days for r in export_rows(d)]
    for r in rows:  # an older export: no list price for Cloud Storage, the catalog must supply it
        if r["service"]["description"] == "Cloud Storage":
            r["cost_at_list"] = None
    return rows


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    skus = {"95FF-2EF5-5EA1": [{"id": i, "price": p, "unit": "gibibyte month"} for i, p in GCS.items()]
            + [{"id": f"OTHER-{n}", "price": "1", "unit": "hour"} for n in range(3)]}  # fmt: skip
    with GcpStub(_rows(), page_size=25, account_names={ACCOUNT: "Acme ML billing"}, skus=skus) as s:
        key = write_service_account(tmp_path_factory.mktemp("gcp") / "sa.json", s.url + "/token")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
            mp.setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", UNIVERSE_DOMAIN)
            yield s


def _settings(stub, root, **env):
    return live_settings(root, "gcp", MLCOST_GCP_BILLING_TABLE=stub.table, MLCOST_BIGQUERY_API_ENDPOINT=stub.url,
                         MLCOST_CLOUD_BILLING_API_ENDPOINT=stub.url, **env)  # fmt: skip


def _pull(stub, tmp_path, start=DAYS[0], end=DAYS[-1] + timedelta(days=1), **env):
    return build_resources(_settings(stub, tmp_path, **env))["gcp_billing"].pull(start, end)


def _totals(frame: pl.DataFrame) -> dict:
    return {(r["x_ChargeDate"], r["ChargeCategory"]): (r["BilledCost"], r["n"]) for r in frame.group_by(
        "x_ChargeDate", "ChargeCategory").agg(pl.col("BilledCost").sum(), pl.len().alias("n")).to_dicts()}


def test_live_pull_aggregates_in_bigquery_and_keeps_every_cent(stub, tmp_path):
    records = _pull(stub, tmp_path)
    now = datetime(2026, 11, 1)
    live = normalize_billing_export([p for _, p in records], now)
    raw = normalize_billing_export(copy.deepcopy(_rows()), now)
    assert live.height < raw.height / 3  # hourly rows became daily groups
    assert {k: v[0] for k, v in _totals(live).items()} == {k: v[0] for k, v in _totals(raw).items()}
    assert sum(int(p["x_export_rows"]) for _, p in records) == raw.height
    credits = [c for _, p in records for c in p["credits"]]
    assert credits and {c["type"] for c in credits} >= {"SUSTAINED_USAGE_DISCOUNT", "PROMOTION"}


def test_query_is_parameterized_and_pruned_by_partition(stub, tmp_path):
    stub.queries.clear()
    _pull(stub, tmp_path)
    [sql] = stub.queries
    assert "@window_start" in sql and "@window_end" in sql and "2026-10" not in sql
    assert "_PARTITIONTIME >= TIMESTAMP_SUB(@window_start, INTERVAL 1 DAY)" in sql


def test_late_rows_are_picked_up_on_a_re_pull(stub, tmp_path):
    day = DAYS[0]
    before = _pull(stub, tmp_path, day, day + timedelta(days=1))
    late = copy.deepcopy(export_rows(day)[0])
    late["export_time"] = datetime(2026, 10, 18, 3, tzinfo=UTC).isoformat()
    late["cost"], late["credits"] = 10.5, []
    stub.load(_rows() + [late])
    try:
        after = _pull(stub, tmp_path, day, day + timedelta(days=1))
    finally:
        stub.load(_rows())

    def cost(records):
        return sum(Decimal(p["cost"]) for _, p in records)

    assert cost(after) - cost(before) == Decimal("10.5")
    assert max(p["export_time"] for _, p in after).startswith("2026-10-18T03:00:00")


def test_catalog_list_price_fills_missing_cost_at_list_and_account_name(stub, tmp_path):
    records = _pull(stub, tmp_path)
    storage = [p for _, p in records if p["service"]["description"] == "Cloud Storage"]
    assert storage and all(p["cost_at_list_source"] == "cloud_billing_catalog" for p in storage)
    for p in storage:
        assert Decimal(p["cost_at_list"]) == Decimal(p["usage"]["amount_in_pricing_units"]) * Decimal(GCS[p["sku"]["id"]])
    frame = normalize_billing_export([p for _, p in records], datetime(2026, 11, 1))
    assert set(frame["BillingAccountName"]) == {"Acme ML billing"}
    skus_pages = [q for m, path, q in stub.server.requests if path.endswith("/skus")]
    assert len(skus_pages) >= 2 and all(q.get("currencyCode") == "EUR" for q in skus_pages)


def test_a_refused_account_name_lookup_is_a_warning_not_a_failure(stub, tmp_path, caplog):
    names, stub.account_names = stub.account_names, {}
    try:
        with caplog.at_level(logging.WARNING):
            resource = build_resources(_settings(stub, tmp_path))["gcp_billing"]
            records = resource.pull(DAYS[0], DAYS[1], log=logging.getLogger("test"))
    finally:
        stub.account_names = names
    assert records and all(p["billing_account_name"] is None for _, p in records)
    assert f"no name for billing account {ACCOUNT}: NotFound" in caplog.text


def test_detailed_export_groups_by_resource(stub, tmp_path):
    rows = _rows()
    for n, r in enumerate(rows):
        r["resource"] = {"name": f"vm-{n % 3}", "global_name": f"//compute.googleapis.com/projects/p/instances/{n % 3}"}
    stub.load(rows, detailed=True)
    try:
        records = _pull(stub, tmp_path)
    finally:
        stub.load(_rows())
    frame = normalize_billing_export([p for _, p in records], datetime(2026, 11, 1))
    assert set(frame["x_ExportVersion"]) == {"bq-detailed-v1"}
    assert frame["ResourceId"].n_unique() == 3


@pytest.fixture(scope="module")
def good_day(stub, tmp_path_factory):
    settings = _settings(stub, tmp_path_factory.mktemp("gcp_dagster"))
    assert materialize_day(settings, "raw.gcp_billing_export", DAYS[0]).success
    return settings


@pytest.mark.parametrize("kind, field", [("malformed", "field invoice.month"),
                                         ("missing_column", "column currency is missing"),
                                         ("unknown_currency", "field currency: unknown currency 'XYZ'")])  # fmt: skip
def test_bad_answer_fails_the_partition_and_keeps_the_previous_data(stub, good_day, kind, field):
    rows = _rows()
    bad = next(r for r in rows if r["usage_start_time"].startswith(str(DAYS[0])))
    if kind == "malformed":
        bad["invoice"]["month"] = "2026-10"
    elif kind == "unknown_currency":
        bad["currency"] = "XYZ"
    stub.load(rows, drop_columns=("currency",) if kind == "missing_column" else ())
    try:
        assert_bad_answer_keeps_day(good_day, "raw.gcp_billing_export", DAYS[0], "gcp_billing_export", field,
                                    f"partition {DAYS[0]}")
    finally:
        stub.load(_rows())
