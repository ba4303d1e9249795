"""FOCUS export files straight into core.focus_costs in SQL: line ids, the window's atomic write, the day map."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from mlcost_pipeline.normalize.build_focus_costs import write_focus_costs
from mlcost_pipeline.normalize.focus_export import read_focus_export
from mlcost_pipeline.normalize.focus_schema import NormalizationError
from mlcost_pipeline.sources.export_reads import files_by_day
from mlcost_pipeline.sources.landing_checks import SourceDataError
from mlcost_pipeline.warehouse.partition_writes import PartitionWriteError, replace_window_with
from mlcost_pipeline.warehouse.raw_landing import FOCUS_MANIFEST_TABLE
from mlcost_pipeline_tests.warehouse_fixtures import D1, D2, warehouse_with

INGESTED = datetime(2026, 10, 3)
ROW = {
    "BilledCost": "1.0", "EffectiveCost": "1.0", "ListCost": "1.0", "ContractedCost": "1.0",
    "BillingAccountId": "acct", "BillingCurrency": "USD", "ChargeCategory": "Usage",
    "BillingPeriodStart": "2026-10-01T00:00:00Z", "BillingPeriodEnd": "2026-11-01T00:00:00Z",
    "InvoiceIssuerName": "Acme Cloud", "ProviderName": "Acme Cloud", "PublisherName": "Acme Cloud",
    "ServiceCategory": "Compute", "ServiceName": "VM", "ResourceId": "vm-1", "Tags": '{"proj":"churn"}',
}  # fmt: skip


def _parquet(path: Path, n: int, day: date = D1, *, bad_row: int | None = None, group: int = 2_000,
             descending: bool = False) -> str:
    """n rows, all with one key (same resource, period and tags), the i-th costing i (or n + 1 - i), in row groups
    of `group` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    start = f"{day.isoformat()} 10:00:00"
    cost = f"CAST({n} - i AS DECIMAL(18,6))" if descending else "CAST(i + 1 AS DECIMAL(18,6))"
    billed = f"CASE WHEN i + 1 = {bad_row} THEN 'twelve' ELSE CAST({cost} AS VARCHAR) END" if bad_row else cost
    fixed = ", ".join(f"'{v}' AS \"{k}\"" for k, v in ROW.items() if k not in ("BilledCost", "EffectiveCost"))
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT {fixed}, {billed} AS BilledCost, {cost} AS EffectiveCost, "  # noqa: S608
            f"TIMESTAMP '{start}' AS ChargePeriodStart, TIMESTAMP '{start}' + INTERVAL 1 HOUR AS ChargePeriodEnd "
            f"FROM range({n}) r(i) ORDER BY i) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE {group})"
        )
    return str(path)


def test_a_line_id_is_the_file_content_and_the_row_position_whatever_the_read_order(tmp_path):
    first = _parquet(tmp_path / "a.parquet", 7_000)  # 4 row groups: read by several threads
    second = _parquet(tmp_path / "b.parquet", 3)
    (tmp_path / "copy").mkdir()
    same_bytes = tmp_path / "copy" / "renamed.parquet"
    same_bytes.write_bytes(Path(first).read_bytes())
    reversed_rows = _parquet(tmp_path / "reversed" / "a.parquet", 7_000, descending=True)
    with duckdb.connect() as con:
        df = read_focus_export(con, [first, second], D1, D2, INGESTED)
        again = read_focus_export(con, [first, second], D1, D2, INGESTED)
        copied = read_focus_export(con, [str(same_bytes)], D1, D2, INGESTED)
        backwards = read_focus_export(con, [reversed_rows], D1, D2, INGESTED)
    sha = hashlib.sha256(Path(first).read_bytes()).hexdigest()[:16]
    # Row i of the file (1-based) is <sha>-i: the i-th row costs i.
    by_cost = dict(zip(df["EffectiveCost"].to_list()[:7_000], df["x_LineId"].to_list()[:7_000], strict=True))
    assert by_cost == {Decimal(i): f"{sha}-{i}" for i in range(1, 7_001)}
    assert df["x_LineId"].n_unique() == 7_003 and sorted(again["x_LineId"]) == sorted(df["x_LineId"])
    assert sorted(copied["x_LineId"]) == sorted(by_cost.values())  # the same bytes anywhere: the same ids
    assert not set(backwards["x_LineId"]) & set(df["x_LineId"])  # other bytes: other ids


def test_a_bad_row_in_a_later_row_group_names_the_file_and_the_first_bad_row(tmp_path):
    path = _parquet(tmp_path / "bad.parquet", 7_000, bad_row=6_001)
    with duckdb.connect() as con, pytest.raises(NormalizationError) as err:
        read_focus_export(con, [path], D1, D2, INGESTED)
    assert str(err.value) == f"focus_export: file {path}: row 6001: BilledCost: cannot parse \"twelve\""


def _landed(tmp_path: Path, paths: list[str]) -> duckdb.DuckDBPyConnection:
    con = warehouse_with(tmp_path / "w.duckdb", [])
    con.executemany(f"INSERT INTO {FOCUS_MANIFEST_TABLE} (x_ChargeDate, path) VALUES (?, ?)",  # noqa: S608
                    [(D1, p) for p in paths])  # fmt: skip
    return con


def test_write_focus_costs_replaces_the_window_and_a_bad_file_keeps_the_previous_rows(tmp_path):
    path = tmp_path / "export.parquet"
    _parquet(path, 10)
    con = _landed(tmp_path, [str(path)])
    assert write_focus_costs(con, D1, D2) == 10
    assert write_focus_costs(con, D1, D2) == 10  # a rerun replaces, never adds
    before = con.execute("SELECT count(*), sum(EffectiveCost), list(x_LineId ORDER BY x_LineId) "
                         "FROM core.focus_costs").fetchall()  # fmt: skip
    assert before[0][:2] == (10, Decimal(55))
    # New bytes land under a new name (the lake is content-addressed): the catalog now names a broken file.
    bad = _parquet(tmp_path / "export-v2.parquet", 12, bad_row=12)
    con.execute(f"UPDATE {FOCUS_MANIFEST_TABLE} SET path = $p", {"p": bad})  # noqa: S608
    with pytest.raises(NormalizationError, match=r"raw.focus_export_files window .*row 12: BilledCost"):
        write_focus_costs(con, D1, D2)
    assert con.execute("SELECT count(*), sum(EffectiveCost), list(x_LineId ORDER BY x_LineId) "
                       "FROM core.focus_costs").fetchall() == before  # fmt: skip


def test_replace_window_with_refuses_rows_outside_the_window(tmp_path):
    con = warehouse_with(tmp_path / "w.duckdb", [{"day": D1, "cost": "1"}])

    def fill(c):
        c.execute("INSERT INTO core.focus_api_costs (x_LineId, x_ChargeDate) VALUES ('x', $d)", {"d": D2})
        return 1

    with pytest.raises(PartitionWriteError, match="outside"):
        replace_window_with(con, "core.focus_api_costs", "x_ChargeDate", D1, D2, fill)
    assert con.execute("SELECT x_ChargeDate, count(*) FROM core.focus_costs GROUP BY 1").fetchall() == [(D1, 1)]


def test_files_by_day_skips_parquet_outside_the_window_without_reading_it(tmp_path):
    inside = _parquet(tmp_path / "inside.parquet", 5, D1)
    # A broken file a month earlier: its statistics rule it out, so today's window never reads it.
    old = _parquet(tmp_path / "old.parquet", 5, date(2026, 9, 1), bad_row=3)
    assert [(r.day, r.path) for r in files_by_day([Path(inside), Path(old)], D1, D2).file_days] == [(D1, Path(inside))]
    # Its own window does read it, and fails naming the file and row.
    with pytest.raises(SourceDataError, match=r"old\.parquet: row 3: BilledCost"):
        files_by_day([Path(inside), Path(old)], date(2026, 9, 1), date(2026, 9, 2))
