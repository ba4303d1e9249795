"""The benchmark: a modelled FOCUS export day -> `mlcost materialize`, beside the machine's floors, one run.

1. The input: bench/generate_focus.py writes BENCH_ROWS line items of DAY (hourly resources, daily-grain
   services, commitment lines, four providers, tags as exports write them); its shape is read from the file.
2. The floors (bench/floors.py: scan, cells, narrow, wide, parquet) on that file, in this process, right
   before the pipeline (BENCH_FLOORS=0 skips them).
3. The pipeline exactly as a user runs it: `mlcost materialize --start DAY --end DAY` in a child process with
   no MLCOST_DUCKDB_MEMORY_LIMIT (bench/pipeline_run.py): stages from its step events, peak RSS of its process
   tree, end to end its wall time (start-up included). BENCH_MEMORY_LIMIT=1.5GB reruns it capped, on a fresh
   warehouse; BENCH_PROFILE=1 runs it once more under cProfile and DuckDB's profiler (bench/profile_run.py),
   the summaries in bench/results/profile-<rows>/.
4. Then, as before: the pandas baseline in a child process of its own (bench/pandas_baseline.py; skipped above
   BENCH_PANDAS_MAX_ROWS, default 3M: it needs ~3 GB a million rows), the other native shapes
   (bench/generate_native.py), the incremental check (one new day with 1 and with 365 days of history) and the
   CUR stage (BENCH_CUR_ROWS CUR 2.0 line items through the export reader and the pipeline; 0 skips it).
Results: bench/results/latest.json and latest.md, and rows-<N>.* for the last run of each size.

    make bench                                          # BENCH_ROWS=200000 by default
    BENCH_ROWS=10000000 BENCH_MEMORY_LIMIT=1.5GB make bench
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from bench import floors as floor_steps
from bench.cur_stage import cur_stage
from bench.generate_focus import generate
from bench.pipeline_run import MEMORY_LIMIT_ENV, materialize, mlflow_store, step_windows
from bench.report import markdown, targets, vs_floors

# A day whose sample MLflow runs use the shared GPU clusters of all three clouds, so the proportional_usage
# pools split by runs (on a day without any, they fall back to __idle__).
DAY = date(2026, 11, 7)
RESULTS = Path(__file__).resolve().parent / "results"


def _results() -> Path:
    """bench/results, or BENCH_RESULTS (a folder elsewhere: trial runs that must not replace the reports)."""
    return Path(os.environ.get("BENCH_RESULTS") or RESULTS)


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
    """Seconds to materialize one new day of `rows` with `history_days` of history in the warehouse."""
    work = root / f"incremental-{history_days}"
    focus_dir = work / "focus"
    focus_dir.mkdir(parents=True)
    # The template holds DAY's charges: `_history_files` shifts it back k days into the file named DAY - k.
    history_template = generate(history_rows, DAY, work / "history-template.parquet")
    _history_files(history_template.rename(work / "tpl.parquet"), focus_dir, DAY, history_days)
    history_start = DAY - timedelta(days=history_days)
    mlflow_store(work, [history_start + timedelta(days=i) for i in range(history_days + 1)])
    _pipeline(work, focus_dir, history_start, DAY - timedelta(days=1))
    generate(rows, DAY, focus_dir / f"{DAY.isoformat()}.parquet")
    t = time.monotonic()
    records = _pipeline(work, focus_dir, DAY, DAY)
    seconds = time.monotonic() - t
    busy = {stage: round(total, 2) for stage, (_, _, total) in step_windows(records).items() if stage != "*"}
    return {"history_days": history_days, "seconds": round(seconds, 2), "stage_seconds": busy}


def _commit() -> str:
    try:  # "-dirty" when the working tree differs from the commit: the figures are then not the commit's
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _pandas_baseline(path: Path, rows: int, max_rows: int) -> dict:
    """The baseline in a child process: its own wall time and peak RSS, or why it did not run."""
    if rows > max_rows:
        return {"skipped": f"{rows:,} rows > BENCH_PANDAS_MAX_ROWS={max_rows:,}: pandas holds every row in "
                           "memory (about 2 KB a row here), more than this machine has"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "bench.pandas_baseline", str(path)], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    if done.returncode:
        return {"skipped": f"the baseline failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {"rows_per_s": round(rows / out["seconds"]) if out["seconds"] else None, "seconds": out["seconds"],
            "peak_rss_mb": out["peak_rss_mb"]}  # fmt: skip


def _native_shapes(records: int) -> dict:
    """Seconds to normalize `records` Cost Explorer groups and BigQuery export rows (the production code)."""
    from decimal import Decimal

    from bench.generate_native import billing_export_rows, cost_explorer_pages
    from mlcost_pipeline.normalize.aws_cost_explorer import normalize_cost_explorer
    from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export

    out = {}
    shapes = (("cost_explorer", cost_explorer_pages, normalize_cost_explorer),
              ("bigquery_export", billing_export_rows, normalize_billing_export))
    for name, generate_records, normalize in shapes:
        # As landed: JSON text parsed with exact decimals (raw_landing.read_payloads).
        payloads = [json.loads(json.dumps(p), parse_float=Decimal) for _, p in generate_records(records, DAY)]
        t = time.perf_counter()
        frame = normalize(payloads, datetime.combine(DAY, datetime.min.time()))
        seconds = time.perf_counter() - t
        out[name] = {"records": records, "rows": frame.height, "seconds": round(seconds, 2),
                     "rows_per_s": round(frame.height / seconds) if seconds else None}  # fmt: skip
    return out


def _input(work: Path, rows: int) -> tuple[Path, dict]:
    focus_dir = work / "focus"
    focus_dir.mkdir(parents=True)
    t = time.monotonic()
    path = generate(rows, DAY, focus_dir / f"{DAY.isoformat()}.parquet")
    seconds = time.monotonic() - t
    columns = len(duckdb.execute("DESCRIBE SELECT * FROM read_parquet($p)", {"p": str(path)}).fetchall())
    return path, {"seconds": round(seconds, 2), "rows_per_s": round(rows / seconds), "columns": columns,
                  "bytes": path.stat().st_size, "shape": floor_steps.input_shape(path)}  # fmt: skip


def _pipeline_runs(root: Path, path: Path, rows: int, floors: dict | None) -> dict:
    """The default run, then the capped and profiled ones when asked for; each on a warehouse of its own."""
    out = {}
    runs = [("default", None, None)]
    if os.environ.get("BENCH_MEMORY_LIMIT", "").strip():
        runs.append(("capped", os.environ["BENCH_MEMORY_LIMIT"].strip(), None))
    if os.environ.get("BENCH_PROFILE", "0") == "1":
        runs.append(("profile", None, root / "profile-out"))
    for name, limit, profile_dir in runs:
        work = root / f"pipeline-{name}"
        mlflow_store(work, [DAY])
        out[name] = materialize(work, path.parent, DAY, rows, memory_limit=limit, profile_dir=profile_dir)
        out[name]["vs_floors"] = vs_floors(out[name], floors)
    if "profile" in out:
        target = _results() / f"profile-{rows}"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        files = [f for f in sorted((root / "profile-out").iterdir()) if f.suffix in (".txt", ".json")]
        for f in files:  # the text summaries only; python.prof (binary) stays out of the results folder
            shutil.copy(f, target / f.name)
        out["profile"]["files"] = [str(_shown(target / f.name)) for f in files]
    return out


def run(rows: int, history_rows: int, keep: bool = False) -> dict:
    root = Path(tempfile.mkdtemp(prefix="mlcost-bench-"))
    try:
        path, shape = _input(root / "input", rows)
        floors = None
        if os.environ.get("BENCH_FLOORS", "1") != "0":
            floors = floor_steps.measure(path, floor_steps.rules_tag_keys())
        runs = _pipeline_runs(root, path, rows, floors)
        default = runs["default"]
        max_rows = int(os.environ.get("BENCH_PANDAS_MAX_ROWS", "3000000"))
        baseline = _pandas_baseline(path, rows, max_rows)
        native = _native_shapes(min(rows, int(os.environ.get("BENCH_NATIVE_RECORDS", "50000"))))
        if os.environ.get("BENCH_INCREMENTAL", "1") == "0":  # quick looks while optimizing; never in reports
            one = year = {"history_days": None, "seconds": float("nan")}
        else:
            one = _incremental(root, rows, history_rows, 1)
            year = _incremental(root, rows, history_rows, 365)
        cur_rows = int(os.environ.get("BENCH_CUR_ROWS", "1000000"))
        cur = cur_stage(root, cur_rows, DAY) if cur_rows > 0 else {"skipped": "BENCH_CUR_ROWS=0"}
        return {
            "rows": rows,
            "day": DAY.isoformat(),
            "cores": os.cpu_count(),
            "commit": _commit(),
            "command": _command(rows),
            "input": shape,
            "floors": floors,
            "default": default,
            "capped": runs.get("capped"),
            "profile": runs.get("profile"),
            # the default run's figures, under the names earlier reports used
            "stages": default["stages"],
            "end_to_end": default["end_to_end"],
            "duckdb_memory_limit": default["memory_limit"],
            "pandas_baseline": baseline,
            "speedup_vs_pandas": round(baseline["seconds"] / default["end_to_end"]["seconds"], 2)
            if "seconds" in baseline else None,
            "native_shapes": native,
            "incremental": {"history_1_day": one, "history_365_days": year,
                            "history_rows_per_day": history_rows,
                            "ratio": round(year["seconds"] / one["seconds"], 2)},  # fmt: skip
            "cur_stage": cur,
        }
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _shown(path: Path) -> Path:
    repo = RESULTS.parent.parent
    return path.relative_to(repo) if path.is_relative_to(repo) else path


def _command(rows: int) -> str:
    names = ("BENCH_MEMORY_LIMIT", "BENCH_PROFILE", "BENCH_FLOORS", "BENCH_INCREMENTAL", "BENCH_CUR_ROWS",
             "BENCH_HISTORY_ROWS", "BENCH_PANDAS_MAX_ROWS", "BENCH_NATIVE_RECORDS")
    knobs = [f"{k}={os.environ[k]}" for k in names if os.environ.get(k)]
    return " ".join([f"BENCH_ROWS={rows}", *knobs, "make bench"])


def main() -> None:
    # The bench measures what a user gets by default; a cap in the caller's shell would hide that.
    if os.environ.pop(MEMORY_LIMIT_ENV, None):
        print(f"bench: {MEMORY_LIMIT_ENV} is ignored here (the runs use a user's default); "
              "BENCH_MEMORY_LIMIT=<cap> adds a capped run", file=sys.stderr)  # fmt: skip
    rows = int(os.environ.get("BENCH_ROWS", "200000"))
    history_rows = int(os.environ.get("BENCH_HISTORY_ROWS", "2000"))
    report = run(rows, history_rows)
    report["targets"] = targets(report)
    results = _results()
    results.mkdir(parents=True, exist_ok=True)
    for name in ("latest", f"rows-{rows}"):  # latest, and the last run of each size (10M, 30M side by side)
        (results / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (results / f"{name}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
