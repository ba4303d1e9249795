import duckdb
import polars as pl
import pytest

from mlcost_pipeline.warehouse.invariants import disallowed_values, duplicate_line_ids
from mlcost_pipeline.warehouse.partition_writes import PartitionWriteError, replace_window
from mlcost_pipeline_tests.warehouse_fixtures import D1, D2, charges, warehouse_with

ROWS = [{"day": D1, "cost": "1.5"}, {"day": D2, "cost": "2.5"}]


def _total(con):
    return con.execute("SELECT sum(EffectiveCost), count(*) FROM core.focus_costs").fetchall()[0]


def test_replace_window_twice_gives_the_same_rows(tmp_path):
    con = warehouse_with(tmp_path / "w.duckdb", [])
    frame = charges(ROWS)
    replace_window(con, "core.focus_api_costs", "x_ChargeDate", D1, D2.replace(day=3), frame)
    once = _total(con)
    replace_window(con, "core.focus_api_costs", "x_ChargeDate", D1, D2.replace(day=3), frame)
    assert _total(con) == once == (pl.Series([1.5 + 2.5]).cast(pl.Decimal(38, 12))[0], 2)


def test_replace_window_leaves_other_days_alone(tmp_path):
    con = warehouse_with(tmp_path / "w.duckdb", ROWS)
    replace_window(con, "core.focus_api_costs", "x_ChargeDate", D2, D2.replace(day=3), charges([]).clear())
    assert con.execute("SELECT x_ChargeDate, count(*) FROM core.focus_costs GROUP BY 1").fetchall() == [(D1, 1)]


def test_replace_window_refuses_rows_outside_the_window_and_keeps_old_data(tmp_path):
    con = warehouse_with(tmp_path / "w.duckdb", ROWS)
    before = _total(con)
    with pytest.raises(PartitionWriteError, match="outside"):
        replace_window(con, "core.focus_api_costs", "x_ChargeDate", D1, D2, charges(ROWS))
    assert _total(con) == before


def test_replace_window_failing_insert_rolls_back_the_delete(tmp_path):
    con = warehouse_with(tmp_path / "w.duckdb", ROWS)
    before = _total(con)
    bad = charges([{"day": D1, "cost": "9"}]).with_columns(pl.lit("not-a-date").alias("ChargePeriodStart"))
    with pytest.raises(duckdb.Error):
        replace_window(con, "core.focus_api_costs", "x_ChargeDate", D1, D2, bad)
    assert _total(con) == before


def test_invariants_find_duplicates_and_bad_values(tmp_path):
    con = warehouse_with(tmp_path / "w.duckdb", ROWS)
    assert duplicate_line_ids(con, D1, D2.replace(day=3)) == 0
    assert disallowed_values(con, D1, D2.replace(day=3)) == 0
    con.execute("INSERT INTO core.focus_api_costs SELECT * FROM core.focus_api_costs WHERE x_ChargeDate = $d", {"d": D1})
    con.execute("UPDATE core.focus_api_costs SET ChargeCategory = 'Refund' WHERE x_ChargeDate = $d", {"d": D2})
    assert duplicate_line_ids(con, D1, D2.replace(day=3)) == 1
    assert disallowed_values(con, D1, D2.replace(day=3)) == 1
