"""A date before MLCOST_PARTITIONS_START is one clear line naming the setting, before Dagster runs anything."""

from datetime import UTC, date, datetime, timedelta

import pytest

from mlcost_pipeline.cli import main
from mlcost_pipeline.defs.partitions import daily_partitions
from mlcost_pipeline.run_range import PartitionRangeError, run_range


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOST_WAREHOUSE_PATH", str(tmp_path / "w" / "mlcost.duckdb"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path / "w"


def test_materialize_before_the_first_partition_is_one_line_and_exit_2(warehouse, monkeypatch, capsys):
    monkeypatch.setenv("MLCOST_PARTITIONS_START", "2026-01-01")
    assert main(["materialize", "--start", "2025-12-31", "--end", "2026-01-02"]) == 2
    out = capsys.readouterr()
    assert out.err == (
        "mlcost: --start 2025-12-31 is before the first daily partition 2026-01-01 (MLCOST_PARTITIONS_START)\n"
    )
    assert out.out == ""
    assert not warehouse.exists()  # refused before any run: no Dagster instance, no warehouse


def test_the_default_first_partition_is_named_too(warehouse, monkeypatch, capsys):
    monkeypatch.delenv("MLCOST_PARTITIONS_START", raising=False)
    assert main(["materialize", "--start", "2024-06-01", "--end", "2024-06-30"]) == 2
    assert capsys.readouterr().err == (
        "mlcost: --start 2024-06-01 is before the first daily partition 2025-01-01 (MLCOST_PARTITIONS_START)\n"
    )


def test_demo_days_reaching_before_the_first_partition(warehouse, monkeypatch, capsys):
    today = datetime.now(UTC).date()
    monkeypatch.setenv("MLCOST_PARTITIONS_START", (today - timedelta(days=5)).isoformat())
    assert main(["demo", "--days", "30"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"mlcost: --days 30 (from {today - timedelta(days=30)}) is before the first daily partition "
        f"{today - timedelta(days=5)} (MLCOST_PARTITIONS_START)\n"
    )
    assert not warehouse.exists()


def test_a_malformed_partitions_start_is_one_line(warehouse, monkeypatch, capsys):
    monkeypatch.setenv("MLCOST_PARTITIONS_START", "01/01/2025")
    assert main(["materialize", "--start", "2026-10-01", "--end", "2026-10-01"]) == 2
    assert capsys.readouterr().err == "mlcost: MLCOST_PARTITIONS_START: not a YYYY-MM-DD date: '01/01/2025'\n"


def test_run_range_refuses_the_range_before_dagster_starts_a_run():
    first = daily_partitions.start.date()
    with pytest.raises(PartitionRangeError, match=f"before the first daily partition {first}"):
        run_range(None, first - timedelta(days=1), first, None)  # never reaches the job or the instance
    with pytest.raises(PartitionRangeError, match="--end 2026-10-01 is before --start 2026-10-02"):
        run_range(None, date(2026, 10, 2), date(2026, 10, 1), None)
