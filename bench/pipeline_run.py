"""One pipeline run as a user makes it: `mlcost materialize --start DAY --end DAY` in a process of its own.

The child gets the bench's environment without any MLCOST_* variable or DAGSTER_HOME of the caller's shell,
plus the run's own settings (warehouse, `MLCOST_SOURCES=focus,mlflow`, the export folder, the MLflow store);
the DuckDB memory cap (MLCOST_DUCKDB_MEMORY_LIMIT) is set only when the caller asks for one, so the default
run measures what a new user gets. End to end is the child's wall time: interpreter start, imports, Dagster's
start-up, the run, the BI snapshot and the summary the command prints. Stage times come from the run's step
events in the Dagster instance the command keeps (`<warehouse folder>/dagster_home`); peak RSS from sampling
the child's process tree (the bench's own memory is not in it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from bench.rss import RssSampler

REPO = Path(__file__).resolve().parent.parent
MEMORY_LIMIT_ENV = "MLCOST_DUCKDB_MEMORY_LIMIT"
STAGES = {  # Dagster step key prefix -> stage
    "raw__focus_export_files": "land",
    "raw__mlflow_runs": "land",
    "raw__mlflow_model_versions": "land",
    "core__ml_runs": "land",
    "core__ml_model_versions": "land",
    "core__focus_costs": "normalize",
    "core__allocated_costs": "allocate",
    "marts__": "marts",
}


def stage_of(step_key: str) -> str | None:
    for prefix, stage in STAGES.items():
        if step_key.startswith(prefix):
            return stage
    return None


def step_windows(records) -> dict[str, tuple[float, float, float]]:
    """stage -> (first start, last end, busy seconds) in this process's monotonic time, from step events;
    "other" holds the steps of no stage (run costs, budgets, the disabled API sources), "*" every step."""
    offset = time.monotonic() - time.time()  # event timestamps are wall-clock time, the same in every process
    spans: dict[str, list[float]] = {}
    started: dict[str, float] = {}
    for record in records:
        event = record.dagster_event
        key = (event.step_key if event else None) or ""
        if not key:
            continue
        at = record.timestamp + offset
        if event.event_type_value == "STEP_START":
            started[key] = at
        elif event.event_type_value == "STEP_SUCCESS" and key in started:
            for stage in (stage_of(key) or "other", "*"):
                span = spans.setdefault(stage, [float("inf"), 0.0, 0.0])
                span[0], span[1] = min(span[0], started[key]), max(span[1], at)
                span[2] += at - started[key]
    return {stage: (a, b, busy) for stage, (a, b, busy) in spans.items()}


def child_env(work: Path, exports: Path, memory_limit: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MLCOST_") and k != "DAGSTER_HOME"}
    env.update({
        "MLCOST_WAREHOUSE_PATH": str(work / "mlcost.duckdb"),
        "MLCOST_SOURCES": "focus,mlflow",
        "MLCOST_FOCUS_PATH": str(exports),
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    })  # fmt: skip
    if memory_limit:
        env[MEMORY_LIMIT_ENV] = memory_limit
    return env


def effective_memory_limit(env: dict[str, str]) -> str:
    """The memory_limit DuckDB reports on the warehouse writer's connection in `env` (a scratch database)."""
    probe = ("import tempfile, pathlib\n"
             "from mlcost_pipeline.warehouse.connection import write_connection\n"
             "with tempfile.TemporaryDirectory() as d, write_connection(pathlib.Path(d) / 'p.duckdb') as c:\n"
             "    print(c.execute(\"SELECT current_setting('memory_limit')\").fetchall()[0][0])")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() or f"unknown ({done.stderr.strip()[-200:]})"


def mlflow_store(work: Path, days: list[date]) -> None:
    """The sample MLflow runs of `days` in `<work>/mlflow.db`, the store `child_env` points the run at."""
    from mlcost_pipeline.sources.sample.mlflow_store import ensure_sample_runs

    ensure_sample_runs(f"sqlite:///{work / 'mlflow.db'}", days)


def _run_records(home: Path) -> list:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(limit=1)
        return list(instance.all_logs(runs[0].run_id)) if runs else []


def materialize(
    work: Path,
    exports: Path,
    day: date,
    rows: int,
    memory_limit: str | None = None,
    profile_dir: Path | None = None,
) -> dict:
    """`mlcost materialize` over `day` on the files in `exports`: stages, end to end, start-up, the cap.

    With `profile_dir`, the same command runs under bench/profile_run.py (cProfile + DuckDB's profiler), whose
    summaries land there; its times include the profilers' overhead.
    """
    work.mkdir(parents=True, exist_ok=True)
    env = child_env(work, exports, memory_limit)
    args = ["materialize", "--start", day.isoformat(), "--end", day.isoformat()]
    runner = (
        ["-m", "bench.profile_run", str(profile_dir), "--"] if profile_dir else ["-m", "mlcost_pipeline.cli"]
    )
    log = work / "materialize.log"
    with open(log, "w") as out:
        t0 = time.monotonic()
        child = subprocess.Popen([sys.executable, *runner, *args], env=env, cwd=REPO, stdout=out,
                                 stderr=subprocess.STDOUT)  # fmt: skip
        with RssSampler(pid=child.pid) as sampler:
            child.wait()
        t1 = time.monotonic()
    if child.returncode:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise SystemExit(
            f"bench: mlcost materialize failed (exit {child.returncode}), log {log}:\n" + "\n".join(tail)
        )
    windows = step_windows(_run_records(work / "dagster_home"))
    run_span = windows.pop("*", (t0, t1, 0.0))
    stages = {}
    for stage, (a, b, busy) in sorted(windows.items(), key=lambda kv: kv[1][0]):
        rate = round(rows / busy) if busy and stage != "other" else None  # "other" does not process the rows
        stages[stage] = {"rows_per_s": rate, "seconds": round(busy, 2),
                         "peak_rss_mb": sampler.peak(a, b)}  # fmt: skip
    return {
        "stages": stages,
        "end_to_end": {"rows_per_s": round(rows / (t1 - t0)), "seconds": round(t1 - t0, 2),
                       "peak_rss_mb": sampler.peak()},
        # before the first step: interpreter, imports, definitions, Dagster's run start; after the last: the
        # run's end, the BI snapshot and the printed summary
        "phases": {"startup_s": round(run_span[0] - t0, 2), "steps_s": round(run_span[1] - run_span[0], 2),
                   "after_s": round(t1 - run_span[1], 2)},
        "memory_limit": {"setting": memory_limit, "effective": effective_memory_limit(env)},
        "command": " ".join(["mlcost", *args]),
    }  # fmt: skip
