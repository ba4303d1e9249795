"""MLflow connector in live mode: MlflowClient against a real sqlite tracking store given as MLFLOW_TRACKING_URI.

MLflow runs carry no money, so of the three bad inputs only the malformed record applies: a run whose cost tag
cannot be read fails its partition and leaves the day as it was.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
from mlflow import MlflowClient

from mlcost_pipeline.defs.resources import build_resources
from mlcost_pipeline_tests.connector_helpers import (
    assert_bad_answer_keeps_day,
    live_settings,
    materialize_day,
)

D0, D1 = date(2026, 10, 4), date(2026, 10, 5)


def _ms(day: date, hour: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow_live")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("churn-training")
    runs = {}
    for name, start, end in (("in-window", (D1, 2), (D1, 5)), ("started-before", (D0, 20), (D1, 3)),
                             ("deleted", (D1, 6), (D1, 7))):  # fmt: skip
        run = client.create_run(exp, start_time=_ms(*start), tags={"project": "churn", "gpu_count": "4",
                                                                   "mlflow.runName": name})  # fmt: skip
        client.set_terminated(run.info.run_id, end_time=_ms(*end))
        runs[name] = run.info.run_id
    client.delete_run(runs["deleted"])
    client.create_registered_model("churn-lgbm")
    version = client.create_model_version("churn-lgbm", f"runs:/{runs['in-window']}/model", run_id=runs["in-window"])
    client.set_registered_model_alias("churn-lgbm", "production", version.version)
    return root, uri, client, exp, runs


def test_live_pull_reads_runs_started_in_the_window_and_reports_runs_ended_in_it(store, tmp_path, caplog):
    _, uri, _, _, runs = store
    mlflow = build_resources(live_settings(tmp_path, "mlflow", MLFLOW_TRACKING_URI=uri))["mlflow"]
    assert mlflow.mode == "live"
    with caplog.at_level(logging.INFO):
        records = mlflow.pull(D1, date(2026, 10, 6), log=logging.getLogger("test"))
    assert [p["run_id"] for _, p in records] == [runs["in-window"]]
    assert f"ended in [{D1}, 2026-10-06) but started earlier, on {D0}" in caplog.text
    [version] = mlflow.pull_model_versions()
    assert version["aliases"] == ["production"] and version["run_id"] == runs["in-window"]


def test_live_mode_without_a_tracking_uri_says_what_is_missing(tmp_path):
    mlflow = build_resources(live_settings(tmp_path, "mlflow"))["mlflow"]
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI"):
        mlflow.pull(D1, date(2026, 10, 6))


def test_malformed_run_fails_the_partition_and_keeps_the_previous_data(store, tmp_path):
    _, uri, client, exp, _ = store
    settings = live_settings(tmp_path, "mlflow", MLFLOW_TRACKING_URI=uri)
    assert materialize_day(settings, "raw.mlflow_runs", D1).success
    bad = client.create_run(exp, start_time=_ms(D1, 9), tags={"gpu_count": "four"})
    try:
        assert_bad_answer_keeps_day(settings, "raw.mlflow_runs", D1, "mlflow partition 2026-10-05",
                                    "tag gpu_count='four' is not an integer")
    finally:
        client.delete_run(bad.info.run_id)
