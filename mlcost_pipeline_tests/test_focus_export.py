"""FOCUS export files: the OCI sample writer and the DuckDB reader that turns any FOCUS file into core.focus_costs."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from mlcost_pipeline.normalize.focus_export import read_focus_export, summarize_file
from mlcost_pipeline.normalize.focus_schema import COLUMN_NAMES, NormalizationError
from mlcost_pipeline.sources.sample import org
from mlcost_pipeline.sources.sample.focus_export import FOCUS_12_COLUMNS, write_focus_export

SPEC = Path(__file__).parent / "fixtures" / "focus-spec-v1.2-examples"
# The spec's examples carry only the columns each example is about; these fill the rest.
SPEC_DEFAULTS = {"BillingCurrency": "USD", "BillingAccountId": "spec-example", "ProviderName": "FOCUS spec",
                 "ServiceName": "Example Service"}
SPEC_WINDOW = (date(2023, 1, 1), date(2023, 2, 1))
BROKEN_SPEC_FILES = {"commitment_discount_purchase_scenario_2.csv": 3, "commitment_discount_purchase_scenario_3.csv": 4}
INGESTED = datetime(2026, 11, 3, 6, 0)
DAY = date(2026, 11, 1)


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return [r for r in csv.DictReader(f) if any(v for v in r.values())]  # the spec files have blank lines


def _total(rows: list[dict[str, str]], column: str) -> Decimal:
    return sum((Decimal(r[column]) for r in rows if r[column] not in ("", "null")), Decimal(0))


def _write(path: Path, header: list[str], rows: list[list[str]]) -> str:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


BASE = {
    "BilledCost": "10.00", "EffectiveCost": "9.50", "ListCost": "12.00", "ContractedCost": "10.00",
    "BillingAccountId": "acct-1", "BillingCurrency": "USD", "ChargeCategory": "Usage",
    "ChargePeriodStart": "2026-11-01T10:00:00Z", "ChargePeriodEnd": "2026-11-01T11:00:00Z",
    "BillingPeriodStart": "2026-11-01T00:00:00Z", "BillingPeriodEnd": "2026-12-01T00:00:00Z",
    "InvoiceIssuerName": "Oracle", "ProviderName": "Oracle", "PublisherName": "Oracle",
    "ServiceCategory": "Compute", "ServiceName": "Compute", "Tags": '{"proj":"vision-qa"}',
}


def _tiny(tmp_path: Path, *rows: dict[str, str], name: str = "tiny.csv", drop: tuple[str, ...] = ()) -> str:
    header = [c for c in BASE if c not in drop] + sorted({k for r in rows for k in r} - set(BASE))
    return _write(tmp_path / name, header, [[{**BASE, **r}.get(c, "") for c in header] for r in rows])


@pytest.mark.parametrize("name", sorted(p.name for p in SPEC.glob("*.csv") if p.name not in BROKEN_SPEC_FILES))
def test_focus_export_spec_example_totals_equal_the_file(con, name):
    path = SPEC / name
    rows = _csv_rows(path)
    df = read_focus_export(con, [str(path)], *SPEC_WINDOW, INGESTED, defaults=SPEC_DEFAULTS)
    assert df.height == len(rows)
    assert df["BilledCost"].sum() == _total(rows, "BilledCost")
    assert df["EffectiveCost"].sum() == _total(rows, "EffectiveCost")
    assert df["x_LineId"].n_unique() == df.height
    assert df["x_ExportVersion"][0].startswith("focus-1.1;sha256=")  # 1.1 columns, no 1.2-only column
    if "ListCost" not in rows[0]:  # both absent: no invented savings
        assert df["ListCost"].to_list() == df["ContractedCost"].to_list() == df["EffectiveCost"].to_list()


@pytest.mark.parametrize(("name", "row"), sorted(BROKEN_SPEC_FILES.items()))
def test_focus_export_spec_example_with_hour_30_names_file_row_and_column(con, name, row):
    with pytest.raises(NormalizationError, match=rf"{name}: row {row}: ChargePeriodEnd: cannot parse "
                                                 r'"2023-02-01T30:00:00Z"'):
        read_focus_export(con, [str(SPEC / name)], *SPEC_WINDOW, INGESTED, defaults=SPEC_DEFAULTS)


def test_focus_export_spec_example_without_defaults_names_the_missing_column(con):
    path = SPEC / "commitment_discount_usage_scenario_1.csv"
    with pytest.raises(NormalizationError, match=r"usage_scenario_1.csv: missing mandatory FOCUS column BillingAccountId"):
        read_focus_export(con, [str(path)], *SPEC_WINDOW, INGESTED)


def test_focus_export_sample_file_has_the_focus_12_header_and_rows(tmp_path):
    (path,) = write_focus_export([DAY], tmp_path)
    assert path == tmp_path / "focus-1.2" / "oci" / "2026-11-01.csv"
    header = path.read_text().splitlines()[0].split(",")
    assert header[:57] == FOCUS_12_COLUMNS and len(set(FOCUS_12_COLUMNS)) == 57
    rows = _csv_rows(path)
    assert 20 <= len(rows) <= 60
    assert {r["ChargeCategory"] for r in rows} == {"Usage", "Tax"}
    assert any(r["CommitmentDiscountStatus"] == "Used" and r["PricingCategory"] == "Committed" for r in rows)
    assert any(r["Tags"] == "" for r in rows) and any("vision-qa" in r["Tags"] or "Vision QA" in r["Tags"]
                                                     for r in rows)
    assert all(r["ChargePeriodStart"].endswith("Z") and len(r["ChargePeriodStart"]) == 20 for r in rows)
    assert {r["BillingAccountId"] for r in rows} == {org.OCI_TENANCY}


def test_focus_export_sample_writes_are_deterministic_and_skip_identical_files(tmp_path):
    (path,) = write_focus_export([DAY], tmp_path)
    first, stamp = path.read_bytes(), path.stat().st_mtime_ns
    write_focus_export([DAY], tmp_path)
    assert path.read_bytes() == first and path.stat().st_mtime_ns == stamp
    path.write_text("stale")
    write_focus_export([DAY], tmp_path)
    assert path.read_bytes() == first
    other = write_focus_export([DAY], tmp_path / "elsewhere")[0]
    assert other.read_bytes() == first


def test_focus_export_sample_day_totals_equal_the_file(tmp_path, con):
    paths = write_focus_export([DAY, date(2026, 11, 2)], tmp_path)
    df = read_focus_export(con, [str(p) for p in paths], DAY, date(2026, 11, 3), INGESTED)
    expected = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for path in paths:
        for r in _csv_rows(path):
            key = (date.fromisoformat(r["ChargePeriodStart"][:10]), r["BillingCurrency"])
            expected[key][0] += Decimal(r["BilledCost"])
            expected[key][1] += Decimal(r["EffectiveCost"])
            expected[key][2] += 1
    got = df.group_by("x_ChargeDate", "BillingCurrency").agg(
        pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum(), pl.len())
    assert {(d, c): [b, e, n] for d, c, b, e, n in got.iter_rows()} == dict(expected)
    assert df.columns == COLUMN_NAMES
    assert df["x_LineId"].n_unique() == df.height
    assert set(df["x_SourceSystem"]) == {"focus_export"}
    assert all(v.startswith("focus-1.2;sha256=") for v in df["x_ExportVersion"])
    assert (set(df["ServiceProviderName"]), set(df["HostProviderName"])) == ({"Oracle"}, {"Oracle"})
    assert all(isinstance(json.loads(t), dict) for t in df["Tags"].drop_nulls())
    again = read_focus_export(con, [str(p) for p in paths], DAY, date(2026, 11, 3), INGESTED)
    assert again["x_LineId"].to_list() == df["x_LineId"].to_list()


def test_focus_export_gzip_and_parquet_give_the_same_rows_as_csv(tmp_path, con):
    (path,) = write_focus_export([DAY], tmp_path)
    gz, parquet = tmp_path / "2026-11-01.csv.gz", tmp_path / "2026-11-01.parquet"
    # gzip: the same text; Parquet: as a writer would type it (DOUBLE money, TIMESTAMPTZ, ...).
    con.execute("COPY (SELECT * FROM read_csv($p, all_varchar = true)) TO $o (HEADER, COMPRESSION gzip)",
                {"p": str(path), "o": str(gz)})
    con.execute("COPY (SELECT * FROM read_csv($p)) TO $o (FORMAT parquet)", {"p": str(path), "o": str(parquet)})
    types = {r[0]: r[1] for r in con.execute("DESCRIBE SELECT * FROM read_parquet($p)", {"p": str(parquet)}).fetchall()}
    assert types["BilledCost"] == "DOUBLE" and types["ChargePeriodStart"].startswith("TIMESTAMP")
    frames = [read_focus_export(con, [str(p)], DAY, date(2026, 11, 2), INGESTED) for p in (path, gz, parquet)]
    rest = [c for c in COLUMN_NAMES if c not in ("x_ExportVersion", "x_LineId")]
    assert frames[0].height > 0
    position = [i.split("-", 1)[1] for i in frames[0]["x_LineId"]]
    for other in frames[1:]:
        assert other.select(rest).equals(frames[0].select(rest))
        # Other bytes, another file id; the same rows at the same positions.
        assert [i.split("-", 1)[1] for i in other["x_LineId"]] == position


def test_focus_export_focus_10_preview_names_are_mapped(tmp_path, con):
    header = ["Provider", "Publisher", "InvoiceIssuer", "BillingAccountId", "BillingCurrency", "BilledCost",
              "AmortizedCost", "ChargeType", "ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart",
              "BillingPeriodEnd", "ServiceName", "ServiceCategory", "Region", "UsageQuantity", "UsageUnit"]
    row = ["AWS", "Amazon Web Services, Inc.", "Amazon Web Services EMEA SARL", "999999999999", "USD", "3.50",
           "3.25", "Usage", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T00:00:00Z",
           "2026-12-01T00:00:00Z", "Amazon EC2", "Compute", "us-east-1", "2", "Hours"]
    path = _write(tmp_path / "focus10.csv", header, [row])
    r = read_focus_export(con, [path], DAY, date(2026, 11, 2), INGESTED).row(0, named=True)
    assert (r["ProviderName"], r["PublisherName"], r["InvoiceIssuerName"]) == tuple(row[:3])
    assert (r["EffectiveCost"], r["ChargeCategory"], r["RegionId"]) == (Decimal("3.25"), "Usage", "us-east-1")
    assert (r["ConsumedQuantity"], r["ConsumedUnit"]) == (Decimal(2), "Hours")
    assert r["ListCost"] == r["ContractedCost"] == Decimal("3.25")
    assert r["x_ExportVersion"].startswith("focus-1.0-preview;sha256=")


def test_focus_export_missing_billed_cost_names_file_and_column(tmp_path, con):
    path = _tiny(tmp_path, {}, name="no-billed.csv", drop=("BilledCost",))
    with pytest.raises(NormalizationError, match=r"file .*no-billed.csv: missing mandatory FOCUS column BilledCost"):
        read_focus_export(con, [path], DAY, date(2026, 11, 2), INGESTED)


def test_focus_export_missing_charge_period_start_names_file_and_column(tmp_path, con):
    path = _tiny(tmp_path, {}, name="no-start.csv", drop=("ChargePeriodStart",))
    with pytest.raises(NormalizationError, match=r"no-start.csv: missing mandatory FOCUS column ChargePeriodStart"):
        read_focus_export(con, [path], DAY, date(2026, 11, 2), INGESTED)


def test_focus_export_window_keeps_charge_period_start_in_start_inclusive_end_exclusive(tmp_path, con):
    starts = ["2026-10-31T23:59:59Z", "2026-11-01T00:00:00Z", "2026-11-01T23:59:59Z", "2026-11-02T00:00:00Z"]
    path = _tiny(tmp_path, *({"ChargePeriodStart": s, "ChargePeriodEnd": s} for s in starts))
    df = read_focus_export(con, [path], DAY, date(2026, 11, 2), INGESTED)
    assert df["ChargePeriodStart"].to_list() == [datetime(2026, 11, 1), datetime(2026, 11, 1, 23, 59, 59)]
    assert set(df["x_ChargeDate"]) == {DAY}


def test_focus_export_timestamps_are_utc_and_inclusive_billing_period_end_becomes_exclusive(tmp_path, con):
    rows = [
        {"ChargePeriodStart": "2026-11-01T10:00:00+00:00", "BillingPeriodEnd": "2026-11-30"},
        {"ChargePeriodStart": "2026-11-01T12:00:00+02:00", "BillingPeriodEnd": "2026-11-30T23:59:59Z"},
        {"ChargePeriodStart": "2026-11-01T10:00:00", "BillingPeriodEnd": "2026-11-30T23:59:59.999"},
        {"ChargePeriodStart": "2026-11-01 10:00:00Z", "BillingPeriodEnd": "2026-12-01T00:00:00Z"},
    ]
    df = read_focus_export(con, [_tiny(tmp_path, *rows)], DAY, date(2026, 11, 2), INGESTED)
    assert set(df["ChargePeriodStart"]) == {datetime(2026, 11, 1, 10)}
    assert set(df["BillingPeriodEnd"]) == {datetime(2026, 12, 1)}
    # The four rows spell one charge four ways: identical after parsing, still four charges (rows 1 to 4).
    file_id = df["x_LineId"][0].rsplit("-", 1)[0]
    assert df["x_LineId"].to_list() == [f"{file_id}-{i}" for i in (1, 2, 3, 4)]


@pytest.mark.parametrize(
    ("tags", "row"),
    [('{"team":{"name":"ml"}}', 2), ('["proj","vision-qa"]', 2), ('{"proj":["a","b"]}', 2), ("proj=vision-qa", 2)],
)
def test_focus_export_tags_that_are_not_a_flat_object_load_untagged_and_are_counted(tmp_path, con, tags, row):
    """Tags decide no amount: a row with broken Tags loads without them (fallback rules then own it) and is counted
    for the data-quality check, with the row that shows it."""
    path = _tiny(tmp_path, {}, {"Tags": tags}, name="tags.csv")
    df = read_focus_export(con, [path], DAY, date(2026, 11, 2), INGESTED)
    assert df["BilledCost"].sum() == Decimal("20.00") and df["Tags"].to_list() == [BASE["Tags"], None]
    [count] = summarize_file(con, path, DAY, date(2026, 11, 2)).quality
    assert (count.column, count.rows, count.example_row, count.provider) == ("Tags", 1, row, "Oracle")
    assert "Tags: not a flat JSON object" in count.example


def test_focus_export_unparseable_money_names_file_row_and_column(tmp_path, con):
    path = _tiny(tmp_path, {}, {}, {"EffectiveCost": "$9.50"}, name="money.csv")
    with pytest.raises(NormalizationError, match=r'money.csv: row 3: EffectiveCost: cannot parse "\$9.50"'):
        read_focus_export(con, [path], DAY, date(2026, 11, 2), INGESTED)


def test_focus_export_money_is_exact_and_flat_tag_values_are_kept(tmp_path, con):
    rows = [{"BilledCost": "0.1", "Tags": '{"proj":"vision-qa","gpu":4,"spot":true,"owner":null}'},
            {"BilledCost": "0.2", "Tags": '"CostCenter": "cc-42","proj": "vision-qa"'},  # Azure fragment
            {"BilledCost": "123456789012.123456789012", "Tags": ""}]
    df = read_focus_export(con, [_tiny(tmp_path, *rows)], DAY, date(2026, 11, 2), INGESTED)
    assert df["BilledCost"].sum() == Decimal("123456789012.423456789012")
    assert json.loads(df["Tags"][0]) == {"proj": "vision-qa", "gpu": 4, "spot": True, "owner": None}
    assert json.loads(df["Tags"][1]) == {"CostCenter": "cc-42", "proj": "vision-qa"}
    assert df["Tags"][2] is None


def test_focus_export_keeps_contract_x_columns_and_ignores_other_provider_columns(tmp_path, con):
    row = {"x_ResourceGroupName": "rg-vision-qa", "x_BilledCostInUsd": "not a number", "oci_Anything": "x"}
    df = read_focus_export(con, [_tiny(tmp_path, row)], DAY, date(2026, 11, 2), INGESTED)
    assert df["x_ResourceGroupName"].to_list() == ["rg-vision-qa"]
    assert df.columns == COLUMN_NAMES


def test_focus_export_unknown_charge_category_names_file_and_row(tmp_path, con):
    path = _tiny(tmp_path, {"ChargeCategory": "Refund"}, name="category.csv")
    with pytest.raises(NormalizationError, match=r"category.csv: row 1: ChargeCategory: not one of"):
        read_focus_export(con, [path], DAY, date(2026, 11, 2), INGESTED)


def test_focus_export_leaves_the_callers_connection_as_it_was(tmp_path, con):
    (path,) = write_focus_export([DAY], tmp_path)
    read_focus_export(con, [str(path)], DAY, date(2026, 11, 2), INGESTED)
    assert con.execute("SELECT current_setting('produce_arrow_string_view')").fetchall() == [(False,)]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]


def test_focus_export_no_files_gives_the_empty_contract(con):
    df = read_focus_export(con, [], DAY, date(2026, 11, 2), INGESTED)
    assert df.height == 0 and df.columns == COLUMN_NAMES


def _sample_with(tmp_path: Path, column: str, value: str) -> tuple[str, list[dict]]:
    import io

    from mlcost_pipeline.sources.sample.focus_export import focus_csv

    rows = list(csv.DictReader(io.StringIO(focus_csv(DAY).decode())))
    rows[0][column] = value
    path = tmp_path / f"{column}.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path), rows


def test_focus_export_refuses_an_infinite_charge_period(tmp_path, con):
    """Found by the fuzzer: DuckDB parses 'infinity' as a timestamp; a charge period never is one."""
    path, _ = _sample_with(tmp_path, "ChargePeriodEnd", "infinity")
    with pytest.raises(NormalizationError, match=r"row 1: ChargePeriodEnd: cannot parse"):
        read_focus_export(con, [path], DAY, date(2026, 11, 2), INGESTED)


def test_focus_export_loads_an_unparseable_billing_period_with_the_charges_month(tmp_path, con):
    """BillingPeriodEnd decides no amount or day: the row loads with its charge's calendar month and is counted."""
    path, rows = _sample_with(tmp_path, "BillingPeriodEnd", "infinity")
    df = read_focus_export(con, [path], DAY, date(2026, 11, 2), INGESTED)
    assert df["BilledCost"].sum() == sum(Decimal(r["BilledCost"]) for r in rows)
    assert set(df["BillingPeriodEnd"]) == {datetime(2026, 12, 1)}
    [count] = summarize_file(con, path, DAY, date(2026, 11, 2)).quality
    assert (count.column, count.rows, count.example_row) == ("BillingPeriodEnd", 1, 1)
