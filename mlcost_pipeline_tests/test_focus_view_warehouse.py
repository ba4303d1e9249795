"""core.focus_costs in the warehouse: API rows narrow, export rows read from the lake, one view per state.

What a user checks: per day the view's totals are the file's own totals (summed here with csv and Decimal) plus
the API rows; a failed window leaves the view and its rows as they were; an older warehouse whose
core.focus_costs is a table is migrated with nothing counted twice; the BI snapshot's bi.focus_costs reads the
same rows without copying a line item.
"""

from __future__ import annotations

import csv
import warnings
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from mlcost_pipeline.normalize.build_focus_costs import write_focus_costs
from mlcost_pipeline.normalize.focus_export import read_focus_export
from mlcost_pipeline.normalize.focus_schema import COLUMN_NAMES, NormalizationError, create_table_sql
from mlcost_pipeline.sources.export_reads import ChosenFile
from mlcost_pipeline.warehouse.focus_view import API_TABLE, READS_TABLE
from mlcost_pipeline.warehouse.raw_landing import FOCUS_MANIFEST_TABLE
from mlcost_pipeline.warehouse.schema import ensure_schema
from mlcost_pipeline.warehouse.snapshot import publish_bi_snapshot
from mlcost_pipeline_tests.test_focus_view_rows import QUIRKS, days, land
from mlcost_pipeline_tests.warehouse_fixtures import charges, insert_charges

START, END = date(2026, 9, 1), date(2026, 9, 4)
FETCHED = datetime(2026, 9, 5, 6, 0)
EFFECTIVE = COLUMN_NAMES.index("EffectiveCost")


def file_billed(path: Path) -> dict[date, Decimal]:
    out: dict[date, Decimal] = defaultdict(Decimal)
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            out[date.fromisoformat(r["ChargePeriodStart"][:10])] += Decimal(r["BilledCost"])
    return dict(out)


def billed(con: duckdb.DuckDBPyConnection, relation: str = "core.focus_costs", source: str | None = None) -> dict:
    where = "WHERE x_SourceSystem = $s" if source else "WHERE $s IS NULL"
    return dict(con.execute(f"SELECT x_ChargeDate, sum(BilledCost) FROM {relation} {where} GROUP BY 1",  # noqa: S608
                            {"s": source}).fetchall())  # fmt: skip


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    land(con, [ChosenFile(QUIRKS)], START, END, tmp_path / "lake", FETCHED)
    yield con
    con.close()


def test_each_day_holds_the_files_total_and_the_api_rows_once(warehouse):
    api = [{"day": d, "cost": "2.5"} for d in (date(2026, 8, 30), date(2026, 8, 31))]
    insert_charges(warehouse, charges(api))  # API rows of an earlier window: kept, not doubled by this one
    insert_charges(warehouse, charges([{"day": START, "cost": "9"}]))  # the window's own: replaced by raw's
    n = write_focus_costs(warehouse, START, END)
    assert n == 36  # the file's rows; the window's API sources landed nothing
    assert billed(warehouse, source="focus_export") == file_billed(QUIRKS)
    assert warehouse.execute("SELECT count(*) FROM core.focus_costs").fetchall() == [(36 + len(api),)]
    assert warehouse.execute(f"SELECT count(*) FROM {API_TABLE}").fetchall() == [(len(api),)]  # noqa: S608
    assert write_focus_costs(warehouse, START, END) == 36  # a rerun replaces, never adds
    assert billed(warehouse, source="focus_export") == file_billed(QUIRKS)


def test_a_window_refused_by_the_check_pass_leaves_the_previous_view(warehouse, tmp_path):
    write_focus_costs(warehouse, START, END)
    before = warehouse.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'focus_costs'").fetchall()
    rows_before = billed(warehouse)
    broken = tmp_path / "broken.csv"
    with QUIRKS.open(newline="") as f:
        rows = list(csv.reader(f))
    rows[5][rows[0].index("BilledCost")] = "twelve"  # data row 5
    with broken.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    warehouse.execute(f"UPDATE {FOCUS_MANIFEST_TABLE} SET path = $p", {"p": str(broken)})  # noqa: S608
    with pytest.raises(NormalizationError, match=r"broken\.csv: row 5: BilledCost: cannot parse \"twelve\""):
        write_focus_costs(warehouse, START, END)
    assert warehouse.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'focus_costs'").fetchall() == before
    assert billed(warehouse) == rows_before == file_billed(QUIRKS)
    assert "broken" not in str(warehouse.execute(f"SELECT list(path) FROM {READS_TABLE}").fetchall())  # noqa: S608


def test_an_older_warehouse_with_a_focus_costs_table_is_migrated(tmp_path):
    path = tmp_path / "old.duckdb"
    lake = tmp_path / "lake"
    with duckdb.connect(str(path)) as con:  # the layout before the view: one table with every source's rows
        ensure_schema(con)
        land(con, [ChosenFile(QUIRKS)], START, END, lake, FETCHED)
        landed = con.execute(f"SELECT DISTINCT path FROM {FOCUS_MANIFEST_TABLE}").fetchall()[0][0]  # noqa: S608
        exported = read_focus_export(con, [landed], START, END, FETCHED)
        con.execute("DROP VIEW core.focus_costs")
        con.execute(f"DELETE FROM {READS_TABLE}")  # noqa: S608
        con.execute(create_table_sql("core.focus_costs"))
        con.register("_e", exported.to_arrow())
        con.execute("INSERT INTO core.focus_costs BY NAME SELECT * FROM _e")
        con.register("_a", charges([{"day": START, "cost": "7"}]).to_arrow())
        con.execute("INSERT INTO core.focus_costs BY NAME SELECT * FROM _a")
        con.execute(f"DELETE FROM {API_TABLE}")  # noqa: S608
        old = billed(con)
    with duckdb.connect(str(path)) as con:
        ensure_schema(con)
        kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'focus_costs'")
        assert kind.fetchall() == [("VIEW",)]
        assert billed(con) == old
        assert billed(con, source="focus_export") == file_billed(QUIRKS)
        assert con.execute(f"SELECT count(*), sum(BilledCost) FROM {API_TABLE}").fetchall() == [(1, Decimal(7))]  # noqa: S608
        ensure_schema(con)  # once migrated, nothing changes
        assert billed(con) == old


def test_migrating_a_warehouse_whose_landed_file_is_gone_warns_and_keeps_the_api_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    gone = tmp_path / "gone.csv"
    gone.write_bytes(QUIRKS.read_bytes())
    with duckdb.connect(str(path)) as con:
        ensure_schema(con)
        con.execute("DROP VIEW core.focus_costs")
        con.execute(create_table_sql("core.focus_costs"))
        exported = read_focus_export(con, [str(gone)], START, END, FETCHED)
        con.register("_e", exported.to_arrow())
        con.execute("INSERT INTO core.focus_costs BY NAME SELECT * FROM _e")
        con.register("_a", charges([{"day": START, "cost": "7"}]).to_arrow())
        con.execute("INSERT INTO core.focus_costs BY NAME SELECT * FROM _a")
        con.executemany(f"INSERT INTO {FOCUS_MANIFEST_TABLE} (x_ChargeDate, path) VALUES (?, ?)",  # noqa: S608
                        [(d, str(gone)) for d in days(START, END)])  # fmt: skip
    gone.unlink()
    with duckdb.connect(str(path)) as con, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ensure_schema(con)
        assert con.execute("SELECT x_SourceSystem, count(*) FROM core.focus_costs GROUP BY 1").fetchall() == [
            ("aws_cost_explorer", 1)]  # fmt: skip
    assert any("gone.csv" in str(w.message) and "2026-09-01, 2026-09-02, 2026-09-03" in str(w.message)
               for w in caught)  # fmt: skip


def test_the_bi_snapshot_reads_the_same_rows_from_the_lake_without_copying_them(warehouse, tmp_path, monkeypatch):
    insert_charges(warehouse, charges([{"day": START, "cost": "2.5"}]))
    write_focus_costs(warehouse, START, END)
    expected = warehouse.execute("SELECT * FROM core.focus_costs ORDER BY x_LineId").fetchall()
    warehouse.close()
    published = publish_bi_snapshot(tmp_path / "w.duckdb", tmp_path / "snap.duckdb")
    assert published.tables["core.focus_costs"] == len(expected)
    monkeypatch.chdir(tmp_path.parent)  # a BI tool opens the file from wherever it runs
    with duckdb.connect(str(tmp_path / "snap.duckdb"), read_only=True) as bi:
        assert bi.execute("SELECT * FROM core.focus_costs ORDER BY x_LineId").fetchall() == expected
        assert bi.execute("SELECT count(*), sum(EffectiveCost) FROM bi.focus_costs").fetchall() == [
            (len(expected), sum(r[EFFECTIVE] for r in expected))]  # fmt: skip
        kinds = dict(bi.execute("SELECT table_name, table_type FROM information_schema.tables "
                                "WHERE table_schema = 'core'").fetchall())  # fmt: skip
    assert kinds["focus_costs"] == "VIEW" and kinds["focus_api_costs"] == "BASE TABLE"
