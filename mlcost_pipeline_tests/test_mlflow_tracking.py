"""The MLflow source end to end against a real local MLflow store: sample writer, reader, normalizers.

One empty store is migrated per module (the schema migration costs seconds) and copied for every store the
tests need; the sample store holds 2026-10-10..17, which has a deleted run (10-11) and two promotions of
churn-lgbm (10-16, 10-17), so the production alias must have moved once.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import polars as pl
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import ViewType  # noqa: E402

from mlcost_pipeline.normalize.focus_schema import NormalizationError  # noqa: E402
from mlcost_pipeline.normalize.mlflow_records import (  # noqa: E402
    ML_MODEL_VERSIONS_COLUMNS,
    ML_RUNS_COLUMNS,
    ml_model_versions_create_table_sql,
    ml_runs_create_table_sql,
    normalize_model_versions,
    normalize_runs,
)
from mlcost_pipeline.sources.mlflow_tracking import fetch_model_versions, fetch_runs  # noqa: E402
from mlcost_pipeline.sources.sample import org  # noqa: E402
from mlcost_pipeline.sources.sample.mlflow_store import (  # noqa: E402
    DEDICATED,
    PROMOTED_AT_TAG,
    SAMPLE_DAY_TAG,
    WORKLOADS,
    ensure_sample_runs,
    plan_day,
)

DAYS = [date(2026, 10, 10) + timedelta(days=i) for i in range(8)]
INGESTED = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def _uri(path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("mlflow-empty") / "mlflow.db"
    MlflowClient(tracking_uri=_uri(path)).search_experiments()  # creates and migrates the schema
    return path


@pytest.fixture(scope="module")
def new_store(empty_store, tmp_path_factory):
    def make() -> str:
        path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
        shutil.copyfile(empty_store, path)
        return _uri(path)

    return make


@pytest.fixture(scope="module")
def sample(new_store):
    uri = new_store()
    created = ensure_sample_runs(uri, DAYS)
    return uri, created, MlflowClient(tracking_uri=uri)


def _sample_runs(client: MlflowClient, view=ViewType.ALL):
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(experiments, f"tags.`{SAMPLE_DAY_TAG}` LIKE '%'", run_view_type=view, max_results=1000)


def _planned(days):
    return [run for day in days for run in plan_day(day)]


def test_ensure_sample_runs_creates_the_planned_runs_once(sample):
    uri, created, client = sample
    planned = _planned(DAYS)
    assert created == len(planned) and 2 * len(DAYS) <= created <= 5 * len(DAYS)
    before = sorted(r.info.run_name for r in _sample_runs(client))
    versions_before = len(client.search_model_versions())

    assert ensure_sample_runs(uri, DAYS) == 0
    assert ensure_sample_runs(uri, DAYS[2:5]) == 0
    assert sorted(r.info.run_name for r in _sample_runs(client)) == before == sorted(p.run_name for p in planned)
    assert len(client.search_model_versions()) == versions_before == sum(p.register_at_ms is not None for p in planned)


def test_ensure_sample_runs_tags_every_run_for_cost_allocation(sample):
    _, _, client = sample
    runs = _sample_runs(client)
    for run in runs:
        tags, info = run.data.tags, run.info
        assert tags["instance_type"] in org.GPU_INSTANCE_TYPES
        assert int(tags["gpu_count"]) >= 1
        assert tags["cluster"] in (org.SHARED_GPU_CLUSTER, DEDICATED)
        assert ("resource_id" in tags) == (tags["cluster"] == DEDICATED)
        assert tags["workload"] in WORKLOADS and tags["estimator"]
        assert info.status in ("FINISHED", "FAILED")
        assert 0.5 <= (info.end_time - info.start_time) / 3_600_000 <= 10
        assert datetime.fromtimestamp(info.start_time / 1000, UTC).date().isoformat() == tags[SAMPLE_DAY_TAG]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert all(0.6 <= r.data.metrics["accuracy"] <= 0.99 for r in finished)
    assert any("customer_retention_lift" in r.data.metrics for r in finished)
    assert any(r.data.tags.get("project") == "churn_pred" for r in runs)  # a spelling the rules must fold


def test_fetch_runs_returns_runs_started_in_window_without_deleted(sample):
    _, _, client = sample
    window = DAYS[1:4]  # 10-11 holds the deleted run
    expected = {p.run_name for p in _planned(window) if not p.deleted}
    assert len(expected) < len(_planned(window))

    rows = fetch_runs(client, window[0], window[-1] + timedelta(days=1))

    assert {payload["run_name"] for _, payload in rows} == expected
    assert all(day in window and payload["tags"][SAMPLE_DAY_TAG] == day.isoformat() for day, payload in rows)
    assert all(payload["lifecycle_stage"] == "active" for _, payload in rows)
    json.dumps([payload for _, payload in rows], allow_nan=False)  # JSON-safe


def test_fetch_runs_window_is_half_open_on_utc_midnight(new_store):
    client = MlflowClient(tracking_uri=new_store())
    exp = client.create_experiment("/boundary")
    midnight = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000)
    for name, start in [("before", midnight - 1), ("first", midnight), ("last", midnight + 86_399_999),
                        ("next-day", midnight + 86_400_000)]:  # fmt: skip
        client.create_run(exp, start_time=start, run_name=name)

    rows = fetch_runs(client, date(2027, 1, 1), date(2027, 1, 2))

    assert [(day, payload["run_name"]) for day, payload in rows] == [
        (date(2027, 1, 1), "first"), (date(2027, 1, 1), "last"),
    ]  # fmt: skip
    assert rows[0][1]["end_time_ms"] is None and rows[0][1]["status"] == "RUNNING"


class _CountingClient:
    def __init__(self, client):
        self._client, self.calls = client, {}

    def __getattr__(self, name):
        method = getattr(self._client, name)

        def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args, **kwargs)

        return counted


def test_fetch_runs_follows_page_tokens(sample):
    _, _, client = sample
    counting = _CountingClient(client)

    paged = fetch_runs(counting, DAYS[0], DAYS[-1] + timedelta(days=1), max_results=2)

    whole = fetch_runs(client, DAYS[0], DAYS[-1] + timedelta(days=1))
    assert [p["run_id"] for _, p in paged] == [p["run_id"] for _, p in whole]
    assert len(whole) == sum(not p.deleted for p in _planned(DAYS))
    assert counting.calls["search_runs"] >= len(whole) // 2
    assert counting.calls["search_experiments"] >= 2


def test_normalize_runs_gpu_hours_is_exact_hours_times_gpus(new_store):
    client = MlflowClient(tracking_uri=new_store())
    exp = client.create_experiment("/acme/fraud-detection/planted")
    start = int(datetime(2026, 10, 3, 23, 0, tzinfo=UTC).timestamp() * 1000)
    run = client.create_run(exp, start_time=start, run_name="planted",
                            tags={"project": "Fraud Detection", "gpu_count": "8", "instance_type": "p4d.24xlarge"})  # fmt: skip
    client.set_terminated(run.info.run_id, "FINISHED", end_time=start + 5_400_001)  # 1.5 h + 1 ms, past midnight

    [(day, payload)] = fetch_runs(client, date(2026, 10, 3), date(2026, 10, 4))
    df = normalize_runs([payload], INGESTED)

    row = df.row(0, named=True)
    assert day == date(2026, 10, 3) and row["x_RunDate"] == date(2026, 10, 3)
    assert row["duration_hours"] == Decimal("1.500000277778")  # 5400001/3600000 = 1.50000027777(7)...
    assert row["gpu_hours"] == Decimal("12.000002222222")  # 8 x 5400001/3600000 = 12.00000222222(2)...
    assert row["gpu_count"] == 8 and row["project_tag"] == "Fraud Detection"
    assert row["start_time"] == datetime(2026, 10, 3, 23, 0) and row["end_time"] == datetime(2026, 10, 4, 0, 30, 0, 1000)
    assert row["x_IngestedAt"] == datetime(2026, 11, 1, 6, 0)


def _payload(**overrides):
    base = {"run_id": "r1", "experiment_id": "1", "experiment_name": "/e", "run_name": "n", "status": "FINISHED",
            "start_time_ms": 0, "end_time_ms": 3_600_000, "lifecycle_stage": "active",
            "tags": {"gpu_count": "2", "mlflow.source.name": "train.py", "mlflow.user": "ana"}, "params": {},
            "metrics": {"accuracy": 0.9, "loss": "NaN"}}  # fmt: skip
    return base | overrides


def test_normalize_runs_rejects_a_gpu_count_that_is_not_a_number():
    with pytest.raises(NormalizationError, match=r"run_id=r7.*gpu_count='eight'"):
        normalize_runs([_payload(), _payload(run_id="r7", tags={"gpu_count": "eight"})], INGESTED)


def test_normalize_runs_running_run_has_no_duration_and_keeps_useful_tags():
    df = normalize_runs([_payload(status="RUNNING", end_time_ms=None)], INGESTED)
    row = df.row(0, named=True)
    assert row["end_time"] is None and row["duration_hours"] is None and row["gpu_hours"] is None
    assert json.loads(row["tags"]) == {"gpu_count": "2", "mlflow.user": "ana"}
    assert json.loads(row["metrics"]) == {"accuracy": 0.9, "loss": "NaN"}
    assert normalize_runs([], INGESTED).columns == [c for c, _ in ML_RUNS_COLUMNS]


def test_model_versions_with_the_production_alias_are_in_production(sample):
    _, _, client = sample
    payloads = fetch_model_versions(client, max_results=2)
    df = normalize_model_versions(payloads, INGESTED)

    aliases = {m.name: str(m.aliases["production"]) for m in client.search_registered_models() if m.aliases}
    in_production = df.filter(pl.col("is_production"))
    assert {(r["model_name"], str(r["version"])) for r in in_production.iter_rows(named=True)} == set(aliases.items())
    assert "churn-lgbm" in aliases  # promoted twice: the alias sits on the newer promotion
    churn = df.filter(pl.col("model_name") == "churn-lgbm", pl.col("production_at").is_not_null()).sort("production_at")
    assert churn.height == 2 and churn["is_production"].to_list() == [False, True]
    promoted = {(p["name"], int(p["version"])): p["tags"][PROMOTED_AT_TAG] for p in payloads if PROMOTED_AT_TAG in p["tags"]}
    for row in df.filter(pl.col("production_at").is_not_null()).iter_rows(named=True):
        assert row["production_at"].isoformat() + "+00:00" == promoted[(row["model_name"], row["version"])]
    assert df.height == len(payloads) == sum(p.register_at_ms is not None for p in _planned(DAYS))


def test_normalize_model_versions_reads_stage_and_champion_alias():
    def version(**kw):
        return {"name": "m", "version": "3", "run_id": "r", "source": "runs:/r/model", "status": "READY",
                "current_stage": "None", "aliases": [], "tags": {}, "creation_timestamp_ms": 1_000,
                "last_updated_timestamp_ms": 7_200_000} | kw  # fmt: skip

    df = normalize_model_versions(
        [version(current_stage="Production"), version(aliases=["champion", "b"]), version()], INGESTED
    )
    assert df["is_production"].to_list() == [True, True, False]
    assert df["production_at"].to_list() == [datetime(1970, 1, 1, 2), datetime(1970, 1, 1, 2), None]
    assert df["aliases"].to_list() == ["[]", '["b", "champion"]', "[]"]
    with pytest.raises(NormalizationError, match=r"m v3.*acme.promoted_at='last tuesday'"):
        normalize_model_versions([version(tags={"acme.promoted_at": "last tuesday"})], INGESTED)


def test_normalized_frames_load_into_their_duckdb_tables(sample):
    _, _, client = sample
    runs = normalize_runs([p for _, p in fetch_runs(client, DAYS[0], DAYS[-1] + timedelta(days=1))], INGESTED)
    versions = normalize_model_versions(fetch_model_versions(client), INGESTED)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA core")
    con.execute(ml_runs_create_table_sql("core.ml_runs"))
    con.execute(ml_model_versions_create_table_sql("core.ml_model_versions"))
    con.register("runs_df", runs.to_arrow())
    con.register("versions_df", versions.to_arrow())
    con.execute("INSERT INTO core.ml_runs BY NAME SELECT * FROM runs_df")
    con.execute("INSERT INTO core.ml_model_versions BY NAME SELECT * FROM versions_df")

    [(n, gpu_hours, accuracies)] = con.sql(
        "SELECT count(*), sum(gpu_hours), count(metrics->>'$.accuracy') FROM core.ml_runs"
    ).fetchall()
    assert n == runs.height and gpu_hours == runs["gpu_hours"].sum()
    assert accuracies == runs.filter(pl.col("status") == "FINISHED").height
    assert [r[0] for r in con.sql("DESCRIBE core.ml_model_versions").fetchall()] == [
        c for c, _ in ML_MODEL_VERSIONS_COLUMNS
    ]
    assert con.sql("SELECT count(*) FROM core.ml_model_versions WHERE is_production").fetchall()[0][0] >= 1


def test_sample_content_is_the_same_in_a_fresh_store(sample, new_store):
    _, _, client = sample
    days = DAYS[5:7]
    other = MlflowClient(tracking_uri=new_store())
    ensure_sample_runs(other.tracking_uri, days)

    def content(c):
        rows = fetch_runs(c, days[0], days[-1] + timedelta(days=1))
        return {p["run_name"]: (p["experiment_name"], p["status"], p["start_time_ms"], p["end_time_ms"],
                                p["tags"], p["params"], p["metrics"]) for _, p in rows}  # fmt: skip

    mine, theirs = content(client), content(other)
    assert mine == theirs and len(mine) >= 4
