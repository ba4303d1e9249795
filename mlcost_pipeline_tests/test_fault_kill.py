"""kill -9 of `mlcost materialize` in the middle of a partition write: nothing partial is visible, a rerun is clean.

The subprocess runs the real CLI on the sample sources. MLCOST_FAULT_PAUSE_IN_WRITE (warehouse/partition_writes)
holds the core.focus_costs write open after its DELETE and INSERT, before COMMIT, and touches a file; the test
then sends SIGKILL. A clean run of the same days in another warehouse (started at the same time) is the reference.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

START, END = "2026-10-01", "2026-10-01"
TABLES = ["raw.aws_cost_explorer", "raw.gcp_billing_export", "raw.azure_cost_management", "core.focus_costs",
          "core.allocated_costs", "marts.cost_per_project_daily"]  # fmt: skip
MLCOST = [sys.executable, "-c", "import sys; from mlcost_pipeline.cli import main; sys.exit(main())"]


def _run(root: Path, **extra: str) -> subprocess.Popen:
    env = {**os.environ, "MLCOST_WAREHOUSE_PATH": str(root / "mlcost.duckdb"), "MLCOST_SOURCES": "sample",
           "DAGSTER_HOME": str(root / "dagster_home"), **extra}  # fmt: skip
    env.pop("MLCOST_FAULT_PAUSE_IN_WRITE", None) if not extra else None
    return subprocess.Popen([*MLCOST, "materialize", "--start", START, "--end", END], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _totals(root: Path) -> dict[str, tuple]:
    """Row count and exact total cost of each table, the way a user would check a rerun."""
    out = {}
    with duckdb.connect(str(root / "mlcost.duckdb"), read_only=True) as con:
        known = {f"{s}.{t}" for s, t in con.execute(  # core.focus_costs is a view over the lake's files
            "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall()}  # fmt: skip
        for table in TABLES:
            if table not in known:  # built by a later step the kill never reached
                out[table] = None
                continue
            cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            money = next((c for c in ("EffectiveCost", "amount", "BilledCost", "cost") if c in cols), None)
            money_sql = f"sum({money})" if money else "NULL"
            out[table] = tuple(con.execute(f"SELECT count(*), {money_sql} FROM {table}").fetchall()[0])
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    clean_root, killed_root = tmp_path_factory.mktemp("clean"), tmp_path_factory.mktemp("killed")
    signal_file = killed_root / "in-write"
    clean = _run(clean_root)
    victim = _run(killed_root, MLCOST_FAULT_PAUSE_IN_WRITE=f"core.focus_costs:{signal_file}")
    deadline = time.monotonic() + 120
    while not signal_file.exists():
        assert victim.poll() is None, victim.communicate()[0]
        assert time.monotonic() < deadline, "the run never reached the core.focus_costs write"
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    after_kill = _totals(killed_root)
    rerun = _run(killed_root)
    out, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, out
    clean_out, _ = clean.communicate(timeout=180)
    assert clean.returncode == 0, clean_out
    return after_kill, _totals(killed_root), _totals(clean_root)


def test_killed_write_leaves_no_partial_partition(runs):
    after_kill, _, clean = runs
    assert after_kill["raw.gcp_billing_export"] == clean["raw.gcp_billing_export"]  # committed before the kill
    assert after_kill["core.focus_costs"][0] == 0  # the uncommitted delete+insert is gone, not half there


def test_rerun_after_kill_gives_exactly_the_clean_totals(runs):
    _, rerun, clean = runs
    assert rerun == clean
    assert clean["core.focus_costs"][0] > 0
