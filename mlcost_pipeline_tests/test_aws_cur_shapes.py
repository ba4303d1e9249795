"""The AWS CUR layouts the converter reads, written from one set of lines, and what each must give.

fixtures/aws-cur/commitment_lines.csv (legacy CSV names) is also written as legacy Parquet (Athena:
snake_case, typed, tags as resource_tags_user_* columns) and as CUR 2.0 (Parquet with MAP columns, and gzip
CSV with the maps as JSON). The expectations come from the CSV with csv + Decimal, independently of the SQL
under test: the billed total is the sum of lineItem/UnblendedCost, the effective total AWS's amortized-cost
formula. Other test files import the writers and expectations from here.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.normalize.aws_cur_columns import Layout, snake
from mlcost_pipeline.normalize.aws_cur_terms import Sql, field
from mlcost_pipeline.normalize.focus_export import ExportRead, read_focus_export

FIXTURE = Path(__file__).parent / "fixtures" / "aws-cur" / "commitment_lines.csv"
MONTH = (date(2026, 11, 1), date(2026, 12, 1))
INGESTED = datetime(2026, 12, 2, 6, 0)
MONEY = {"lineItem/UnblendedCost", "lineItem/UsageAmount", "pricing/publicOnDemandCost",
         "reservation/EffectiveCost", "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
         "reservation/UnusedRecurringFee", "savingsPlan/SavingsPlanEffectiveCost",
         "savingsPlan/TotalCommitmentToDate", "savingsPlan/UsedCommitment"}
TIMES = {"lineItem/UsageStartDate", "lineItem/UsageEndDate", "bill/BillingPeriodStartDate",
         "bill/BillingPeriodEndDate"}
CUR2_IN_PRODUCT_MAP = {"product/ProductName": "product_name", "product/region": "region"}
FOCUS_FIELDS = (
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ChargeCategory", "ChargeClass",
    "ChargeFrequency", "PricingCategory", "CommitmentDiscountId", "CommitmentDiscountStatus",
    "CommitmentDiscountType", "CommitmentDiscountCategory", "ChargePeriodStart", "ChargePeriodEnd",
    "BillingPeriodStart", "BillingPeriodEnd", "BillingAccountId", "SubAccountId", "ServiceName",
    "ServiceCategory", "RegionId", "ResourceId", "SkuId", "SkuPriceId", "Tags", "ChargeDescription",
    "ConsumedQuantity", "PricingQuantity", "ListUnitPrice", "ContractedUnitPrice", "x_ChargeDate",
)  # fmt: skip


def lines(path: Path = FIXTURE) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def dec(value: str) -> Decimal:
    return Decimal(value) if value else Decimal(0)


def amortized(line: dict[str, str]) -> Decimal:
    """AWS's amortized cost of a CUR line (Cost Explorer's AmortizedCost, the well-architected queries)."""
    t = line["lineItem/LineItemType"]
    if t == "SavingsPlanCoveredUsage":
        return dec(line["savingsPlan/SavingsPlanEffectiveCost"])
    if t == "SavingsPlanRecurringFee":
        return dec(line["savingsPlan/TotalCommitmentToDate"]) - dec(line["savingsPlan/UsedCommitment"])
    if t in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
        return Decimal(0)
    if t == "DiscountedUsage":
        return dec(line["reservation/EffectiveCost"])
    if t == "RIFee":
        return (dec(line["reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"])
                + dec(line["reservation/UnusedRecurringFee"]))
    if t == "Fee" and line.get("reservation/ReservationARN"):
        return Decimal(0)
    return dec(line["lineItem/UnblendedCost"])


def expected_by_day(rows: list[dict[str, str]]) -> dict[tuple[date, str], tuple[Decimal, Decimal]]:
    out: dict[tuple[date, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for line in rows:
        key = (date.fromisoformat(line["lineItem/UsageStartDate"][:10]), line["lineItem/CurrencyCode"])
        out[key][0] += dec(line["lineItem/UnblendedCost"])
        out[key][1] += amortized(line)
    return {k: (v[0], v[1]) for k, v in out.items()}


def focus_by_day(df) -> dict[tuple[date, str], tuple[Decimal, Decimal]]:
    out: dict[tuple[date, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for r in df.iter_rows(named=True):
        out[(r["x_ChargeDate"], r["BillingCurrency"])][0] += r["BilledCost"]
        out[(r["x_ChargeDate"], r["BillingCurrency"])][1] += r["EffectiveCost"]
    return {k: (v[0], v[1]) for k, v in out.items()}


def _value(column: str, text: str):
    if not text:
        return None
    if column in MONEY:
        return float(text)
    if column in TIMES:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
    return text


def _arrow_type(column: str) -> pa.DataType:
    return pa.float64() if column in MONEY else pa.timestamp("ms") if column in TIMES else pa.string()


def write_legacy_parquet(rows: list[dict[str, str]], path: Path) -> Path:
    """The Athena layout: snake_case names, doubles and timestamps, resource_tags_user_<key> tag columns."""
    columns = {snake(c): pa.array([_value(c, r[c]) for r in rows], _arrow_type(c)) for c in rows[0]}
    pq.write_table(pa.table(columns), path)
    return path


def cur2_columns(rows: list[dict[str, str]], maps_as_json: bool) -> dict[str, pa.Array]:
    def as_map(pairs: list[tuple[str, str]]):
        return json.dumps(dict(pairs)) if maps_as_json else pairs

    map_type = pa.string() if maps_as_json else pa.map_(pa.string(), pa.string())
    columns: dict[str, pa.Array] = {}
    for c in rows[0]:
        if c in CUR2_IN_PRODUCT_MAP or c.startswith("resourceTags/"):
            continue
        columns[snake(c)] = pa.array([_value(c, r[c]) for r in rows], _arrow_type(c))
    columns["bill_payer_account_name"] = pa.array(["org-payer"] * len(rows))
    columns["line_item_usage_account_name"] = pa.array(["ml-prod"] * len(rows))
    # AWS writes only the keys a line has a value for; tag keys as Data Exports spells them (user_<key>).
    columns["product"] = pa.array(
        [as_map([(k, r[c]) for c, k in CUR2_IN_PRODUCT_MAP.items() if r[c]]) for r in rows], map_type)
    tags = [[(snake(c[len("resourceTags/"):]), r[c]) for c in r if c.startswith("resourceTags/") and r[c]]
            for r in rows]
    columns["resource_tags"] = pa.array([as_map(t) for t in tags], map_type)
    columns["cost_category"] = pa.array([as_map([]) for _ in rows], map_type)
    return columns


def write_cur2_parquet(rows: list[dict[str, str]], path: Path) -> Path:
    pq.write_table(pa.table(cur2_columns(rows, maps_as_json=False)), path)
    return path


def write_cur2_csv_gz(rows: list[dict[str, str]], path: Path) -> Path:
    """CUR 2.0 delivered as gzip CSV: the maps are JSON text, timestamps ISO text."""
    table = pa.table(cur2_columns(rows, maps_as_json=True))
    columns = table.column_names
    with gzip.open(path, "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for record in table.to_pylist():
            writer.writerow(["" if record[c] is None else record[c].strftime("%Y-%m-%dT%H:%M:%SZ")
                             if isinstance(record[c], datetime) else record[c] for c in columns])
    return path


def write_legacy_csv(rows: list[dict[str, str]], path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


SHAPES = {
    "legacy-csv": (write_legacy_csv, "cur.csv", ds.AWS_CUR_LEGACY),
    "legacy-parquet": (write_legacy_parquet, "cur.parquet", ds.AWS_CUR_LEGACY),
    "cur2-parquet": (write_cur2_parquet, "cur.parquet", ds.AWS_CUR2),
    "cur2-csv-gz": (write_cur2_csv_gz, "cur.csv.gz", ds.AWS_CUR2),
}


def write_shape(shape: str, rows: list[dict[str, str]], folder: Path) -> Path:
    write, name, _ = SHAPES[shape]
    folder.mkdir(parents=True, exist_ok=True)
    return write(rows, folder / name)


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def read_cur(con, path: Path, dataset: str | None = None, window=MONTH):
    return read_focus_export(con, [ExportRead(str(path), dataset=dataset)], *window, INGESTED)


def test_camel_case_tag_keys_keep_their_spelling_only_where_aws_keeps_it(tmp_path, con):
    """Legacy CSV writes `user:CostCenter`; Athena Parquet and CUR 2.0 snake_case it: `user_cost_center`. User tags
    lose the `user:` prefix (as in AWS's FOCUS export and Cost Explorer): one rule reads every AWS source."""
    untagged = [{k: v for k, v in r.items() if not k.startswith("resourceTags/")} for r in lines()
                if r["identity/LineItemId"] == "on-demand"]
    rows = [{**r, "resourceTags/user:CostCenter": "42"} for r in untagged]
    tags = {shape: read_cur(con, write_shape(shape, rows, tmp_path / shape))["Tags"].to_list()
            for shape in ("legacy-csv", "legacy-parquet", "cur2-parquet")}
    snake_cased = ['{"cost_center":"42"}']
    assert tags == {"legacy-csv": ['{"CostCenter":"42"}'], "legacy-parquet": snake_cased,
                    "cur2-parquet": snake_cased}


def test_parquet_doubles_become_the_decimals_aws_wrote(con):
    """CUR Parquet amounts are doubles, FOCUS money exact: each comes back as its shortest text's decimal."""
    rng = random.Random(20261101)
    texts = [f"{rng.uniform(-10.0 ** e, 10.0 ** e):.{d}f}" for e in range(-3, 10) for d in (2, 6, 10, 12)
             for _ in range(40)]
    texts += ["999.999999999999", "1000.000000000001", "-999.123456789012", "1e-07", "0.0"]
    values = [float(t) for t in texts]
    columns = [("line_item_line_item_type", "VARCHAR"), ("line_item_unblended_cost", "DOUBLE")]
    layout = Layout.of(columns, ds.AWS_CUR2)
    sql = Sql(layout)
    expr = sql.amount("BilledCost", [], field("unblended"))
    got = con.execute(f"SELECT {expr} FROM (SELECT *{sql.leaf_select()} FROM (SELECT unnest($v) AS "
                      "line_item_unblended_cost))", {"v": values}).fetchall()
    expected = [Decimal(repr(v)).quantize(Decimal("1e-12")) for v in values]
    assert [g[0] for g in got] == expected


def test_cur2_with_only_the_tags_map_keeps_its_keys_as_aws_prefixes_them(tmp_path, con):
    """CUR 2.0's newer `tags` column replaces resource_tags; its keys carry their source prefix already."""
    rows = [r for r in lines() if r["identity/LineItemId"] in ("on-demand", "tax")]
    columns = cur2_columns(rows, maps_as_json=False)
    del columns["resource_tags"]
    map_type = pa.map_(pa.string(), pa.string())
    tags = [[("resourceTags/user:project", "vision"), ("accountTag/env", "prod")], []]
    columns["tags"] = pa.array(tags, map_type)
    pq.write_table(pa.table(columns), tmp_path / "cur.parquet")
    df = read_cur(con, tmp_path / "cur.parquet")
    by_line = dict(zip(df["ChargeDescription"], df["Tags"], strict=True))
    assert by_line == {rows[0]["lineItem/LineItemDescription"]: '{"resourceTags/user:project":"vision",'
                                                                 '"accountTag/env":"prod"}',
                       rows[1]["lineItem/LineItemDescription"]: None}


def test_files_of_one_export_with_different_tag_columns_are_read_by_name(tmp_path, con):
    """CUR gains tag columns between refreshes: an earlier part without a tag, a later one with it, read together,
    keep every line once and each line's own tags."""
    rows = lines()
    first = [{k: v for k, v in r.items() if k != "resourceTags/user:team"} for r in rows[:8]]
    later = [{**r, "resourceTags/user:owner": "ana"} for r in rows[8:]]
    paths = [write_legacy_csv(first, tmp_path / "cur-1.csv"), write_legacy_csv(later, tmp_path / "cur-2.csv")]
    df = read_focus_export(con, [ExportRead(str(p)) for p in paths], *MONTH, INGESTED)
    assert focus_by_day(df) == expected_by_day(rows)
    by_line = {d: json.loads(t) if t else {} for d, t in zip(df["ChargeDescription"], df["Tags"], strict=True)}
    for r in first:
        assert "team" not in by_line[r["lineItem/LineItemDescription"]]
    for r in later:
        assert by_line[r["lineItem/LineItemDescription"]].get("owner") == "ana"
