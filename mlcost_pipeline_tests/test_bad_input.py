"""The bad-input corpus (fixtures/bad/): each file is refused with an error naming source, row or field and reason,
or accepted for a documented reason (docs/reliability.md). Nothing is written for a refused partition, and hostile
tag values (quotes, semicolons, SQL, unicode, 20 000 characters) land byte for byte.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path

import boto3
import duckdb
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mlcost_pipeline.allocation.rules import RulesError, load_rules
from mlcost_pipeline.normalize.aws_cost_explorer import normalize_cost_explorer
from mlcost_pipeline.normalize.focus_export import read_focus_export, summarize_file
from mlcost_pipeline.normalize.focus_schema import NormalizationError
from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export
from mlcost_pipeline.sources.aws_cost_explorer import fetch_cost_and_usage, split_page_by_day
from mlcost_pipeline.sources.landing_checks import SourceDataError, check_records
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    failure_message,
    live_settings,
    materialize_day,
)
from mlcost_pipeline_tests.stubs.http import JsonServer

BAD = Path(__file__).resolve().parent / "fixtures" / "bad"
D1 = date(2026, 10, 1)  # the FOCUS files' day
D5 = date(2026, 10, 5)  # the API pages' day

# file -> the error's reason (None: accepted, see docs/reliability.md for why; COUNTED + column: loaded and
# counted for the data-quality check, because that column decides no money, currency, date or identity)
COUNTED = "counted: "
FOCUS_CASES = {
    "focus_good.csv": None,
    "focus_malformed.csv": "missing mandatory FOCUS column BilledCost",
    "focus_zero_bytes.csv": "missing mandatory FOCUS column BilledCost",
    "focus_missing_mandatory_column.csv": "missing mandatory FOCUS column BilledCost",
    "focus_wrong_type_cost.csv": 'row 2: EffectiveCost: cannot parse "twelve"',
    "focus_nan_cost.csv": 'row 2: BilledCost: cannot parse "NaN"',
    "focus_infinite_cost.csv": 'row 2: BilledCost: cannot parse "Infinity"',
    "focus_beyond_decimal_range.csv": 'row 2: BilledCost: cannot parse "1000000000000000000000000000"',
    "focus_end_before_start.csv": "row 2: ChargePeriodEnd: before ChargePeriodStart",
    "focus_unknown_currency.csv": "row 2: field BillingCurrency: unknown currency 'XYZ'",
    "focus_mandatory_value_empty.csv": COUNTED + "ServiceName",
    "focus_bad_charge_category.csv": "row 2: ChargeCategory: not one of",
    "focus_tags_not_json.csv": COUNTED + "Tags",
    "focus_empty_export.csv": None,  # a header and no rows: nothing billed that day (the file is in the manifest)
    "focus_timestamp_without_zone.csv": None,  # read as UTC (FOCUS requires UTC; some exporters drop the Z)
    "focus_mixed_currencies.csv": None,  # FOCUS allows a BillingCurrency per row; amounts are never summed across
    "focus_hostile_tags.csv": None,
}


def test_the_corpus_is_complete():
    assert sorted(p.name for p in BAD.glob("focus_*.csv")) == sorted(FOCUS_CASES)


@pytest.mark.parametrize("name", sorted(FOCUS_CASES))
def test_focus_file(name):
    path = str(BAD / name)
    with duckdb.connect() as con:
        if FOCUS_CASES[name] is None:
            frame = read_focus_export(con, [path], D1, date(2026, 10, 2), datetime(2026, 10, 3))
            assert frame.height == (0 if "empty" in name else frame.height)
            return
        if FOCUS_CASES[name].startswith(COUNTED):
            column = FOCUS_CASES[name].removeprefix(COUNTED)
            frame = read_focus_export(con, [path], D1, date(2026, 10, 2), datetime(2026, 10, 3))
            summary = summarize_file(con, path, D1, date(2026, 10, 2))
            assert frame.height == sum(rows for *_, rows in summary.days) > 0
            assert [(q.column, q.rows, q.example_row) for q in summary.quality] == [(column, 1, 2)]
            return
        with pytest.raises(NormalizationError) as err:
            read_focus_export(con, [path], D1, date(2026, 10, 2), datetime(2026, 10, 3))
    message = str(err.value)
    assert message.startswith(f"focus_export: file {path}") and FOCUS_CASES[name] in message, message


def test_mixed_currencies_keep_each_row_in_its_own_currency():
    with duckdb.connect() as con:
        frame = read_focus_export(con, [str(BAD / "focus_mixed_currencies.csv")], D1, date(2026, 10, 2), datetime.now())
    assert sorted(frame.select("BillingCurrency", "BilledCost").rows()) == sorted(
        [("EUR", frame["BilledCost"][0]), ("USD", frame["BilledCost"][0])])


@pytest.fixture(scope="module")
def focus_day(tmp_path_factory):
    root = tmp_path_factory.mktemp("focus")
    (root / "exports").mkdir()
    shutil.copy(BAD / "focus_good.csv", root / "exports" / "export.csv")
    settings = live_settings(root, "focus", MLCOST_FOCUS_PATH=str(root / "exports"))
    assert materialize_day(settings, "raw.focus_export_files", D1).success
    return root, settings


@pytest.mark.parametrize("name", ["focus_nan_cost.csv", "focus_end_before_start.csv", "focus_unknown_currency.csv",
                                  "focus_missing_mandatory_column.csv"])  # fmt: skip
def test_a_bad_export_fails_the_partition_and_keeps_the_previous_day(focus_day, name):
    root, settings = focus_day
    target = root / "exports" / "export.csv"
    try:
        shutil.copy(BAD / name, target)
        assert_bad_answer_keeps_day(settings, "raw.focus_export_files", D1, "focus_export", str(target),
                                    FOCUS_CASES[name])  # fmt: skip
    finally:
        shutil.copy(BAD / "focus_good.csv", target)


def test_hostile_tags_round_trip_untouched_through_the_warehouse(tmp_path):
    (tmp_path / "exports").mkdir()
    shutil.copy(BAD / "focus_hostile_tags.csv", tmp_path / "exports" / "export.csv")
    settings = live_settings(tmp_path, "focus", MLCOST_FOCUS_PATH=str(tmp_path / "exports"))
    result = materialize_day(settings, "raw.focus_export_files", D1)
    assert result.success, failure_message(result)
    import csv

    with open(BAD / "focus_hostile_tags.csv", newline="") as f:
        sent = json.loads(next(csv.DictReader(f))["Tags"])
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        stored = con.execute("SELECT Tags FROM core.focus_costs WHERE x_ChargeDate = $d", {"d": D1}).fetchall()
        tables = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'focus_costs'").fetchall()
    assert tables == [(1,)]  # "DROP TABLE core.focus_costs" was data, never SQL (it is a view over the files)
    assert [json.loads(t) for (t,) in stored] == [sent]
    assert len(sent["long"]) == 20000 and "🚀" in sent["team"] and "DROP TABLE" in sent["project"]


def _aws_records(name: str) -> list:
    return split_page_by_day({"TimePeriod": {}}, json.loads((BAD / name).read_text()))


AWS_CASES = {
    "aws_page_good.json": None,
    "aws_page_nan_cost.json": "field Metrics.UnblendedCost.Amount: not a number: 'NaN'",
    "aws_page_infinite_cost.json": "field Metrics.UnblendedCost.Amount: not a number: 'Infinity'",
    "aws_page_beyond_decimal_range.json": "field Metrics.UnblendedCost.Amount: beyond the DECIMAL(38,12) range",
    "aws_page_wrong_type_cost.json": "field Metrics.UnblendedCost.Amount: not a number",
    "aws_page_unknown_currency.json": "Groups[1].Metrics.UnblendedCost.Unit: unknown currency 'XYZ'",
    "aws_page_missing_metric.json": "field Metrics.UnblendedCost is missing",
    "aws_page_hostile_tag.json": None,
}
GCP_CASES = {
    "gcp_rows_good.json": None,
    "gcp_rows_nan_cost.json": "row 1: field cost: not a finite number: 'NaN'",
    "gcp_rows_infinite_cost.json": "row 1: field cost: not a finite number: 'Infinity'",
    "gcp_rows_beyond_decimal_range.json": "row 1: field cost: beyond the DECIMAL(38,12) range",
    "gcp_rows_wrong_type_cost.json": "row 1: field cost: not a number",
    "gcp_rows_end_before_start.json": "row 1: field usage_end_time: 2026-10-05 01:00:00 is before usage_start_time",
    "gcp_rows_unknown_currency.json": "record 1: field currency: unknown currency 'XYZ'",
    "gcp_rows_missing_invoice_month.json": "row 1: field invoice.month: expected YYYYMM",
    "gcp_rows_timestamp_without_zone.json": None,  # BigQuery TIMESTAMP is UTC: a bare value is read as UTC
    "gcp_rows_mixed_currencies.json": None,  # one currency per row, kept per row
}


def test_the_api_corpus_is_complete():
    assert sorted(p.name for p in BAD.glob("*.json")) == sorted([*AWS_CASES, *GCP_CASES, "aws_page_malformed.json"])


@pytest.mark.parametrize("name", sorted(AWS_CASES))
def test_cost_explorer_page(name):
    records = _aws_records(name)
    check = lambda: check_records("aws_cost_explorer", records, D5, date(2026, 10, 6), normalize_cost_explorer)  # noqa: E731
    if AWS_CASES[name] is None:
        check()
        return
    with pytest.raises(SourceDataError) as err:
        check()
    assert str(err.value).startswith(f"aws_cost_explorer partition {D5}") and AWS_CASES[name] in str(err.value)


def test_a_hostile_cost_explorer_tag_is_kept_verbatim():
    page = json.loads((BAD / "aws_page_hostile_tag.json").read_text())
    sent = page["ResultsByTime"][0]["Groups"][1]["Keys"][0].removeprefix("Project$")
    frame = normalize_cost_explorer([r for _, r in _aws_records("aws_page_hostile_tag.json")], datetime(2026, 10, 6))
    assert sent in [json.loads(t).get("Project") for t in frame["Tags"].to_list() if t]


@pytest.mark.parametrize("name", sorted(GCP_CASES))
def test_gcp_export_rows(name):
    records = [(D5, row) for row in json.loads((BAD / name).read_text())]
    check = lambda: check_records("gcp_billing_export", records, D5, date(2026, 10, 6), normalize_billing_export)  # noqa: E731
    if GCP_CASES[name] is None:
        check()
        return
    with pytest.raises(SourceDataError) as err:
        check()
    assert str(err.value).startswith(f"gcp_billing_export partition {D5}") and GCP_CASES[name] in str(err.value)


def test_malformed_json_from_cost_explorer_is_an_error_not_data(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    body = (BAD / "aws_page_malformed.json").read_bytes()
    with JsonServer(lambda *a: (200, body, {})) as server:
        client = boto3.client("ce", region_name="us-east-1", endpoint_url=server.url,
                              config=Config(retries={"mode": "adaptive", "max_attempts": 1}))  # fmt: skip
        with pytest.raises((BotoCoreError, ClientError, SourceDataError)) as err:
            fetch_cost_and_usage(client, D5, date(2026, 10, 6), accounts=["111111111111"])
    # botocore parses an unreadable JSON body as {}: the page check refuses it rather than landing nothing
    assert "page 1: field ResultsByTime is missing or not a list" in str(err.value)


RULES_CASES = {
    "rules_python_object_apply.yaml": "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object",
    "rules_python_name.yaml": "could not determine a constructor for the tag 'tag:yaml.org,2002:python/name",
    "rules_custom_tag.yaml": "could not determine a constructor for the tag '!include'",
    "rules_billion_laughs.yaml": "dimensions.project.tag_keys",
    "rules_not_yaml.yaml": "not valid YAML",
}


@pytest.mark.parametrize("name", sorted(RULES_CASES))
def test_a_hostile_rules_file_is_refused_without_running_anything(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RulesError) as err:
        load_rules(BAD / name)
    assert str(err.value).startswith(str(BAD / name)) and RULES_CASES[name] in str(err.value)
    assert len(str(err.value)) < 2000  # the alias bomb is not expanded into the message
    assert not Path("/tmp/mlcost-pwned-by-rules").exists()
