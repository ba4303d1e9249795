"""FOCUS-shaped API records (the GCP native FOCUS table) read by the FOCUS file reader's own SQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from mlcost_pipeline.normalize.focus_records import normalize_focus_records
from mlcost_pipeline.normalize.focus_schema import COLUMN_NAMES, NormalizationError
from mlcost_pipeline.sources.sample.focus_export import focus_csv

DAY = date(2026, 11, 1)


def _records() -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(focus_csv(DAY).decode())))
    out = []
    for r in rows:
        record = {k: (v or None) for k, v in r.items() if not k.startswith("oci_")}
        record["Tags"] = json.loads(r["Tags"]) if r["Tags"] else None  # the API answers an object
        record["x_Dataset"] = "focus"
        out.append(record)
    return out


def test_records_give_the_rows_and_totals_they_hold():
    records = _records()
    df = normalize_focus_records(records, datetime(2026, 11, 2), "gcp_billing_export")
    assert df.columns == COLUMN_NAMES and df.height == len(records)
    assert df["BilledCost"].sum() == sum(Decimal(r["BilledCost"]) for r in records)
    assert df["EffectiveCost"].sum() == sum(Decimal(r["EffectiveCost"]) for r in records)
    assert set(df["x_SourceSystem"]) == {"gcp_billing_export"} and set(df["x_ChargeDate"]) == {DAY}
    assert df["x_LineId"].n_unique() == df.height
    tagged = next(i for i, r in enumerate(records) if r["Tags"])
    assert json.loads(df["Tags"][tagged]) == records[tagged]["Tags"]
    again = normalize_focus_records(records, datetime(2026, 11, 3), "gcp_billing_export")
    assert again["x_LineId"].to_list() == df["x_LineId"].to_list()


def test_a_record_whose_cost_does_not_parse_is_refused_naming_record_and_column():
    records = _records()
    records[2]["EffectiveCost"] = "n/a"
    with pytest.raises(NormalizationError, match=r'gcp_billing_export FOCUS records: record 3: EffectiveCost: cannot parse "n/a"'):
        normalize_focus_records(records, datetime(2026, 11, 2), "gcp_billing_export")


def test_a_record_with_an_empty_service_name_loads_as_unknown():
    records = _records()
    records[0]["ServiceName"] = None
    df = normalize_focus_records(records, datetime(2026, 11, 2), "gcp_billing_export")
    assert df["ServiceName"][0] == "Unknown" and df.height == len(records)
