"""kill -9 while the sample MLflow store is first created: no half-migrated `mlflow.db`, and the next run succeeds.

Before, a kill during MLflow's schema migrations left `warehouse/mlflow.db` half-migrated and every later run failed
(`table _alembic_tmp_experiments already exists`, `duplicate column name`) until someone deleted it by hand. The
store is now built under a temporary name; the test kills a real `mlcost materialize` the moment that file appears,
checks that what it left is indeed half-built and not in place, then runs again. A store an earlier version left
half-migrated is rebuilt, and a store that holds runs is never thrown away.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import date
from pathlib import Path

import duckdb
import pytest

from mlcost_pipeline.sources.sample.mlflow_store import ensure_sample_runs, plan_day

DAY = date(2026, 10, 1)
MLCOST = [sys.executable, "-c", "import sys; from mlcost_pipeline.cli import main; sys.exit(main())"]
REPO = Path(__file__).resolve().parents[1]


def _head() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def _revision(db: Path, scratch: Path) -> str | None:
    """The schema revision a (possibly killed) sqlite file holds, read from a copy with its journal."""
    scratch.mkdir(exist_ok=True)
    for part in db.parent.glob(db.name + "*"):
        shutil.copy(part, scratch / part.name.replace(db.name, "copy.db"))
    with closing(sqlite3.connect(scratch / "copy.db")) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
        if "alembic_version" not in tables:
            return None
        return next(iter(con.execute("SELECT version_num FROM alembic_version").fetchall()), [None])[0]


def _planned_run_names(day: date) -> list[str]:
    return sorted(r.run_name for r in plan_day(day) if not r.deleted)


def _wait_for(patterns: tuple[str, ...], folder: Path, proc: subprocess.Popen, timeout: float = 240) -> Path:
    """The first file matching one of `patterns` to appear in `folder` while `proc` runs."""
    deadline = time.monotonic() + timeout
    while True:
        found = [p for pattern in patterns for p in folder.glob(pattern)]
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, f"{patterns} never appeared in {folder}"
        time.sleep(0.002)


def test_kill_while_the_sample_store_is_created_then_a_normal_run_succeeds(tmp_path):
    root = tmp_path / "warehouse"
    env = {**os.environ, "MLCOST_WAREHOUSE_PATH": str(root / "mlcost.duckdb"), "MLCOST_SOURCES": "sample",
           "DAGSTER_HOME": str(tmp_path / "dagster_home")}  # fmt: skip
    args = [*MLCOST, "materialize", "--start", str(DAY), "--end", str(DAY)]
    victim = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # The store file appears when MLflow starts creating it (under whichever name): kill -9 right then.
    created = _wait_for(("mlflow.db", ".mlflow.db.*.tmp"), root, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)

    assert _revision(created, tmp_path / "scratch") != _head()  # the kill did land mid-creation
    assert not (root / "mlflow.db").exists()  # and nothing half-built is in place

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert sorted(p.name for p in root.glob(".mlflow.db.*")) == []  # the killed build's leftovers are gone
    assert _revision(root / "mlflow.db", tmp_path / "scratch2") == _head()
    with duckdb.connect(str(root / "mlcost.duckdb"), read_only=True) as con:
        names = sorted(r[0] for r in con.execute("SELECT run_name FROM core.ml_runs").fetchall())
    assert names == _planned_run_names(DAY)
    assert "not applicable" not in rerun.stdout  # MLflow is a source here: its checks ran


def _old_style_store(db: Path, delay: float) -> subprocess.Popen:
    """What earlier versions did: let MLflow create and migrate the store in place."""
    code = "import sys; from mlflow import MlflowClient; MlflowClient(tracking_uri=sys.argv[1]).search_experiments()"
    proc = subprocess.Popen([sys.executable, "-c", code, f"sqlite:///{db}"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    _wait_for((db.name,), db.parent, proc, timeout=120)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return proc


def test_a_store_left_half_migrated_by_an_earlier_version_is_moved_aside_and_rebuilt(tmp_path):
    db = tmp_path / "mlflow.db"
    for attempt, delay in enumerate((0.4, 0.2, 0.1, 0.05, 0.02)):
        db.unlink(missing_ok=True)
        _old_style_store(db, delay)
        if _revision(db, tmp_path / f"scratch{attempt}") != _head():
            break
    else:
        pytest.fail("no kill landed during MLflow's migrations")

    created = ensure_sample_runs(f"sqlite:///{db}", [DAY])

    assert created == len(plan_day(DAY))
    assert len(list(tmp_path.glob("mlflow.db.incomplete-*"))) == 1  # kept, never deleted
    with closing(sqlite3.connect(db)) as con:
        names = sorted(
            r[0] for r in con.execute("SELECT name FROM runs WHERE lifecycle_stage = 'active'").fetchall()
        )
    assert names == _planned_run_names(DAY)


def test_a_store_holding_runs_is_never_thrown_away(tmp_path):
    db = tmp_path / "mlflow.db"
    ensure_sample_runs(f"sqlite:///{db}", [DAY])
    with closing(sqlite3.connect(db)) as con:
        con.execute("UPDATE alembic_version SET version_num = 'older0revision'")
        con.commit()
        before = con.execute("SELECT count(*) FROM runs").fetchall()
    # A new process (this one caches the store it opened): MLflow's own message says how to upgrade the store.
    code = ("import sys, datetime; from mlcost_pipeline.sources.sample.mlflow_store import ensure_sample_runs; "
            "ensure_sample_runs(sys.argv[1], [datetime.date(2026, 10, 1)])")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, f"sqlite:///{db}"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode != 0 and "out-of-date database schema" in done.stderr, done.stderr[-2000:]
    assert list(tmp_path.glob("mlflow.db.incomplete-*")) == []
    with closing(sqlite3.connect(db)) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchall() == before


def test_a_run_a_kill_left_unfinished_is_finished_by_the_next_call(tmp_path):
    """A kill between MLflow's create_run and set_terminated leaves a RUNNING run without params or metrics."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    other_day = date(2026, 10, 2)
    ensure_sample_runs(uri, [other_day])  # the store and its experiments, as the killed process had them
    client = MlflowClient(tracking_uri=uri)
    planned = plan_day(DAY)[0]
    experiment = client.get_experiment_by_name(planned.experiment).experiment_id
    half = client.create_run(
        experiment, start_time=planned.start_ms, tags=planned.tags, run_name=planned.run_name
    )

    created = ensure_sample_runs(uri, [DAY])

    assert created == len(plan_day(DAY)) - 1  # the half-made run is completed, not made twice
    run = client.get_run(half.info.run_id)
    assert (run.info.status, run.info.end_time) == (planned.status, planned.end_ms)
    assert run.data.params == planned.params
    latest = {k: v for k, v, _, _ in sorted(planned.metrics, key=lambda m: (m[2], m[3]))}
    assert run.data.metrics == latest
