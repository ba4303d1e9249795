"""Done-when of the schedule: five daily ticks over demo data, with one day's bill revised after it was first
loaded, give exactly the tables of a fresh backfill of the same days made after the revision.

Each tick is what the daemon launches: the schedule's RunRequest, executed as its job with its partition-range
tags. The backfill is `run_range`, the path of `mlcost materialize` and of a single-run backfill from the UI. Both
warehouses share one sample MLflow store (as both would share one tracking server), so run ids agree.
"""

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline.sources.sample import aws_cost_explorer as sample_aws
from mlcost_pipeline.sources.sample import gcp_billing_export as sample_gcp

TICKS = [date(2026, 11, 10) + timedelta(days=i) for i in range(5)]  # 06:00 UTC runs; windows of 3 days
REVISED_DAY = date(2026, 11, 10)  # first loaded by the tick of 11-11, revised before the tick of 11-13
REVISE_BEFORE_TICK = date(2026, 11, 13)
FIRST_DAY, LAST_DAY = date(2026, 11, 7), date(2026, 11, 13)  # every day some tick loaded
VOLATILE = {"x_IngestedAt"}  # when a row was loaded, not what it says
COMPARED = {
    "core.focus_costs": "x_ChargeDate",
    "core.allocated_costs": "charge_date",
    "marts.cost_per_project_daily": "charge_date",
}


def _revise(monkeypatch):
    """The providers restate REVISED_DAY: AWS usage billed 7 % higher, GCP rows 10 % higher."""
    day_items, export_rows = sample_aws.day_items, sample_gcp.export_rows

    def revised_items(day, account):
        items = day_items(day, account)
        if day != REVISED_DAY:
            return items
        up = Decimal("1.07")
        return [dataclasses.replace(i, unblended=(i.unblended * up).quantize(Decimal("1e-10")),
                                    amortized=None if i.amortized is None else (i.amortized * up).quantize(Decimal("1e-10")))
                for i in items]  # fmt: skip

    def revised_rows(day):
        rows = export_rows(day)
        if day != REVISED_DAY:
            return rows
        return [{**r, "cost": round(r["cost"] * 1.1, 6)} for r in rows]

    monkeypatch.setattr(sample_aws, "day_items", revised_items)
    monkeypatch.setattr(sample_gcp, "export_rows", revised_rows)


def _rows(path, table, date_column):
    with duckdb.connect(str(path), read_only=True) as con:
        columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in VOLATILE]
        select = ", ".join(f'"{c}"' for c in columns)
        return con.execute(
            f'SELECT {select} FROM {table} WHERE "{date_column}" BETWEEN $a AND $b ORDER BY ALL',
            {"a": FIRST_DAY, "b": LAST_DAY},
        ).fetchall()


def _day_totals(path, day):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT x_SourceSystem, sum(EffectiveCost), count(*) FROM core.focus_costs WHERE x_ChargeDate = $d "
            "GROUP BY ALL ORDER BY ALL",
            {"d": day},
        ).fetchall()


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory):
    root = tmp_path_factory.mktemp("restatement")
    env = {"MLCOST_SOURCES": "sample", "MLCOST_RESTATEMENT_DAYS": "3"}
    scheduled = load_settings({**env, "MLCOST_WAREHOUSE_PATH": str(root / "scheduled.duckdb")})
    fresh = load_settings({**env, "MLCOST_WAREHOUSE_PATH": str(root / "fresh.duckdb")})
    defs = build_definitions(scheduled)
    schedule = defs.resolve_schedule_def("daily_restatement_schedule")
    instance = dg.DagsterInstance.ephemeral()
    windows, before_revision = [], None
    with pytest.MonkeyPatch.context() as monkeypatch:
        for tick in TICKS:
            if tick == REVISE_BEFORE_TICK:
                before_revision = _day_totals(scheduled.warehouse_path, REVISED_DAY)
                _revise(monkeypatch)
            when = datetime.combine(tick, datetime.min.time(), UTC).replace(hour=6)
            with dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
                [request] = schedule.evaluate_tick(context).run_requests
            windows.append(request.partition_key_range)
            result = defs.resolve_job_def(schedule.job_name).execute_in_process(
                instance=instance, tags=request.tags, raise_on_error=False
            )
            assert result.success, [e.message for e in result.all_events if e.is_failure]
        backfill = run_range(build_definitions(fresh), FIRST_DAY, LAST_DAY, instance)
        assert backfill.success, [e.message for e in backfill.all_events if e.is_failure]
    return scheduled.warehouse_path, fresh.warehouse_path, windows, before_revision


def test_each_tick_restates_the_last_three_days(warehouses):
    _, _, windows, _ = warehouses
    assert [(w.start, w.end) for w in windows] == [
        ((t - timedelta(days=3)).isoformat(), (t - timedelta(days=1)).isoformat()) for t in TICKS
    ]


def test_the_revised_day_was_loaded_then_restated(warehouses):
    scheduled, _, _, before = warehouses
    after = _day_totals(scheduled, REVISED_DAY)
    changed = {s for (s, a, n), (_, b, m) in zip(before, after, strict=True) if a != b}
    assert changed == {"aws_cost_explorer", "gcp_billing_export"}
    assert [n for *_, n in before] == [n for *_, n in after]  # replaced, not added to


@pytest.mark.parametrize("table", sorted(COMPARED))
def test_scheduled_days_equal_a_fresh_backfill_row_for_row(warehouses, table):
    scheduled, fresh, _, _ = warehouses
    got, want = _rows(scheduled, table, COMPARED[table]), _rows(fresh, table, COMPARED[table])
    assert want and len(got) == len(want)
    assert got == want
