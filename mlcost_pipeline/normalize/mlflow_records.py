"""MLflow payloads (sources.mlflow_tracking) -> `core.ml_runs` and `core.ml_model_versions` rows (polars).

core.ml_runs: one row per run, key run_id, partitioned by x_RunDate (the UTC day the run started). The cost tags
are read from the run's tags and kept as logged (project_tag "churn_pred" stays "churn_pred": the allocation rules
fold spellings together, so a rule change never needs a re-extract). duration_hours and gpu_hours are exact
decimals computed from integer milliseconds, rounded half-even to 12 places; a run without an end time (still
running) has neither.
core.ml_model_versions: one row per (model_name, version). MLflow does not record when an alias was set, so
production_at is the `acme.promoted_at` / `mlcost.promoted_at` version tag when present (a deploy pipeline can
write it), else last_updated_at for a version that is in production now, else null. created_at is likewise the
`acme.registered_at` / `mlcost.registered_at` tag when present (a backfilled registry), else MLflow's creation time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl

from mlcost_pipeline.normalize.focus_schema import (
    MONEY,
    MONEY_SCALE,
    MONEY_SQL,
    TS,
    NormalizationError,
    tags_json,
)

SOURCE = "mlflow"
_STR, _TS, _DEC, _JSON, _DATE, _INT, _BOOL = "VARCHAR", "TIMESTAMP", MONEY_SQL, "JSON", "DATE", "INTEGER", "BOOLEAN"

ML_RUNS_COLUMNS: list[tuple[str, str]] = [
    ("run_id", _STR),
    ("experiment_id", _STR),
    ("experiment_name", _STR),
    ("run_name", _STR),
    ("status", _STR),  # RUNNING | SCHEDULED | FINISHED | FAILED | KILLED
    ("start_time", _TS),
    ("end_time", _TS),
    ("duration_hours", _DEC),
    ("project_tag", _STR),
    ("model_tag", _STR),
    ("instance_type", _STR),
    ("gpu_count", _INT),
    ("cluster", _STR),
    ("resource_id", _STR),
    ("workload", _STR),
    ("estimator", _STR),
    ("gpu_hours", _DEC),
    ("params", _JSON),
    ("metrics", _JSON),  # latest value per key
    ("tags", _JSON),
    ("x_RunDate", _DATE),
    ("x_IngestedAt", _TS),
]

ML_MODEL_VERSIONS_COLUMNS: list[tuple[str, str]] = [
    ("model_name", _STR),
    ("version", _INT),
    ("run_id", _STR),
    ("source", _STR),
    ("status", _STR),
    ("current_stage", _STR),
    ("aliases", _JSON),  # sorted JSON array of alias names
    ("created_at", _TS),
    ("last_updated_at", _TS),
    ("is_production", _BOOL),
    ("production_at", _TS),
    ("tags", _JSON),
    ("x_IngestedAt", _TS),
]

# column -> tag keys, first present wins (matched case-insensitively)
RUN_TAG_COLUMNS = {
    "project_tag": ("project", "proj"),
    "model_tag": ("model", "model_name"),
    "instance_type": ("instance_type",),
    "cluster": ("cluster",),
    "resource_id": ("resource_id",),
    "workload": ("workload",),
    "estimator": ("estimator",),
}
GPU_COUNT_TAG = "gpu_count"
# mlflow.* system tags worth keeping in the tags JSON; the rest (notes, model history, source paths) is noise.
KEPT_SYSTEM_TAGS = ("mlflow.runName", "mlflow.user", "mlflow.parentRunId", "mlflow.source.git.commit")
PRODUCTION_ALIASES = ("production", "champion")
PROMOTED_AT_TAGS = ("mlcost.promoted_at", "acme.promoted_at")
REGISTERED_AT_TAGS = ("mlcost.registered_at", "acme.registered_at")

_MS_PER_HOUR = 3_600_000
_EPOCH = datetime(1970, 1, 1)
_POLARS = {_STR: pl.String, _TS: TS, _DEC: MONEY, _JSON: pl.String, _DATE: pl.Date, _INT: pl.Int32, _BOOL: pl.Boolean}


def _schema(columns: list[tuple[str, str]]) -> dict[str, pl.DataType]:
    return {c: _POLARS[t] for c, t in columns}


ML_RUNS_SCHEMA = _schema(ML_RUNS_COLUMNS)
ML_MODEL_VERSIONS_SCHEMA = _schema(ML_MODEL_VERSIONS_COLUMNS)


def _create(qualified_name: str, columns: list[tuple[str, str]]) -> str:
    cols = ",\n  ".join(f'"{c}" {t}' for c, t in columns)
    return f"CREATE TABLE IF NOT EXISTS {qualified_name} (\n  {cols}\n)"


def ml_runs_create_table_sql(qualified_name: str = "core.ml_runs") -> str:
    return _create(qualified_name, ML_RUNS_COLUMNS)


def ml_model_versions_create_table_sql(qualified_name: str = "core.ml_model_versions") -> str:
    return _create(qualified_name, ML_MODEL_VERSIONS_COLUMNS)


def _hours(ms: int) -> Decimal:
    """ms / 3,600,000 rounded half-even to MONEY_SCALE places, in integers: no context precision involved."""
    quotient, remainder = divmod(ms * 10**MONEY_SCALE, _MS_PER_HOUR)
    if 2 * remainder > _MS_PER_HOUR or (2 * remainder == _MS_PER_HOUR and quotient % 2):
        quotient += 1
    return Decimal(f"{quotient}E-{MONEY_SCALE}")


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else _EPOCH + timedelta(milliseconds=ms)


def _naive_utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo is None else dt.astimezone(UTC).replace(tzinfo=None)


def _tag(tags: dict[str, str], keys: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): v for k, v in sorted(tags.items(), reverse=True)}  # among case variants, the first sorted wins
    for key in keys:
        if key in tags:
            return tags[key]
        if key.lower() in lowered:
            return lowered[key.lower()]
    return None


def _int_ms(value: object, where: str, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise NormalizationError(f"{SOURCE}: {where}: {name} is not integer milliseconds: {value!r}")
    return value


def _run_row(i: int, p: dict, ingested_at: datetime) -> dict:
    run_id = p.get("run_id")
    where = f"run {i} (run_id={run_id})"
    if not run_id:
        raise NormalizationError(f"{SOURCE}: {where}: run_id is missing")
    start_ms = _int_ms(p.get("start_time_ms"), where, "start_time_ms")
    if start_ms is None:
        raise NormalizationError(f"{SOURCE}: {where}: start_time_ms is missing")
    end_ms = _int_ms(p.get("end_time_ms"), where, "end_time_ms")
    if end_ms is not None and end_ms < start_ms:
        raise NormalizationError(f"{SOURCE}: {where}: end_time_ms {end_ms} is before start_time_ms {start_ms}")
    tags = {str(k): str(v) for k, v in (p.get("tags") or {}).items()}
    raw_gpus = _tag(tags, (GPU_COUNT_TAG,))
    gpu_count = None
    if raw_gpus is not None and raw_gpus.strip():
        try:
            gpu_count = int(raw_gpus.strip())
        except ValueError:
            raise NormalizationError(f"{SOURCE}: {where}: tag {GPU_COUNT_TAG}={raw_gpus!r} is not an integer") from None
        if gpu_count < 0:
            raise NormalizationError(f"{SOURCE}: {where}: tag {GPU_COUNT_TAG}={raw_gpus!r} is negative")
    elapsed = None if end_ms is None else end_ms - start_ms
    start = _ts(start_ms)
    kept_tags = {k: v for k, v in tags.items() if not k.startswith("mlflow.") or k in KEPT_SYSTEM_TAGS}
    row = {
        "run_id": run_id,
        "experiment_id": p.get("experiment_id"),
        "experiment_name": p.get("experiment_name"),
        "run_name": p.get("run_name") or tags.get("mlflow.runName"),
        "status": p.get("status"),
        "start_time": start,
        "end_time": _ts(end_ms),
        "duration_hours": None if elapsed is None else _hours(elapsed),
        "gpu_count": gpu_count,
        "gpu_hours": None if elapsed is None or gpu_count is None else _hours(elapsed * gpu_count),
        "params": tags_json(p.get("params") or {}),
        "metrics": tags_json(p.get("metrics") or {}),
        "tags": tags_json(kept_tags),
        "x_RunDate": start.date(),
        "x_IngestedAt": _naive_utc(ingested_at),
    }
    row |= {column: _tag(tags, keys) for column, keys in RUN_TAG_COLUMNS.items()}
    return row


def normalize_runs(payloads: list[dict], ingested_at: datetime) -> pl.DataFrame:
    """fetch_runs payloads -> core.ml_runs rows, in the table's column order."""
    rows = [_run_row(i, p, ingested_at) for i, p in enumerate(payloads)]
    return pl.DataFrame(rows, schema=ML_RUNS_SCHEMA, orient="row") if rows else pl.DataFrame(schema=ML_RUNS_SCHEMA)


def _tag_time(tags: dict[str, str], keys: tuple[str, ...], where: str) -> datetime | None:
    for key in keys:
        if tags.get(key):
            try:
                return _naive_utc(datetime.fromisoformat(tags[key].replace("Z", "+00:00")))
            except ValueError:
                raise NormalizationError(
                    f"{SOURCE}: {where}: tag {key}={tags[key]!r} is not an ISO-8601 timestamp"
                ) from None
    return None


def _version_row(i: int, p: dict, ingested_at: datetime) -> dict:
    where = f"model version {i} ({p.get('name')} v{p.get('version')})"
    if not p.get("name"):
        raise NormalizationError(f"{SOURCE}: {where}: name is missing")
    try:
        version = int(str(p.get("version")))
    except ValueError:
        raise NormalizationError(f"{SOURCE}: {where}: version {p.get('version')!r} is not an integer") from None
    tags = {str(k): str(v) for k, v in (p.get("tags") or {}).items()}
    aliases = sorted({str(a) for a in p.get("aliases") or []})
    stage = p.get("current_stage")
    is_production = any(a.lower() in PRODUCTION_ALIASES for a in aliases) or (stage or "").lower() == "production"
    last_updated = _ts(_int_ms(p.get("last_updated_timestamp_ms"), where, "last_updated_timestamp_ms"))
    promoted = _tag_time(tags, PROMOTED_AT_TAGS, where)
    created = _tag_time(tags, REGISTERED_AT_TAGS, where)
    return {
        "model_name": p["name"],
        "version": version,
        "run_id": p.get("run_id") or None,
        "source": p.get("source"),
        "status": p.get("status"),
        "current_stage": stage,
        "aliases": json.dumps(aliases),
        "created_at": created or _ts(_int_ms(p.get("creation_timestamp_ms"), where, "creation_timestamp_ms")),
        "last_updated_at": last_updated,
        "is_production": is_production,
        "production_at": promoted or (last_updated if is_production else None),
        "tags": tags_json(tags),
        "x_IngestedAt": _naive_utc(ingested_at),
    }


def normalize_model_versions(payloads: list[dict], ingested_at: datetime) -> pl.DataFrame:
    """fetch_model_versions payloads -> core.ml_model_versions rows, in the table's column order."""
    rows = [_version_row(i, p, ingested_at) for i, p in enumerate(payloads)]
    schema = ML_MODEL_VERSIONS_SCHEMA
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
