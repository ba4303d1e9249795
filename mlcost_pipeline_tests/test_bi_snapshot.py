"""The BI snapshot: published after each successful run, read by BI tools while the next run publishes.

A reader keeps a connection open on the snapshot while `mlcost materialize`, in another process, runs and
publishes a new one: both succeed, the reader still sees the old, consistent data, a new connection the new data.
"""

import os
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlcost_pipeline.definitions import build_definitions
from mlcost_pipeline.defs.bi_snapshot import AFTER_RUN_TAG, bi_snapshot_sensor
from mlcost_pipeline.run_range import run_range
from mlcost_pipeline.settings import load_settings
from mlcost_pipeline.warehouse.snapshot import VIEWS, SnapshotError, bi_snapshot_path, publish_bi_snapshot

REPO = Path(__file__).resolve().parents[1]
D1, D2 = date(2026, 11, 10), date(2026, 11, 11)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A warehouse with D1, and its snapshot published by the Dagster job the sensor launches."""
    root = tmp_path_factory.mktemp("bi")
    settings = load_settings({"MLCOST_WAREHOUSE_PATH": str(root / "mlcost.duckdb"), "MLCOST_SOURCES": "sample"})
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    run = run_range(defs, D1, D1, instance)
    assert run.success
    publish = defs.resolve_job_def("publish_bi_snapshot").execute_in_process(
        instance=instance, tags={AFTER_RUN_TAG: run.run_id}
    )
    assert publish.success
    return settings, instance, run, publish


def _snapshot_state(con):
    """Days, per-day totals and the consistency a dashboard relies on, read through the bi views."""
    charged = con.execute(
        "SELECT x_ChargeDate, BillingCurrency, sum(EffectiveCost) FROM bi.focus_costs GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    allocated = con.execute(
        "SELECT charge_date, billing_currency, sum(amount) FROM bi.allocated_costs GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    mart = con.execute(
        "SELECT charge_date, billing_currency, sum(amount) FROM bi.cost_per_project_daily GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    info = con.execute("SELECT after_run_id FROM bi.snapshot_info").fetchall()
    return {"charged": charged, "allocated": allocated, "mart": mart, "info": info}


def test_snapshot_holds_core_and_marts_with_the_documented_views(published):
    settings, _, run, publish = published
    path = bi_snapshot_path(settings.warehouse_path)
    assert path == settings.warehouse_path.with_name("mlcost_bi.duckdb")
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {f"{s}.{t}" for s, t in con.execute(  # core.focus_costs is a view over the lake's files
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name <> 'bi' UNION ALL "
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal AND schema_name <> 'bi'").fetchall()}  # fmt: skip
        views = {f"bi.{v}" for (v,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        state = _snapshot_state(con)
        for name, view in VIEWS.items():
            assert [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()] == list(view.columns), name
        recorded = dict(con.execute("SELECT table_name, row_count FROM bi.snapshot_tables").fetchall())
    assert {"core.focus_costs", "core.allocated_costs", "marts.cost_per_project_daily"} <= tables
    assert not {t for t in tables if t.startswith("raw.")}
    assert set(VIEWS) <= views
    assert state["charged"] == state["allocated"] == state["mart"] and {d for d, *_ in state["charged"]} == {D1}
    assert state["info"] == [(run.run_id,)]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        for table, rows in recorded.items():
            assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == rows, table
    output = publish.output_for_node("publish_bi_snapshot_op")
    assert output == str(path)


def test_reader_keeps_its_snapshot_while_another_process_runs_and_publishes(published):
    settings, *_ = published
    path = bi_snapshot_path(settings.warehouse_path)
    reader = duckdb.connect(str(path), read_only=True)
    try:
        before = _snapshot_state(reader)
        env = {
            **os.environ,
            "MLCOST_WAREHOUSE_PATH": str(settings.warehouse_path),
            "MLCOST_SOURCES": "sample",
            "DAGSTER_HOME": str(settings.warehouse_dir / "dagster_home"),
        }
        done = subprocess.run(
            [str(Path(sys.executable).parent / "mlcost"), "materialize", "--start", str(D2), "--end", str(D2)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert re.search(rf"published {re.escape(str(path))} for BI: \d+ tables", done.stdout), done.stdout
        assert _snapshot_state(reader) == before  # the old file, whole: no D2, same totals, same run
    finally:
        reader.close()
    with duckdb.connect(str(path), read_only=True) as con:
        after = _snapshot_state(con)
    assert {d for d, *_ in after["charged"]} == {D1, D2}
    assert after["charged"] == after["allocated"] == after["mart"]
    assert after["info"] != before["info"]
    assert not list(path.parent.glob(f".{path.name}.*"))  # no staging file left behind


def test_a_failed_publish_leaves_the_previous_snapshot(published, tmp_path, monkeypatch):
    settings, *_ = published
    target = tmp_path / "snapshot.duckdb"
    publish_bi_snapshot(settings.warehouse_path, target)
    before = target.read_bytes()
    view = VIEWS["bi.cost_per_project_daily"]
    broken = {**VIEWS, "bi.cost_per_project_daily": view.__class__(view.source, (*view.columns, "gone"), "x")}
    monkeypatch.setattr("mlcost_pipeline.warehouse.snapshot.VIEWS", broken)
    with pytest.raises(SnapshotError, match=r"bi.cost_per_project_daily: marts.cost_per_project_daily has no column"):
        publish_bi_snapshot(settings.warehouse_path, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.duckdb"]


def test_sensor_requests_a_publish_after_a_successful_run_but_not_after_its_own(published):
    _, instance, run, publish = published
    for source, expected in ((run, dg.RunRequest), (publish, dg.SkipReason)):
        dagster_run = instance.get_run_by_id(source.run_id)
        [success] = instance.all_logs(source.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
        context = dg.build_run_status_sensor_context(
            sensor_name="bi_snapshot_sensor", dagster_instance=instance, dagster_run=dagster_run,
            dagster_event=success.dagster_event,
        )  # fmt: skip
        answer = bi_snapshot_sensor(context)
        assert isinstance(answer, expected), answer
        if expected is dg.RunRequest:
            assert answer.tags[AFTER_RUN_TAG] == run.run_id and answer.run_key == f"bi-snapshot-after-{run.run_id}"


def test_run_reports_billed_totals_by_provider_and_logs_structured_lines(published):
    """What an operator reads in the UI: per raw asset, rows and what the provider billed; logfmt log lines."""
    import shlex

    settings, instance, run, _ = published
    metadata = {
        m.asset_key.to_user_string(): m.metadata
        for m in (e.event_specific_data.materialization for e in run.all_events if e.is_step_materialization)
    }
    assert all("dagster/row_count" in md for md in metadata.values()), metadata.keys()
    billed = {k: md["billed_cost_by_provider"].value for k, md in metadata.items() if "billed_cost_by_provider" in md}
    assert {k: sorted(v) for k, v in billed.items()} == {
        "raw/aws_cost_explorer": ["AWS (USD)"],
        "raw/azure_cost_management": ["Microsoft (USD)"],
        "raw/focus_export_files": ["Oracle (USD)"],
        "raw/gcp_billing_export": ["Google Cloud (EUR)"],
    }
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        [(aws_billed,)] = con.execute(
            "SELECT sum(BilledCost) FROM core.focus_costs WHERE ProviderName = 'AWS' AND x_ChargeDate = $d", {"d": D1}
        ).fetchall()
        [(gcp_cost,)] = con.execute(
            "SELECT sum((payload->>'cost')::DECIMAL(38, 12)) FROM raw.gcp_billing_export WHERE x_ChargeDate = $d",
            {"d": D1},
        ).fetchall()
    assert Decimal(billed["raw/aws_cost_explorer"]["AWS (USD)"]) == aws_billed
    assert Decimal(billed["raw/gcp_billing_export"]["Google Cloud (EUR)"]) == gcp_cost

    lines = [e.user_message for e in instance.all_logs(run.run_id) if e.user_message.startswith("event=")]
    landed = {f["table"]: f for f in (dict(p.split("=", 1) for p in shlex.split(line)) for line in lines)
              if f["event"] == "raw_landed"}  # fmt: skip
    assert set(landed) == {"raw.aws_cost_explorer", "raw.gcp_billing_export", "raw.azure_cost_management",
                           "raw.mlflow_runs", "raw.focus_export_files"}  # fmt: skip
    for table, fields in landed.items():
        assert (fields["start"], fields["end"]) == (str(D1), "2026-11-11")
        assert int(fields["rows"]) == metadata[table.replace(".", "/")]["dagster/row_count"].value


def test_docs_describe_every_view_and_its_columns():
    text = (REPO / "docs" / "bi.md").read_text()
    for name, view in VIEWS.items():
        heading = f"### `{name}`"
        assert heading in text, f"docs/bi.md has no section {heading}"
        section = text.split(heading, 1)[1].split("\n### ", 1)[0]
        missing = [c for c in view.columns if f"| `{c}` |" not in section]
        assert not missing, f"docs/bi.md, {name}: columns not described: {missing}"
