"""The public legacy CUR sample (FinOps Foundation focus_converters) through the CUR converter and the FOCUS
reader, plus layout detection and the errors a user sees for a broken CUR file.

Expectations are computed from the file's bytes with csv + Decimal, independently of the SQL under test.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.aws_cur_sql import CATEGORY_MAP, convert, dataset_of
from mlcost_pipeline.normalize.export_converters import detect_dataset
from mlcost_pipeline.normalize.focus_export import ExportRead, read_focus_export, summarize_file
from mlcost_pipeline.normalize.focus_schema import NormalizationError
from mlcost_pipeline_tests.test_aws_cur_shapes import (
    FIXTURE,
    expected_by_day,
    focus_by_day,
    lines,
    write_cur2_parquet,
    write_legacy_csv,
    write_legacy_parquet,
)

SAMPLE = FIXTURE.parent / "aws_cur_legacy_sample-anonymous-aws-export-dataset.csv"
NOVEMBER = (date(2023, 11, 1), date(2023, 12, 1))
INGESTED = datetime(2023, 12, 2, 6, 0)


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def _categories() -> dict[str, str]:
    with CATEGORY_MAP.open(newline="") as f:
        return {r["product_code"]: r["ServiceCategory"] for r in csv.DictReader(f)}


def test_sample_per_day_billed_is_unblended_and_effective_is_amortized(con):
    rows = lines(SAMPLE)
    df = read_focus_export(con, [str(SAMPLE)], *NOVEMBER, INGESTED)
    assert df.height == len(rows) == 1281
    assert focus_by_day(df) == expected_by_day(rows)


def test_sample_identity_service_and_category_come_from_the_cur_columns(con):
    rows = lines(SAMPLE)
    df = read_focus_export(con, [str(SAMPLE)], *NOVEMBER, INGESTED)
    categories = _categories()
    expected = Counter(
        (r["bill/PayerAccountId"], r["lineItem/UsageAccountId"],
         r["product/ProductName"] or r["lineItem/ProductCode"],
         categories.get(r["lineItem/ProductCode"], "Other"),
         r["product/regionCode"] or r["product/region"] or None, r["lineItem/LineItemDescription"],
         "Tax" if r["lineItem/LineItemType"] == "Tax" else "Usage", r["bill/InvoicingEntity"],
         r["lineItem/LegalEntity"], r["product/sku"] or None)
        for r in rows)
    got = Counter(df.select("BillingAccountId", "SubAccountId", "ServiceName", "ServiceCategory", "RegionId",
                            "ChargeDescription", "ChargeCategory", "InvoiceIssuerName", "PublisherName",
                            "SkuId").iter_rows())  # fmt: skip
    assert got == expected
    assert set(df["ProviderName"]) == {"AWS"} and df["ResourceId"].null_count() == df.height  # no such column
    assert "Other" in set(df["ServiceCategory"])  # AWSCloudShell, AWSMigrationHubRefactorSpaces: unmapped


def test_sample_loads_without_data_quality_counts(con):
    summary = summarize_file(con, str(SAMPLE), *NOVEMBER)
    assert summary.dataset == ds.AWS_CUR_LEGACY and summary.quality == [] and summary.warnings == ()
    assert sum(rows for *_, rows in summary.days) == 1281


def test_layouts_are_told_apart_by_their_columns(tmp_path, con):
    rows = lines()
    found = {}
    shapes = (("csv", write_legacy_csv, "c.csv"), ("athena", write_legacy_parquet, "a.parquet"),
              ("cur2", write_cur2_parquet, "b.parquet"))
    for name, write, file in shapes:
        path = write(rows, tmp_path / file)
        reader = "read_parquet" if file.endswith("parquet") else "read_csv"
        described = con.execute(f"DESCRIBE SELECT * FROM {reader}($p)", {"p": str(path)}).fetchall()
        columns = [r[0] for r in described]
        found[name] = (dataset_of(columns), detect_dataset(columns))
    legacy, cur2 = (ds.AWS_CUR_LEGACY,) * 2, (ds.AWS_CUR2,) * 2
    assert found == {"csv": legacy, "athena": legacy, "cur2": cur2}
    focus = ["BilledCost", "EffectiveCost", "ChargePeriodStart", "x_ServiceCode", "line_item_usage_type"]
    azure = ["CostInBillingCurrency", "BillingCurrencyCode", "Date", "ChargeType", "SubscriptionId"]
    assert dataset_of(focus) is None and dataset_of(azure) is None


def test_a_dataset_named_by_the_manifest_is_read_the_same_as_a_detected_one(tmp_path, con):
    path = write_cur2_parquet(lines(), tmp_path / "cur.parquet")
    month = (date(2026, 11, 1), date(2026, 12, 1))
    named = read_focus_export(con, [ExportRead(str(path), dataset=ds.AWS_CUR2)], *month, INGESTED)
    detected = read_focus_export(con, [str(path)], *month, INGESTED)
    assert named.sort("x_LineId").equals(detected.sort("x_LineId")) and named.height == len(lines()) + 2
    assert set(named["x_ExportVersion"].str.split(";").list.first()) == {ds.AWS_CUR2}


def _sample_with(tmp_path: Path, row: int, column: str, value: str | None) -> Path:
    rows = lines(SAMPLE)
    if value is None:
        rows = [{k: v for k, v in r.items() if k != column} for r in rows]
    else:
        rows[row - 1][column] = value
    return write_legacy_csv(rows, tmp_path / "broken.csv")


def test_an_unparseable_cost_names_file_row_and_the_cur_column(tmp_path, con):
    path = _sample_with(tmp_path, 7, "lineItem/UnblendedCost", "12,5")
    message = r"broken.csv: row 7: BilledCost \(from lineItem/UnblendedCost\): cannot parse \"12,5\""
    with pytest.raises(NormalizationError, match=message):
        read_focus_export(con, [str(path)], *NOVEMBER, INGESTED)


def test_an_unknown_line_item_type_is_refused_by_name(tmp_path, con):
    path = _sample_with(tmp_path, 30, "lineItem/LineItemType", "MysteryCharge")
    message = r"row 30: ChargeCategory \(from lineItem/LineItemType\): not one of"
    with pytest.raises(NormalizationError, match=message):
        read_focus_export(con, [str(path)], *NOVEMBER, INGESTED)


def test_a_file_without_a_required_cur_column_names_it(tmp_path, con):
    path = _sample_with(tmp_path, 1, "lineItem/CurrencyCode", None)
    with pytest.raises(NormalizationError, match=r"lineItem/CurrencyCode"):
        read_focus_export(con, [ExportRead(str(path), dataset=ds.AWS_CUR_LEGACY)], *NOVEMBER, INGESTED)


def test_convert_binds_only_prefixed_parameters_and_names_its_sources():
    columns = [(c, "VARCHAR") for c in lines(FIXTURE)[0]]
    converted = convert("scan", columns, ds.ConvertOptions())
    assert converted.params and all(k.startswith(ds.AWS_CUR_LEGACY + "_") for k in converted.params)
    assert converted.params[f"{ds.AWS_CUR_LEGACY}_tag_keys"] == ["project", "team"]
    assert converted.source_of["BilledCost"] == "lineItem/UnblendedCost"
    assert "savingsPlan/SavingsPlanEffectiveCost" in converted.source_of["EffectiveCost"]
