"""The Cost Explorer and BigQuery-export normalizers have a columnar path (all records at once, the speed) and a
per-record path (one record at a time, every error message). They must give the same rows and the same line ids:
this test runs both on generated pages of each shape, as landed (JSON text parsed with exact decimals), including
untagged groups, credits, labels and several days."""

from __future__ import annotations

import gc
import json
import random
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bench.generate_native import billing_export_rows, cost_explorer_pages
from mlcost_pipeline.normalize import aws_cost_explorer_columns, gcp_billing_export_columns
from mlcost_pipeline.normalize.aws_cost_explorer_records import normalize_records
from mlcost_pipeline.normalize.gcp_billing_export_records import normalize_rows

INGESTED = datetime(2026, 1, 2, tzinfo=UTC)


def _as_landed(records) -> list[dict]:
    return [json.loads(json.dumps(p), parse_float=Decimal) for _, p in records]


def _same(columnar, per_record) -> None:
    assert columnar is not None, "the columnar path declined a well-formed batch"
    assert columnar.height == per_record.height
    assert columnar.schema == per_record.schema
    a, b = columnar.sort("x_LineId"), per_record.sort("x_LineId")
    assert a["x_LineId"].to_list() == b["x_LineId"].to_list()
    assert a.equals(b)


@pytest.mark.parametrize("seed", [1, 2])
def test_cost_explorer_paths_agree(seed: int) -> None:
    rng = random.Random(seed)
    payloads = []
    for day in (date(2025, 3, 1), date(2025, 3, 2)):
        payloads += _as_landed(cost_explorer_pages(rng.randint(50, 400), day, page_size=rng.randint(20, 120)))
    # amounts in the other literal forms landed payloads carry
    for group in payloads[0]["response"]["ResultsByTime"][0]["Groups"][:5]:
        group["Metrics"]["UnblendedCost"]["Amount"] = "0E-10"
    columnar = aws_cost_explorer_columns.columnar_frame(payloads, INGESTED, "123456789012")
    _same(columnar, normalize_records(payloads, INGESTED, billing_account_id="123456789012"))


@pytest.mark.parametrize("seed", [1, 2])
def test_billing_export_paths_agree(seed: int) -> None:
    rng = random.Random(seed)
    payloads = []
    for day in (date(2025, 3, 1), date(2025, 3, 2)):
        payloads += _as_landed(billing_export_rows(rng.randint(50, 400), day))
    rng.shuffle(payloads)
    columnar = gcp_billing_export_columns.columnar_frame(payloads, INGESTED)
    _same(columnar, normalize_rows(payloads, INGESTED))


def test_billing_export_repeated_and_distinct_dimension_sets_agree() -> None:
    """Rows sharing a dimension set (a resource's hours) are mapped once and spread back; rows repeated outright
    get the occurrence suffix in landing order; a batch of all-distinct sets takes the same path."""
    payloads = _as_landed(billing_export_rows(120, date(2025, 3, 1)))
    payloads[3]["labels"] = [{"key": "team", "value": 'é "quoted"\n\u2028🚀'}]  # the key text hashed as UTF-8
    payloads += [json.loads(json.dumps(p, default=str), parse_float=Decimal) for p in payloads[:7]]  # exact repeats
    columnar = gcp_billing_export_columns.columnar_frame(payloads, INGESTED)
    per_record = normalize_rows(payloads, INGESTED)
    _same(columnar, per_record)
    assert columnar["x_LineId"].to_list() == per_record["x_LineId"].to_list()  # row order too
    assert columnar["x_LineId"].str.ends_with("-1").sum() == 7
    distinct = payloads[:1]
    _same(gcp_billing_export_columns.columnar_frame(distinct, INGESTED), normalize_rows(distinct, INGESTED))


def test_cost_explorer_unicode_keys_hash_as_the_per_record_path() -> None:
    payloads = _as_landed(cost_explorer_pages(40, date(2025, 3, 1), page_size=15))
    groups = payloads[1]["response"]["ResultsByTime"][0]["Groups"]
    groups[0]["Keys"][0] = 'Project$é "q" \\ \t🚀'
    groups[1]["Keys"][0] = "Project$\u2028\x01"
    columnar = aws_cost_explorer_columns.columnar_frame(payloads, INGESTED, "123456789012")
    _same(columnar, normalize_records(payloads, INGESTED, billing_account_id="123456789012"))


@pytest.mark.parametrize("enabled", [True, False])
def test_columnar_paths_leave_the_collector_as_found(enabled: bool) -> None:
    payloads = _as_landed(billing_export_rows(30, date(2025, 3, 1)))
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        assert gcp_billing_export_columns.columnar_frame(payloads, INGESTED) is not None
        assert aws_cost_explorer_columns.columnar_frame([{"response": None}], INGESTED) is None  # declined
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
