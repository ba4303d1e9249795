"""Acme ML's MLflow tracking server (sample source): a REAL MLflow store with runs and registered models.

Grain: a day of runs. Each day gets 2-5 runs spread over one experiment per model (`/acme/<project>/<model>`) and
an `/acme/<project>/exploration` experiment for the two projects without a model; every value is a function of
`org.rng(day, "mlflow")`, so a day's runs (names, tags, params, metrics, times) are the same in every store.
Run ids are MLflow's random uuids: match runs across stores by (`acme.sample_day`, run name).

Runs carry the cost tags the allocation reads (project, model, instance_type, gpu_count, cluster, resource_id,
workload, estimator). About 10% fail; one run is deleted every seventh day. Some finished training runs are
registered as model versions; some of those are promoted (alias `production` on the newest promotion, plus the
`acme.promoted_at` version tag, because MLflow does not record when an alias was set). MLflow stamps a version
with the wall-clock time of its creation, so the sample also records the sampled registration time in the
`acme.registered_at` version tag.

The store file is created under a temporary name and renamed into place once MLflow has migrated it to its
current schema, so a kill -9 during creation leaves no half-migrated `mlflow.db` (a run created but not finished
is completed by the next call). A store an earlier version left half-migrated, with no run in it, is moved aside
as `mlflow.db.incomplete-<time>` and rebuilt.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from mlcost_pipeline.sources.sample import org

SAMPLE_DAY_TAG = "acme.sample_day"
REGISTERED_AT_TAG = "acme.registered_at"
PROMOTED_AT_TAG = "acme.promoted_at"
PRODUCTION_ALIAS = "production"
EXPERIMENT_PREFIX = "/acme/"
DEDICATED = "dedicated"
WORKLOADS = ("training", "tuning", "evaluation", "batch-inference")

EXPLORATION_PROJECTS = tuple(p for p in org.PROJECTS if p not in org.MODELS.values())
ESTIMATORS = {
    "fraud-xgb": ("xgboost",),
    "churn-lgbm": ("lightgbm",),
    "recsys-two-tower": ("pytorch", "tensorflow"),
    "ranker-lambdamart": ("lightgbm", "xgboost"),
    "forecast-tft": ("pytorch",),
    "assistant-llama": ("pytorch", "transformers"),
    None: ("sklearn", "pytorch", "xgboost"),
}
# Which GPUs each project trains on; the instance type names the cloud.
PROJECT_INSTANCE_TYPES = {
    "fraud-detection": ("p4d.24xlarge", "g5.12xlarge", "g5.xlarge"),
    "churn": ("g5.xlarge", "g5.12xlarge", "Standard_NC24ads_A100_v4"),
    "recsys": ("a2-highgpu-1g", "p4d.24xlarge"),
    "search-ranking": ("a2-highgpu-1g",),
    "demand-forecast": ("a2-highgpu-1g", "g5.xlarge"),
    "llm-assistant": ("Standard_NC24ads_A100_v4", "p4d.24xlarge"),
    "vision-qa": ("Standard_NC24ads_A100_v4", "BM.GPU.A10.4"),
    "data-platform": ("g5.xlarge", "BM.GPU.A10.4"),
}
BUSINESS_METRIC_PROJECTS = ("churn", "recsys")
_log = logging.getLogger(__name__)
_GCP_PROJECT = {"recsys": "acme-recsys-prod", "search-ranking": "acme-search", "demand-forecast": "acme-forecasting"}


def _dedicated_resource_id(project: str, instance_type: str) -> str:
    h = hashlib.sha256(f"{org.SEED}:{project}:{instance_type}".encode()).hexdigest()
    if instance_type.startswith(("p4d", "g5")):
        return f"arn:aws:ec2:us-east-1:222222222222:instance/i-0{h[:16]}"
    if instance_type.startswith("a2-"):
        gcp_project = _GCP_PROJECT.get(project, "acme-shared-ml")
        return f"//compute.googleapis.com/projects/{gcp_project}/zones/us-central1-a/instances/{int(h[:15], 16)}"
    if instance_type.startswith("Standard_"):
        rg = f"rg-{project}" if f"rg-{project}" in org.AZURE_RESOURCE_GROUPS else "rg-platform"
        sub = next(iter(org.AZURE_SUBSCRIPTIONS))
        return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/vm-{project}-gpu"
    return f"ocid1.instance.oc1.iad.{h[:60]}"


# resource id -> (project, instance type): the one dedicated GPU box per pair, so cloud samples can bill it.
DEDICATED_INSTANCES = {
    _dedicated_resource_id(p, t): (p, t) for p, types in PROJECT_INSTANCE_TYPES.items() for t in types
}
_RESOURCE_ID = {pt: rid for rid, pt in DEDICATED_INSTANCES.items()}


@dataclass(frozen=True)
class PlannedRun:
    """One sample run as it will be written; `register_at_ms`/`promote_at_ms` drive the model registry."""

    day: date
    experiment: str
    run_name: str
    model: str | None
    start_ms: int
    end_ms: int
    status: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)  # key, value, timestamp ms, step
    deleted: bool = False
    register_at_ms: int | None = None
    promote_at_ms: int | None = None


def experiment_names() -> list[str]:
    names = [f"{EXPERIMENT_PREFIX}{project}/{model}" for model, project in org.MODELS.items()]
    return names + [f"{EXPERIMENT_PREFIX}{project}/exploration" for project in EXPLORATION_PROJECTS]


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).isoformat()


def plan_day(day: date) -> list[PlannedRun]:
    """The runs of one day, derived only from the day (the same list on every call)."""
    r = org.rng(day, "mlflow")
    targets = [(project, model) for model, project in org.MODELS.items()] + [(p, None) for p in EXPLORATION_PROJECTS]
    n = r.randint(2, 5)
    runs = []
    for i in range(n):
        project, model = r.choice(targets)
        workload = r.choices(WORKLOADS, weights=(5, 2, 2, 1))[0] if model else r.choice(("training", "evaluation"))
        instance_type = r.choice(PROJECT_INSTANCE_TYPES[project])
        per_instance = org.GPU_INSTANCE_TYPES[instance_type]
        shared = r.random() < 0.7
        if shared:  # a job on the shared cluster asks for some of a node's GPUs
            gpu_count = r.choice([g for g in (1, 2, 4, 8) if g <= per_instance])
        else:
            gpu_count = per_instance * (2 if per_instance == 8 and r.random() < 0.3 else 1)
        start_ms = _day_ms(day) + r.randrange(86_400_000)
        duration_ms = r.randrange(30 * 60_000, 10 * 3_600_000)
        failed = r.random() < 0.1
        estimator = r.choice(ESTIMATORS[model])
        tags = {
            SAMPLE_DAY_TAG: day.isoformat(),
            "project": org.spelled(project, r),
            "instance_type": instance_type,
            "gpu_count": str(gpu_count),
            "cluster": org.SHARED_GPU_CLUSTER if shared else DEDICATED,
            "workload": workload,
            "estimator": estimator,
        }
        if model:
            tags["model"] = model
        elif r.random() < 0.25:
            del tags["project"]  # an exploration run nobody tagged: allocation must still place its GPU-hours
        if not shared:
            tags["resource_id"] = _RESOURCE_ID[(project, instance_type)]
        params = {
            "learning_rate": str(round(10 ** r.uniform(-4, -1), 6)),
            "epochs": str(r.randint(3, 60)),
            "batch_size": str(r.choice((64, 128, 256, 512))),
            "seed": str(r.randint(0, 9999)),
        }
        if estimator in ("xgboost", "lightgbm"):
            params |= {"max_depth": str(r.randint(3, 12)), "n_estimators": str(r.choice((200, 500, 1000)))}
        metrics = _metrics(r, project, start_ms, duration_ms, failed)
        end_ms = start_ms + duration_ms
        register_at = promote_at = None
        if model and workload == "training" and not failed and r.random() < 0.6:
            register_at = end_ms + r.randint(10, 180) * 60_000
            if r.random() < 0.5:
                promote_at = register_at + r.randint(1, 72) * 3_600_000
        runs.append(PlannedRun(
            day=day,
            experiment=f"{EXPERIMENT_PREFIX}{project}/{model or 'exploration'}",
            run_name=f"{model or project}-{workload}-{day:%Y%m%d}-{i:02d}",
            model=model, start_ms=start_ms, end_ms=end_ms, status="FAILED" if failed else "FINISHED",
            tags=tags, params=params, metrics=metrics,
            register_at_ms=register_at, promote_at_ms=promote_at,
        ))  # fmt: skip
    if day.toordinal() % 7 == 0:  # once a week someone deletes a run; the reader must not count it
        unregistered = [i for i, run in enumerate(runs) if run.register_at_ms is None]
        if unregistered:
            runs[unregistered[-1]] = replace(runs[unregistered[-1]], deleted=True)
    return runs


def _metrics(r, project: str, start_ms: int, duration_ms: int, failed: bool) -> list[tuple[str, float, int, int]]:
    """A short history per metric (the latest value is the one that counts); a failed run has only its loss."""
    steps = (0.25, 0.6, 1.0) if not failed else (0.1, 0.2)
    out = []
    loss = r.uniform(0.2, 1.5)
    for step, frac in enumerate(steps):
        out.append(("train_loss", round(loss / (1 + step), 6), start_ms + int(duration_ms * frac), step))
    if failed:
        return out
    accuracy = r.uniform(0.6, 0.99)
    for step, frac in enumerate(steps):
        out.append(("accuracy", round(accuracy * (0.85 + 0.15 * frac), 4), start_ms + int(duration_ms * frac), step))
    if project in BUSINESS_METRIC_PROJECTS:
        out.append(("customer_retention_lift", round(r.uniform(0.5, 4.0), 3), start_ms + duration_ms, 0))
    return out


@contextmanager
def _store_lock(tracking_uri: str) -> Iterator[Path | None]:
    """Two processes filling the same sqlite store would both see a day as missing; serialize them."""
    if not tracking_uri.startswith("sqlite:///"):
        yield None
        return
    db = Path(tracking_uri.removeprefix("sqlite:///")).resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield db
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _schema_state(db: Path) -> tuple[str | None, bool, int]:
    """(alembic revision, a migration's temporary table left over, runs) of a sqlite store, read without MLflow."""
    try:
        # Read-write, though it only reads: SQLite rolls back a transaction a kill left open (a read-only
        # connection would refuse the file instead), as MLflow's own connection would.
        with closing(sqlite3.connect(db)) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
            revision = None
            if "alembic_version" in tables:
                versions = con.execute("SELECT version_num FROM alembic_version").fetchall()
                revision = versions[0][0] if versions else None
            runs = con.execute("SELECT count(*) FROM runs").fetchall()[0][0] if "runs" in tables else 0
    except sqlite3.Error:
        return None, True, 0
    return revision, any(t.startswith("_alembic_tmp") for t in tables), runs


def _ensure_store_file(db: Path, artifact_root: Path) -> None:
    """Create the store at `db` if it is missing (or was left half-migrated and empty); call under _store_lock."""
    from mlflow.store.db.utils import _get_latest_schema_revision  # the revision MLflow itself insists on
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    if db.exists():
        revision, leftover, runs = _schema_state(db)
        if (revision == _get_latest_schema_revision() and not leftover) or runs:
            return  # complete, or holds runs: never thrown away (MLflow's own error says how to upgrade it)
        aside = db.with_name(f"{db.name}.incomplete-{datetime.now(UTC):%Y%m%dT%H%M%S}")
        os.replace(db, aside)
        _log.warning(f"sample MLflow store {db} was left half-created (schema {revision}); moved to {aside.name}, "
                     "rebuilding it")  # fmt: skip
    # Left by a build that was killed; none is running now, since we hold the store lock.
    for stale in db.parent.glob(f".{db.name}.*.tmp*"):
        stale.unlink()
    staging = db.with_name(f".{db.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    store = SqlAlchemyStore(f"sqlite:///{staging}", artifact_root.as_uri())  # creates and migrates the schema
    store.engine.dispose()
    os.replace(staging, db)


def ensure_sample_runs(tracking_uri: str, days: Sequence[date]) -> int:
    """Write the runs (and model versions) of `days` missing from the store; return how many runs were created."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    days = sorted(set(days))
    if not days:
        return 0
    with _store_lock(tracking_uri) as db:
        artifact_root = db.parent / "mlflow-artifacts" if db else None
        if db:
            _ensure_store_file(db, artifact_root)
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        experiment_ids = _ensure_experiments(client, artifact_root)
        existing = _existing_runs(client, list(experiment_ids.values()), days)
        created, run_ids = 0, {}
        for day in days:
            for run in plan_day(day):
                key = (day.isoformat(), run.run_name)
                if key not in existing:
                    info = client.create_run(
                        experiment_ids[run.experiment], start_time=run.start_ms, tags=run.tags, run_name=run.run_name
                    ).info
                    existing[key] = (info.run_id, "active", False, False, False)
                    created += 1
                run_id, stage, has_params, has_metrics, ended = existing[key]
                if not ended:  # new, or created by a process killed before it finished the run
                    _finish_run(client, run_id, run, has_params, has_metrics)
                if run.deleted and stage == "active":
                    client.delete_run(run_id)
                if run.register_at_ms is not None:
                    run_ids[run_id] = run
        _ensure_model_versions(client, run_ids)
    return created


def _finish_run(client, run_id: str, run: PlannedRun, has_params: bool, has_metrics: bool) -> None:
    from mlflow.entities import Metric, Param

    # MLflow writes a batch's params and its metrics in separate transactions: log whichever part is missing.
    client.log_batch(
        run_id,
        metrics=[] if has_metrics else [Metric(k, v, ts, step) for k, v, ts, step in run.metrics],
        params=[] if has_params else [Param(k, v) for k, v in run.params.items()],
    )
    client.set_terminated(run_id, run.status, end_time=run.end_ms)


def _ensure_experiments(client, artifact_root: Path | None) -> dict[str, str]:
    from mlflow.entities import ViewType

    found = {}
    for e in _paged(lambda tok: client.search_experiments(
            view_type=ViewType.ALL, filter_string=f"name LIKE '{EXPERIMENT_PREFIX}%'", max_results=1000,
            page_token=tok)):  # fmt: skip
        found[e.name] = e.experiment_id
    for name in experiment_names():
        if name not in found:
            _, project, leaf = name.rsplit("/", 2)
            location = (artifact_root / project / leaf).as_uri() if artifact_root else None
            tags = {"project": project} | ({"model": leaf} if leaf in org.MODELS else {})
            found[name] = client.create_experiment(name, artifact_location=location, tags=tags)
    return found


def _existing_runs(
    client, experiment_ids: list[str], days: list[date]
) -> dict[tuple[str, str], tuple[str, str, bool, bool, bool]]:
    """(sample day, run name) -> (run id, lifecycle stage, has params, has metrics, ended) for the sample runs
    started in the days' span."""
    from mlflow.entities import ViewType

    lo, hi = _day_ms(days[0]), _day_ms(days[-1] + timedelta(days=1))
    query = f"attributes.start_time >= {lo} AND attributes.start_time < {hi} AND tags.`{SAMPLE_DAY_TAG}` LIKE '%'"
    runs = _paged(lambda tok: client.search_runs(
        experiment_ids, query, run_view_type=ViewType.ALL, max_results=1000, page_token=tok))  # fmt: skip
    return {
        (r.data.tags[SAMPLE_DAY_TAG], r.info.run_name): (
            r.info.run_id, r.info.lifecycle_stage, bool(r.data.params), bool(r.data.metrics), bool(r.info.end_time)
        )
        for r in runs
    }  # fmt: skip


def _ensure_model_versions(client, runs: dict[str, PlannedRun]) -> None:
    """Register each chosen run once; point `production` at the version promoted last."""
    models = {m.name: m for m in _paged(lambda tok: client.search_registered_models(max_results=1000, page_token=tok))}
    for name, project in org.MODELS.items():
        if name not in models:
            models[name] = client.create_registered_model(name, tags={"project": project})
    versions = list(_paged(lambda tok: client.search_model_versions(max_results=1000, page_token=tok)))
    registered = {v.run_id for v in versions}
    for run_id, run in sorted(runs.items(), key=lambda item: item[1].register_at_ms):
        if run_id in registered:
            continue
        tags = {REGISTERED_AT_TAG: _iso(run.register_at_ms)}
        if run.promote_at_ms is not None:
            tags[PROMOTED_AT_TAG] = _iso(run.promote_at_ms)
        versions.append(client.create_model_version(
            run.model, source=f"runs:/{run_id}/model", run_id=run_id, tags=tags, await_creation_for=0))  # fmt: skip
    newest: dict[str, tuple[str, str]] = {}
    for v in versions:
        promoted = v.tags.get(PROMOTED_AT_TAG)
        if promoted and v.name in org.MODELS and (v.name not in newest or promoted > newest[v.name][0]):
            newest[v.name] = (promoted, str(v.version))
    for name, (_, version) in newest.items():
        if str(models[name].aliases.get(PRODUCTION_ALIAS, "")) != version:
            client.set_registered_model_alias(name, PRODUCTION_ALIAS, version)


def _paged(search):
    token = None
    while True:
        page = search(token)
        yield from page
        token = page.token
        if not token:
            return
