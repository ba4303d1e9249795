"""The billing export's known traps, against the BigQuery stub (which runs the connector's GoogleSQL in DuckDB):
credits are a repeated record, cost_type has tax, adjustment and rounding-error rows, rows keep arriving after
their day, and rows in the wild end before they start. Every expectation is computed from the input rows.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export
from mlcost_pipeline.sources.landing_checks import SourceDataError, check_records
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    failure_message,
    live_settings,
    materialize_day,
)
from mlcost_pipeline_tests.stubs.gcp import GcpStub, google_adc
from mlcost_pipeline_tests.stubs.gcp_schemas import export_row

DAY = date(2026, 10, 14)
START = datetime(2026, 10, 14)
NOW = datetime(2026, 10, 20)


def _d(x) -> Decimal:
    return Decimal(str(x))


def _credit_rows() -> list[dict]:
    """Hourly rows of one VM (one group) holding 0, 1 and 3 credits, and a second SKU with 3 credits per row."""
    rows = []
    for h, credits in enumerate([[], [("sud", -0.1)], [("sud", -0.1), ("promo", -0.2), ("cud", -0.05)]] * 4):
        rows.append(export_row(START + timedelta(hours=h), cost=1.25 + h / 100, credits=credits))
    for h in range(3):
        rows.append(export_row(START + timedelta(hours=h), cost=2.5, sku="SKU-GPU",
                               credits=[("sud", -0.3), ("promo", -0.4), ("promo", -0.05)]))  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    with GcpStub(_credit_rows()) as s, google_adc(s, tmp_path_factory.mktemp("gcp_traps")):
        yield s


def _settings(stub, root):
    return live_settings(root, "gcp", MLCOST_GCP_BILLING_TABLE=stub.table, MLCOST_BIGQUERY_API_ENDPOINT=stub.url,
                         MLCOST_CLOUD_BILLING_API_ENDPOINT=stub.url, MLCOST_GCP_LIST_PRICES="false")  # fmt: skip


def _pull(stub, root, day=DAY) -> list[dict]:
    return [p for _, p in build_resources(_settings(stub, root))["gcp_billing"].pull(day, day + timedelta(days=1))]


def test_credits_are_summed_per_row_never_joined(stub, tmp_path):
    rows = _credit_rows()
    stub.load(rows)
    payloads = _pull(stub, tmp_path)
    by_sku = {p["sku"]["id"]: p for p in payloads}
    assert sorted(by_sku) == ["SKU-GPU", "SKU-N2-CORE"] and len(payloads) == 2  # one row per group, none lost
    for sku, payload in by_sku.items():
        mine = [r for r in rows if r["sku"]["id"] == sku]
        assert Decimal(payload["cost"]) == sum(_d(r["cost"]) for r in mine)  # a join would repeat it per credit
        assert payload["x_export_rows"] == len(mine)  # a join would drop the rows holding no credit
        sent, landed = defaultdict(Decimal), defaultdict(Decimal)
        for c in (c for r in mine for c in r["credits"]):
            sent[(c["type"], c["id"])] += _d(c["amount"])
        for c in payload["credits"]:  # summed per credit (name, type, id), each kept once
            assert (c["type"], c["id"]) not in landed
            landed[(c["type"], c["id"])] = Decimal(c["amount"])
        assert landed == sent
    frame = normalize_billing_export(payloads, NOW)
    assert frame["BilledCost"].sum() == sum(
        _d(r["cost"]) + sum((_d(c["amount"]) for c in r["credits"]), Decimal(0)) for r in rows)


def test_tax_adjustment_and_rounding_rows_keep_their_amounts_as_separate_cells(stub, tmp_path):
    base = dict(project="proj-a", sku="SKU-N2-CORE")  # the same project, service and SKU: only cost_type differs
    rows = [export_row(START + timedelta(hours=h), cost=1.5, **base) for h in range(3)]
    rows += [export_row(START, hours=24, cost=0.855, cost_type="tax", **base),
             export_row(START, hours=24, cost=-2.5, cost_type="adjustment", **base),
             export_row(START + timedelta(hours=1), hours=24, cost=0.75, cost_type="adjustment", **base),
             export_row(START, hours=24, cost=0.000001, cost_type="rounding error", **base)]
    rows[4]["adjustment_info"] = {"id": "ADJ-1", "description": "goodwill", "mode": "COMPLETE_NEGATION",
                                  "type": "GOODWILL"}  # fmt: skip
    rows[5]["adjustment_info"] = {"id": "ADJ-2", "description": "correction", "mode": "PARTIAL_CORRECTION",
                                  "type": "USAGE_CORRECTION"}  # fmt: skip
    stub.load(rows)
    try:
        payloads = _pull(stub, tmp_path)
    finally:
        stub.load(_credit_rows())
    cells = Counter(p["cost_type"] for p in payloads)
    assert cells == {"regular": 1, "tax": 1, "adjustment": 2, "rounding error": 1}
    expected = defaultdict(Decimal)
    for r in rows:
        expected[(r["cost_type"], (r["adjustment_info"] or {}).get("id"))] += _d(r["cost"])
    assert {(p["cost_type"], (p["adjustment_info"] or {}).get("id")): Decimal(p["cost"]) for p in payloads} == expected
    frame = normalize_billing_export(payloads, NOW)
    categories = {(r["ChargeCategory"], r["BilledCost"]) for r in frame.iter_rows(named=True)}
    assert categories == {("Usage", Decimal("4.5")), ("Tax", Decimal("0.855")), ("Credit", Decimal("-2.5")),
                          ("Adjustment", Decimal("0.75")), ("Adjustment", Decimal("0.000001"))}  # fmt: skip


def _late(exported: datetime) -> list[dict]:
    return [export_row(START + timedelta(hours=h), cost=0.333, sku="SKU-LATE", export_time=exported) for h in (5, 22)]


def test_rows_exported_days_later_are_picked_up_once_by_the_re_pull_of_their_day(stub, tmp_path):
    rows = _credit_rows()
    stub.load(rows)
    settings = _settings(stub, tmp_path)
    assert (result := materialize_day(settings, "raw.gcp_billing_export", DAY)).success, failure_message(result)
    late = _late(exported=datetime(2026, 10, 17, 4))  # a later export partition (_PARTITIONTIME 17 Oct)
    stub.load(rows + late)
    try:
        for _ in range(2):  # the restatement window re-pulls the day on every run: nothing is counted twice
            assert (result := materialize_day(settings, "raw.gcp_billing_export", DAY)).success, failure_message(result)
    finally:
        stub.load(_credit_rows())
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        raw = [json.loads(p) for (p,) in con.execute(
            "SELECT payload FROM raw.gcp_billing_export WHERE x_ChargeDate = $d", {"d": DAY}).fetchall()]
        billed = con.execute("SELECT sum(BilledCost) FROM core.focus_costs WHERE x_ChargeDate = $d "
                             "AND x_SourceSystem = 'gcp_billing_export'", {"d": DAY}).fetchall()[0][0]  # fmt: skip
    everything = rows + late
    assert sum(p["x_export_rows"] for p in raw) == len(everything)
    assert sum(Decimal(p["cost"]) for p in raw) == sum(_d(r["cost"]) for r in everything)
    assert billed == sum(_d(r["cost"]) + sum((_d(c["amount"]) for c in r["credits"]), Decimal(0)) for r in everything)
    [late_record] = [p for p in raw if p["sku"]["id"] == "SKU-LATE"]
    assert late_record["export_time"].startswith("2026-10-17T04:00:00")


def _broken_rows() -> list[dict]:
    rows = _credit_rows()
    broken = export_row(START + timedelta(hours=7), cost=0.9)  # same group as the VM's other hours
    broken["usage_end_time"] = (START + timedelta(hours=6, minutes=30)).isoformat() + "+00:00"
    return [*rows, broken]


def test_a_row_ending_before_it_starts_is_refused_naming_table_day_and_fields(stub, tmp_path):
    stub.load(_broken_rows())
    try:
        with pytest.raises(SourceDataError) as err:
            _pull(stub, tmp_path)
    finally:
        stub.load(_credit_rows())
    message = str(err.value)
    assert message.startswith(f"gcp_billing_export partition {DAY}: table {stub.table}: 1 export row(s) of usage day "
                              f"{DAY} have usage_end_time before usage_start_time")  # fmt: skip
    assert "usage_end_time: before usage_start_time" in message
    for text in ("usage_start_time=2026-10-14T07:00:00+00:00", "usage_end_time=2026-10-14T06:30:00+00:00",
                 "project_id=proj-a", "sku_id=SKU-N2-CORE", "cost=0.9"):  # fmt: skip
        assert text in message


def test_the_same_row_is_refused_on_the_sample_path_too():
    """Rows landed as the export has them (the sample's path) are refused by the normalizer, as files are by the
    FOCUS reader ("ChargePeriodEnd: before ChargePeriodStart", test_bad_input): no path lands such a row."""
    broken = _broken_rows()[-1]
    with pytest.raises(SourceDataError, match=rf"gcp_billing_export partition {DAY}: .*field usage_end_time: "
                                              r"2026-10-14 06:30:00 is before usage_start_time"):  # fmt: skip
        check_records("gcp_billing_export", [(DAY, broken)], DAY, DAY + timedelta(days=1), normalize_billing_export)


def test_a_partition_with_such_a_row_is_not_written(stub, tmp_path):
    settings = _settings(stub, tmp_path)
    stub.load(_credit_rows())
    assert (result := materialize_day(settings, "raw.gcp_billing_export", DAY)).success, failure_message(result)
    stub.load(_broken_rows())
    try:
        assert_bad_answer_keeps_day(settings, "raw.gcp_billing_export", DAY, f"table {stub.table}",
                                    "usage_end_time: before usage_start_time")  # fmt: skip
    finally:
        stub.load(_credit_rows())
