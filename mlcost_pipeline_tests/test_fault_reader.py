"""A BI tool holding the warehouse itself open (read-only, in another process) while a run wants to write.

DuckDB gives a file to one writer or to readers. The run must fail clearly naming the lock, write nothing, and a
rerun after the reader lets go completes. (BI tools should read the snapshot instead, which a run never blocks on:
test_bi_snapshot.py::test_reader_keeps_its_snapshot_while_another_process_runs_and_publishes.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from mlcost_pipeline_tests.connector_helpers import (
    day_snapshot,
    failure_message,
    live_settings,
    materialize_day,
)

BAD = Path(__file__).resolve().parent / "fixtures" / "bad"
DAY = date(2026, 10, 1)
HOLD = "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); print('open', flush=True); sys.stdin.read()"


def test_a_reader_holding_the_warehouse_fails_the_run_cleanly_and_a_rerun_completes(tmp_path):
    (tmp_path / "exports").mkdir()
    shutil.copy(BAD / "focus_good.csv", tmp_path / "exports" / "export.csv")
    settings = live_settings(tmp_path, "focus", MLCOST_FOCUS_PATH=str(tmp_path / "exports"))
    assert materialize_day(settings, "raw.focus_export_files", DAY).success
    before = day_snapshot(settings, "raw.focus_export_files", DAY)

    reader = subprocess.Popen([sys.executable, "-c", HOLD, str(settings.warehouse_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert reader.stdout.readline().strip() == "open"
        result = materialize_day(settings, "raw.focus_export_files", DAY)
        assert not result.success
        message = failure_message(result)
        assert "lock" in message.lower() and str(settings.warehouse_path) in message, message
        assert day_snapshot(settings, "raw.focus_export_files", DAY) == before
    finally:
        reader.communicate("", timeout=30)

    result = materialize_day(settings, "raw.focus_export_files", DAY)
    assert result.success, failure_message(result)
    assert day_snapshot(settings, "raw.focus_export_files", DAY) == before
