"""The bench's FOCUS day (bench/generate_focus.py) has the documented shape; its floors count what they say.

Every expectation is computed here from the Parquet file itself (pyarrow, json, Decimal), not by the bench.
"""

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import duckdb
import pyarrow.parquet as pq
import pytest

from bench.floors import measure, rules_tag_keys
from bench.generate_focus import generate
from mlcost_pipeline.allocation.rules import load_rules
from mlcost_pipeline.normalize.focus_export import summarize_file
from mlcost_pipeline.normalize.focus_schema import COLUMN_NAMES

DAY = date(2026, 11, 7)
ROWS = 10_000
HOUR, ONE_DAY = timedelta(hours=1), timedelta(days=1)


@pytest.fixture(scope="module")
def day_file(tmp_path_factory):
    return generate(ROWS, DAY, tmp_path_factory.mktemp("bench") / f"{DAY}.parquet")


@pytest.fixture(scope="module")
def rows(day_file):
    return pq.read_table(day_file).to_pylist()


def _is_commitment_line(r):
    return r["CommitmentDiscountId"] is not None and (
        r["ChargeCategory"] == "Purchase" or r["CommitmentDiscountStatus"] == "Unused"
    )


def test_the_file_holds_the_asked_rows_of_one_day_in_the_focus_columns(day_file, rows):
    focus_12 = [
        c
        for c in COLUMN_NAMES
        if not c.startswith("x_") and c not in ("ServiceProviderName", "HostProviderName")
    ]
    names = pq.read_schema(day_file).names
    assert len(rows) == ROWS
    assert names[: len(focus_12)] == focus_12 and names[len(focus_12) :] == [
        "x_ResourceGroupName", "x_SkuMeterCategory", "x_InvoiceSectionName",
    ]  # fmt: skip
    assert {r["ChargePeriodStart"].date() for r in rows} == {DAY}
    assert {(r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in rows} == {
        (datetime(2026, 11, 1), datetime(2026, 12, 1))
    }
    assert {r["ProviderName"] for r in rows} == {"AWS", "Google Cloud", "Microsoft", "Oracle"}
    assert all(isinstance(r["EffectiveCost"], Decimal) and isinstance(r["BilledCost"], Decimal) for r in rows)


def test_hourly_resources_have_one_row_per_hour_with_constant_tags_and_costs_that_vary(rows):
    hourly = [
        r
        for r in rows
        if r["ChargePeriodEnd"] - r["ChargePeriodStart"] == HOUR and not _is_commitment_line(r)
    ]
    daily = [r for r in rows if r["ChargePeriodEnd"] - r["ChargePeriodStart"] == ONE_DAY]
    assert len(hourly) / ROWS > 0.85 and len(daily) / ROWS > 0.05
    by_resource = defaultdict(list)
    for r in hourly:
        by_resource[r["ResourceId"]].append(r)
    assert None not in by_resource
    assert {len(rs) for rs in by_resource.values()} == {24}
    assert all(
        sorted(r["ChargePeriodStart"].hour for r in rs) == list(range(24)) for rs in by_resource.values()
    )
    assert all(len({r["Tags"] for r in rs}) == 1 for rs in by_resource.values())
    varying = sum(len({r["EffectiveCost"] for r in rs}) > 1 for rs in by_resource.values())
    assert varying / len(by_resource) > 0.5
    untagged = sum(rs[0]["Tags"] is None for rs in by_resource.values()) / len(by_resource)
    assert 0.2 < untagged < 0.4  # a quarter, plus the platform account that is never tagged


def test_tags_are_flat_json_objects_with_the_spellings_teams_use(rows):
    keys = Counter()
    for r in rows:
        if r["Tags"] is None:
            continue
        tags = json.loads(r["Tags"])
        assert isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values()), r["Tags"]
        keys.update(tags.keys())
        if r["ProviderName"] == "Google Cloud":  # GCP label keys are lower-case
            assert all(k == k.lower() for k in tags), r["Tags"]
    assert {k for k in keys if k.lower() in ("project", "proj")} == {"project", "Project", "proj"}
    values = {json.loads(r["Tags"]).get(k) for r in rows if r["Tags"] for k in ("project", "Project", "proj")}
    assert {"churn_pred", "Fraud Detection", "recsys "} <= values


def test_commitment_lines_follow_the_focus_examples(rows):
    purchases = [r for r in rows if r["ChargeCategory"] == "Purchase"]
    unused = [r for r in rows if r["CommitmentDiscountStatus"] == "Unused"]
    covered = [r for r in rows if r["CommitmentDiscountStatus"] == "Used"]
    assert purchases and unused
    assert all(r["EffectiveCost"] == 0 < r["BilledCost"] and r["CommitmentDiscountId"] for r in purchases)
    assert all(
        r["BilledCost"] == 0 < r["EffectiveCost"] and r["PricingCategory"] == "Committed" for r in unused
    )
    assert all(r["BilledCost"] == 0 < r["EffectiveCost"] < r["ContractedCost"] for r in covered)
    ids = {r["CommitmentDiscountId"] for r in purchases}
    assert {r["CommitmentDiscountId"] for r in covered} <= ids


def _selects(pool, r, project_keys):
    s = pool.select
    tags = {k.lower(): v for k, v in json.loads(r["Tags"] or "{}").items()}
    checks = [
        not s.providers or r["ProviderName"] in s.providers,
        not s.services or r["ServiceName"] in s.services,
        not s.accounts or r["SubAccountId"] in s.accounts,
        not s.resource_groups
        or (r["x_ResourceGroupName"] or "").lower() in [g.lower() for g in s.resource_groups],
        all(tags.get(k.lower()) in ([v] if isinstance(v, str) else v) for k, v in s.tags.items()),
        not s.unowned_only or not any((tags.get(k) or "").strip() for k in project_keys),
    ]
    return all(checks)


def test_every_gpu_hours_pool_of_the_repo_rules_gets_charges(rows):
    rules = load_rules().rules
    project_keys = rules.dimensions["project"].tag_keys
    pools = [p for p in rules.pools if p.method == "proportional_usage" and p.driver == "gpu_hours"]
    assert len(pools) == 3
    for pool in pools:
        selected = [r for r in rows if _selects(pool, r, project_keys)]
        assert len(selected) >= 24, pool.id
        capacity = pool.capacity.from_consumed_quantity if pool.capacity else None
        if capacity and capacity.sku_ids:  # the GPU SKU in the unit the pool converts to GPU-hours
            assert {(r["SkuId"], r["ConsumedUnit"]) for r in selected if r["SkuId"] in capacity.sku_ids} == {
                (capacity.sku_ids[0], capacity.consumed_unit)
            }, pool.id


def test_the_export_reader_loads_the_day_without_a_finding_and_with_the_files_totals(day_file, rows):
    expected = defaultdict(lambda: [Decimal(0), 0])
    for r in rows:
        total = expected[(DAY, r["ProviderName"], r["BillingCurrency"])]
        total[0] += r["BilledCost"]
        total[1] += 1
    con = duckdb.connect()
    try:
        summary = summarize_file(con, str(day_file), DAY, DAY + ONE_DAY)
    finally:
        con.close()
    assert summary.quality == []
    assert {(d, p, c): [Decimal(b), n] for d, p, c, b, n in summary.days} == dict(expected)


def test_the_cells_floor_counts_the_distinct_allocation_keys(day_file, rows):
    tag_keys = rules_tag_keys()
    cells = set()
    for r in rows:
        tags = json.loads(r["Tags"].lower()) if r["Tags"] else {}
        dims = tuple(
            next((tags[k] for k in keys if tags.get(k) is not None), None) for keys in tag_keys.values()
        )
        keys = ("ProviderName", "BillingAccountId", "SubAccountId", "ServiceName", "RegionId", "ResourceId",
                "ChargeCategory", "BillingCurrency", "x_ResourceGroupName")  # fmt: skip
        cells.add((r["ChargePeriodStart"].date(), *(r[k] for k in keys), *dims))
    result = measure(day_file, tag_keys, steps=("scan", "cells", "narrow"))
    assert result["rows"] == ROWS and result["cells"] == len(cells)
    assert result["rows_per_cell"] == round(ROWS / len(cells), 2)
    assert set(result["steps"]) == {"scan", "cells", "narrow"}
