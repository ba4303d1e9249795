"""MLflow connector over HTTP: a real `mlflow server` on 127.0.0.1 (sqlite backend in a temporary folder).

test_connectors_mlflow.py reads a sqlite store directly; here the same connector talks REST to a tracking
server, as it does in production (MLFLOW_TRACKING_URI=http://...): paging tokens, entity serialization and the
registry's aliases go over the wire. Runs and model versions are logged with MlflowClient through the server,
and the answer is compared with the server's own backing store read directly.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from mlflow import MlflowClient

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline.sources.mlflow_tracking import fetch_model_versions, fetch_runs
from mlcost_pipeline_tests.connector_helpers import failure_message, live_settings, materialize_day

D0, D1, D2 = date(2026, 10, 4), date(2026, 10, 5), date(2026, 10, 6)
STARTUP_SECONDS = 150  # one uvicorn worker on a busy 2-core machine; usually 10-25 s


def _ms(day: date, hour: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _restore_signals() -> None:  # a child of a non-interactive shell may inherit SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` with one worker and no job runner; skipped (with its log) only if it cannot start here."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--default-artifact-root", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]  # fmt: skip
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                               preexec_fn=_restore_signals, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (root / "server.log").read_text(errors="replace")[-1500:]
                pytest.skip(f"mlflow server did not start on 127.0.0.1:{port} "
                            f"(exit code {process.poll()}): {tail}")  # fmt: skip
            time.sleep(0.2)
        yield url, root / "mlflow.db"
    finally:
        process.terminate()  # uvicorn's parent stops its worker on SIGTERM
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the session this fixture started, nothing else
            process.wait(10)
        log.close()


@pytest.fixture(scope="module")
def logged(server):
    """Runs and registered model versions logged through the server's REST API."""
    url, _ = server
    client = MlflowClient(tracking_uri=url)
    training, serving = client.create_experiment("churn-training"), client.create_experiment("churn-serving")
    gone = client.create_experiment("abandoned")
    runs = {}
    plan = [("train-a", training, (D1, 1), (D1, 4), {"gpu_count": "8"}), ("train-b", training, (D1, 6), (D1, 7), {}),
            ("train-c", training, (D1, 9), None, {}), ("serve", serving, (D1, 10), (D1, 23), {"gpu_count": "1"}),
            ("overnight", training, (D0, 22), (D1, 2), {}), ("deleted", training, (D1, 11), (D1, 12), {}),
            ("in-abandoned", gone, (D1, 3), (D1, 5), {}), ("next-day", serving, (D2, 1), (D2, 2), {})]  # fmt: skip
    for name, experiment, start, end, extra in plan:
        run = client.create_run(experiment, start_time=_ms(*start), run_name=name,
                                tags={"project": "churn", "instance_type": "p4d.24xlarge", **extra})  # fmt: skip
        client.log_param(run.info.run_id, "learning_rate", "0.05")
        client.log_metric(run.info.run_id, "auc", 0.91, timestamp=_ms(*start), step=0)
        if end:
            client.set_terminated(run.info.run_id, status="FINISHED" if name != "train-b" else "FAILED",
                                  end_time=_ms(*end))  # fmt: skip
        runs[name] = run.info.run_id
    client.delete_run(runs["deleted"])
    client.delete_experiment(gone)
    client.create_registered_model("churn-lgbm")
    for name in ("train-a", "train-c"):
        client.create_model_version("churn-lgbm", f"runs:/{runs[name]}/model", run_id=runs[name])
    client.set_registered_model_alias("churn-lgbm", "production", "1")
    client.set_registered_model_alias("churn-lgbm", "challenger", "2")
    return client, runs


def test_runs_over_http_are_the_window_s_active_runs_with_what_was_logged(server, logged, tmp_path, caplog):
    url, _ = server
    _, runs = logged
    mlflow = build_resources(live_settings(tmp_path, "mlflow", MLFLOW_TRACKING_URI=url))["mlflow"]
    with caplog.at_level(logging.INFO):
        records = mlflow.pull(D1, D2, log=logging.getLogger("test"))
    by_name = {p["run_name"]: (day, p) for day, p in records}
    assert set(by_name) == {"train-a", "train-b", "train-c", "serve"}  # not deleted, abandoned, D0 or D2 runs
    day, train_a = by_name["train-a"]
    assert day == D1 and train_a["run_id"] == runs["train-a"] and train_a["experiment_name"] == "churn-training"
    assert train_a["tags"]["gpu_count"] == "8" and train_a["params"] == {"learning_rate": "0.05"}
    assert train_a["metrics"] == {"auc": 0.91}
    assert (train_a["start_time_ms"], train_a["end_time_ms"]) == (_ms(D1, 1), _ms(D1, 4))
    assert by_name["train-b"][1]["status"] == "FAILED" and by_name["train-c"][1]["end_time_ms"] is None
    assert f"ended in [{D1}, {D2}) but started earlier, on {D0}" in caplog.text  # the overnight run


def test_http_answers_equal_the_backing_store_page_by_page(server, logged):
    url, db = server
    over_http, direct = MlflowClient(tracking_uri=url), MlflowClient(tracking_uri=f"sqlite:///{db}")
    paged = fetch_runs(over_http, D0, D2, max_results=2)  # several REST pages and page tokens
    assert len(paged) == 5
    assert paged == fetch_runs(over_http, D0, D2) == fetch_runs(direct, D0, D2)
    assert fetch_model_versions(over_http, max_results=1) == fetch_model_versions(direct)


def test_model_versions_over_http_carry_their_runs_and_aliases(server, logged, tmp_path):
    url, _ = server
    _, runs = logged
    mlflow = build_resources(live_settings(tmp_path, "mlflow", MLFLOW_TRACKING_URI=url))["mlflow"]
    versions = {(v["name"], v["version"]): v for v in mlflow.pull_model_versions()}
    assert set(versions) == {("churn-lgbm", "1"), ("churn-lgbm", "2")}
    assert versions["churn-lgbm", "1"]["aliases"] == ["production"]
    assert versions["churn-lgbm", "2"]["aliases"] == ["challenger"]
    assert versions["churn-lgbm", "1"]["run_id"] == runs["train-a"]


def test_a_pipeline_run_against_the_server_fills_core_ml_runs(server, logged, tmp_path):
    url, _ = server
    _, runs = logged
    settings = live_settings(tmp_path, "mlflow", MLFLOW_TRACKING_URI=url)
    result = materialize_day(settings, "raw.mlflow_runs", D1)
    assert result.success, failure_message(result)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("SELECT run_name, run_id, status FROM core.ml_runs WHERE x_RunDate = $d ORDER BY ALL",
                           {"d": D1}).fetchall()  # fmt: skip
    assert rows == sorted([("serve", runs["serve"], "FINISHED"), ("train-a", runs["train-a"], "FINISHED"),
                           ("train-b", runs["train-b"], "FAILED"), ("train-c", runs["train-c"], "RUNNING")])  # fmt: skip


def test_the_fixture_started_a_real_server(server):
    url, db = server
    with urllib.request.urlopen(f"{url}/version", timeout=5) as answer:
        assert answer.read().decode().startswith("3.")
    assert Path(db).is_file()
