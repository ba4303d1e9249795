"""The benchmark: FOCUS Parquet -> raw landing -> core.focus_costs -> allocation -> marts, on the real code path.

Every stage runs as the Dagster assets run (one in-process single-run backfill through `run_range`), with the
sources the pipeline uses in production (`MLCOST_SOURCES=focus,mlflow`) and the repo's rules file. Stage times come
from Dagster's step events; peak RSS from sampling the process tree's /proc entries. In the same process it runs
the pandas baseline (bench/pandas_baseline.py) on the same file, and the incremental check (one new day with 1 and
with 365 days of history). Results: bench/results/latest.json and latest.md.

    make bench                         # BENCH_ROWS=200000 by default
    BENCH_ROWS=10000000 make bench     # the large run
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

from bench.generate_focus import generate
from bench.rss import RssSampler

DAY = date(2026, 11, 1)
RESULTS = Path(__file__).resolve().parent / "results"
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


def _stage(step_key: str) -> str | None:
    for prefix, stage in STAGES.items():
        if step_key.startswith(prefix):
            return stage
    return None


def _pipeline(work: Path, focus_dir: Path, start: date, end_inclusive: date):
    import dagster as dg

    from mlcost_pipeline.definitions import build_definitions
    from mlcost_pipeline.run_range import run_range
    from mlcost_pipeline.settings import load_settings

    env = {
        "MLCOST_WAREHOUSE_PATH": str(work / "mlcost.duckdb"),
        "MLCOST_SOURCES": "focus,mlflow",
        "MLCOST_FOCUS_PATH": str(focus_dir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
    }
    os.environ.update(env)
    defs = build_definitions(load_settings({**os.environ, **env}))
    instance = dg.DagsterInstance.ephemeral()
    result = run_range(defs, start, end_inclusive, instance, log_level="ERROR")
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        raise SystemExit(f"bench: the pipeline run failed: {failures[:3]}")
    return instance.all_logs(result.run_id)


def _step_windows(records) -> dict[str, tuple[float, float, float]]:
    """stage -> (first start, last end, busy seconds) in monotonic time, from the run's step events."""
    offset = time.monotonic() - time.time()
    spans: dict[str, list[float]] = {}
    started: dict[str, float] = {}
    for record in records:
        event = record.dagster_event
        key = (event.step_key if event else None) or ""
        stage = _stage(key)
        if not stage:
            continue
        record_time = record.timestamp
        if event.event_type_value == "STEP_START":
            started[key] = record_time + offset
        elif event.event_type_value == "STEP_SUCCESS" and key in started:
            span = spans.setdefault(stage, [float("inf"), 0.0, 0.0])
            span[0] = min(span[0], started[key])
            span[1] = max(span[1], record_time + offset)
            span[2] += record_time + offset - started[key]
    return {stage: (a, b, total) for stage, (a, b, total) in spans.items()}


def _mlflow_store(work: Path, days: list[date]) -> None:
    from mlcost_pipeline.sources.sample.mlflow_store import ensure_sample_runs

    ensure_sample_runs(f"sqlite:///{work / 'mlflow.db'}", days)


def _history_files(template: Path, focus_dir: Path, first: date, days: int) -> None:
    """`days` daily files before `first`, each the template shifted in time (cheap: no regeneration)."""
    con = duckdb.connect()
    for k in range(1, days + 1):
        shift = f"INTERVAL {k} DAY"
        out = focus_dir / f"{(first - timedelta(days=k)).isoformat()}.parquet"
        con.execute(
            f"COPY (SELECT * REPLACE (ChargePeriodStart - {shift} AS ChargePeriodStart, "
            f"ChargePeriodEnd - {shift} AS ChargePeriodEnd, "
            f"date_trunc('month', ChargePeriodStart - {shift}) AS BillingPeriodStart, "
            f"date_trunc('month', ChargePeriodStart - {shift}) + INTERVAL 1 MONTH AS BillingPeriodEnd) "
            f"FROM read_parquet($p)) TO '{out}' (FORMAT parquet, COMPRESSION zstd)",
            {"p": str(template)},
        )
    con.close()


def _incremental(root: Path, rows: int, history_rows: int, history_days: int) -> dict:
    """Seconds to materialize one new day of `rows` with `history_days` of history already in the warehouse."""
    work = root / f"incremental-{history_days}"
    focus_dir = work / "focus"
    focus_dir.mkdir(parents=True)
    history_template = generate(history_rows, DAY - timedelta(days=1), work / "history-template.parquet")
    _history_files(history_template.rename(work / "tpl.parquet"), focus_dir, DAY, history_days)
    history_start = DAY - timedelta(days=history_days)
    _mlflow_store(work, [history_start + timedelta(days=i) for i in range(history_days + 1)])
    _pipeline(work, focus_dir, history_start, DAY - timedelta(days=1))
    generate(rows, DAY, focus_dir / f"{DAY.isoformat()}.parquet")
    t = time.monotonic()
    _pipeline(work, focus_dir, DAY, DAY)
    return {"history_days": history_days, "seconds": round(time.monotonic() - t, 2)}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(rows: int, history_rows: int, keep: bool = False) -> dict:
    from bench.pandas_baseline import normalize_and_allocate

    root = Path(tempfile.mkdtemp(prefix="mlcost-bench-"))
    try:
        work = root / "main"
        focus_dir = work / "focus"
        focus_dir.mkdir(parents=True)
        generate(rows, DAY, focus_dir / f"{DAY.isoformat()}.parquet")
        _mlflow_store(work, [DAY])
        with RssSampler() as sampler:
            t0 = time.monotonic()
            records = _pipeline(work, focus_dir, DAY, DAY)
            t1 = time.monotonic()
            baseline_start = time.monotonic()
            normalize_and_allocate(focus_dir / f"{DAY.isoformat()}.parquet")
            baseline_end = time.monotonic()
        stages = {}
        for stage, (a, b, busy) in sorted(_step_windows(records).items(), key=lambda kv: kv[1][0]):
            stages[stage] = {"rows_per_s": round(rows / busy) if busy else None, "seconds": round(busy, 2),
                             "peak_rss_mb": sampler.peak(a, b)}  # fmt: skip
        end_to_end = {"rows_per_s": round(rows / (t1 - t0)), "seconds": round(t1 - t0, 2),
                      "peak_rss_mb": sampler.peak(t0, t1)}  # fmt: skip
        baseline = {"rows_per_s": round(rows / (baseline_end - baseline_start)),
                    "seconds": round(baseline_end - baseline_start, 2),
                    "peak_rss_mb": sampler.peak(baseline_start, baseline_end)}  # fmt: skip
        one = _incremental(root, rows, history_rows, 1)
        year = _incremental(root, rows, history_rows, 365)
        return {
            "rows": rows,
            "cores": os.cpu_count(),
            "commit": _commit(),
            "command": f"BENCH_ROWS={rows} make bench",
            "stages": stages,
            "end_to_end": end_to_end,
            "pandas_baseline": baseline,
            "speedup_vs_pandas": round(baseline["seconds"] / end_to_end["seconds"], 2),
            "incremental": {"history_1_day": one, "history_365_days": year, "history_rows_per_day": history_rows,
                            "ratio": round(year["seconds"] / one["seconds"], 2)},  # fmt: skip
        }
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def markdown(r: dict) -> str:
    lines = [f"Benchmark: {r['rows']:,} FOCUS line items, {r['cores']} cores, commit {r['commit']} "
             f"(`{r['command']}`)", "", "| stage | seconds | rows/s | peak RSS (MiB) |", "|---|---:|---:|---:|"]
    for name, s in [*r["stages"].items(), ("end to end", r["end_to_end"]), ("pandas baseline", r["pandas_baseline"])]:
        lines.append(f"| {name} | {s['seconds']} | {s['rows_per_s']:,} | {s['peak_rss_mb']} |")
    inc = r["incremental"]
    lines += ["", f"End to end vs the pandas baseline, same input, same process: {r['speedup_vs_pandas']}x.",
              f"One new day with 365 days of history ({inc['history_rows_per_day']:,} rows/day) took "
              f"{inc['history_365_days']['seconds']} s, with 1 day {inc['history_1_day']['seconds']} s: "
              f"ratio {inc['ratio']}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    rows = int(os.environ.get("BENCH_ROWS", "200000"))
    history_rows = int(os.environ.get("BENCH_HISTORY_ROWS", "2000"))
    report = run(rows, history_rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
