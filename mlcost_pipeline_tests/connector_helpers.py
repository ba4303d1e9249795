"""Shared by the connector tests: materialize one source's assets for a day against a real DuckDB file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from mlcost_pipeline.defs.core.focus_costs import focus_costs
from mlcost_pipeline.defs.core.ml_runs import ml_runs
from mlcost_pipeline.defs.ingest.raw_assets import focus_export_files, raw_assets
from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.settings import Settings, load_settings


def live_settings(root: Path, sources: str, **env: str) -> Settings:
    return load_settings({"MLCOST_WAREHOUSE_PATH": str(root / "mlcost.duckdb"), "MLCOST_SOURCES": sources, **env})


def materialize_day(settings: Settings, raw_table: str, day: date) -> dg.ExecuteInProcessResult:
    """The source's raw asset and the core table built from it, for one daily partition."""
    raw = [a for a in [*raw_assets, focus_export_files] if dg.AssetKey(raw_table.split(".")) in a.keys]
    core = ml_runs if raw_table == "raw.mlflow_runs" else focus_costs
    return dg.materialize(
        [*raw, core], partition_key=day.isoformat(), resources=build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
    )  # fmt: skip


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure)


def day_snapshot(settings: Settings, raw_table: str, day: date) -> tuple[list, list]:
    """Everything stored for the day: the raw records and the core rows (sorted, comparable)."""
    core, key = ("core.ml_runs", "x_RunDate") if raw_table == "raw.mlflow_runs" else ("core.focus_costs", "x_ChargeDate")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        raw_cols = "path, sha256" if raw_table == "raw.focus_export_files" else "record_no, payload"
        raw = con.execute(f"SELECT {raw_cols} FROM {raw_table} WHERE x_ChargeDate = $d ORDER BY ALL", {"d": day}).fetchall()
        rows = con.execute(f"SELECT * EXCLUDE (x_IngestedAt) FROM {core} WHERE {key} = $d ORDER BY ALL",
                           {"d": day}).fetchall()  # fmt: skip
    return raw, rows


def assert_bad_answer_keeps_day(settings: Settings, raw_table: str, day: date, *expected: str) -> str:
    """Re-materializing a good day while the source answers bad data fails naming `expected`, changing nothing."""
    before = day_snapshot(settings, raw_table, day)
    assert before[0] and before[1], "the good run left nothing to protect"
    result = materialize_day(settings, raw_table, day)
    assert not result.success
    message = failure_message(result)
    for text in expected:
        assert text in message, message
    assert day_snapshot(settings, raw_table, day) == before
    return message
