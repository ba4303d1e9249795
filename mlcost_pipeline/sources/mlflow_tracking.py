"""MLflow tracking server and model registry (source): runs and registered model versions, as MLflow gives them.

Runs: grain one run, keyed by run_id, dated by the UTC day it STARTED (the partition key). Only active runs of
active experiments are read: a run or experiment deleted in MLflow is one its owners asked to forget.
Model versions: grain one (registered model, version); the registry is small and read whole.
Payloads are plain JSON-safe dicts (non-finite metric values become the strings "NaN", "Infinity",
"-Infinity"); all tags are kept, mlflow.* included, and the normalizer decides what matters.
The caller builds the client (`MlflowClient(tracking_uri=...)`), so nothing connects at import time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

SOURCE = "mlflow"
PAGE_SIZE = 1000  # the sqlalchemy store's default; the REST server accepts up to 50,000 runs a page
_EXPERIMENTS_PER_SEARCH = 100


def _epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def _utc_day(ms: int) -> date:
    return datetime.fromtimestamp(ms // 1000, UTC).date()


def _paged(search: Callable[[str | None], Any]) -> Iterator[Any]:
    token = None
    while True:
        page = search(token)
        yield from page
        token = page.token
        if not token:
            return


def _json_number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def fetch_runs(
    client: MlflowClient, start: date, end: date, *, max_results: int = PAGE_SIZE
) -> list[tuple[date, dict]]:
    """Runs started in `[start, end)` UTC across all active experiments, as (UTC start day, payload) pairs."""
    from mlflow.entities import ViewType

    experiments = {
        e.experiment_id: e.name
        for e in _paged(lambda tok: client.search_experiments(
            view_type=ViewType.ACTIVE_ONLY, max_results=max_results, page_token=tok))  # fmt: skip
    }
    query = f"attributes.start_time >= {_epoch_ms(start)} AND attributes.start_time < {_epoch_ms(end)}"
    ids = sorted(experiments)
    out = []
    for i in range(0, len(ids), _EXPERIMENTS_PER_SEARCH):
        chunk = ids[i : i + _EXPERIMENTS_PER_SEARCH]
        for run in _paged(lambda tok, chunk=chunk: client.search_runs(
                chunk, query, run_view_type=ViewType.ACTIVE_ONLY, max_results=max_results, page_token=tok)):  # fmt: skip
            info, data = run.info, run.data
            payload = {
                "run_id": info.run_id,
                "experiment_id": info.experiment_id,
                "experiment_name": experiments.get(info.experiment_id),
                "run_name": info.run_name,
                "status": info.status,
                "start_time_ms": info.start_time,
                "end_time_ms": info.end_time,
                "lifecycle_stage": info.lifecycle_stage,
                "tags": dict(data.tags),
                "params": dict(data.params),
                "metrics": {k: _json_number(v) for k, v in data.metrics.items()},
            }
            out.append((_utc_day(info.start_time), payload))
    out.sort(key=lambda item: (item[1]["start_time_ms"], item[1]["run_id"]))
    return out


def runs_ended_in_window(
    client: MlflowClient, start: date, end: date, *, max_results: int = PAGE_SIZE
) -> list[date]:
    """UTC start days of runs that ended in `[start, end)` but started before it (their partition is earlier).

    A run is landed on the day it started; when it ends days later, that earlier day must be re-pulled to see
    its end time, GPU-hours and final status. The caller reports these days (the restatement window covers them
    when it is long enough).
    """
    from mlflow.entities import ViewType

    ids = sorted(e.experiment_id for e in _paged(lambda tok: client.search_experiments(
        view_type=ViewType.ACTIVE_ONLY, max_results=max_results, page_token=tok)))  # fmt: skip
    query = (f"attributes.end_time >= {_epoch_ms(start)} AND attributes.end_time < {_epoch_ms(end)} "
             f"AND attributes.start_time < {_epoch_ms(start)}")  # fmt: skip
    days = []
    for i in range(0, len(ids), _EXPERIMENTS_PER_SEARCH):
        chunk = ids[i : i + _EXPERIMENTS_PER_SEARCH]
        for run in _paged(lambda tok, chunk=chunk: client.search_runs(
                chunk, query, run_view_type=ViewType.ACTIVE_ONLY, max_results=max_results, page_token=tok)):  # fmt: skip
            days.append(_utc_day(run.info.start_time))
    return days


def fetch_model_versions(client: MlflowClient, *, max_results: int = PAGE_SIZE) -> list[dict]:
    """Every registered model version, with the aliases its registered model points at it."""
    aliases: dict[tuple[str, str], list[str]] = {}
    for model in _paged(lambda tok: client.search_registered_models(max_results=max_results, page_token=tok)):
        for alias, version in (model.aliases or {}).items():
            aliases.setdefault((model.name, str(version)), []).append(alias)
    out = []
    for v in _paged(lambda tok: client.search_model_versions(max_results=max_results, page_token=tok)):
        # Search results may leave ModelVersion.aliases empty; the registered model's map is authoritative.
        names = set(aliases.get((v.name, str(v.version)), [])) | set(v.aliases or [])
        out.append({
            "name": v.name,
            "version": str(v.version),
            "run_id": v.run_id,
            "source": v.source,
            "status": v.status,
            "current_stage": v.current_stage,
            "aliases": sorted(names),
            "tags": dict(v.tags or {}),
            "creation_timestamp_ms": v.creation_timestamp,
            "last_updated_timestamp_ms": v.last_updated_timestamp,
            "description": v.description,
            "user_id": v.user_id or None,  # a tracking server answers "" where a database store has None
        })  # fmt: skip
    out.sort(key=lambda p: (p["name"], int(p["version"]) if p["version"].isdigit() else 0, p["version"]))
    return out
