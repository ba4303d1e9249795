"""The benchmark: FOCUS Parquet -> raw landing -> core.focus_costs -> allocation -> marts, on the real code path.

Every stage runs as the Dagster assets run (one in-process single-run backfill through `run_range`), with the
sources the pipeline uses in production (`MLCOST_SOURCES=focus,mlflow`) and the repo's rules file. Stage times come
from Dagster's step events; peak RSS from sampling the process tree's /proc entries. In the same run, right after
the pipeline, the pandas baseline (bench/pandas_baseline.py) runs on the same file in a child process of its own
(so neither peak includes the other's memory; skipped above BENCH_PANDAS_MAX_ROWS, default 3M: it needs ~3 GB a million rows, so 10M would not
fit in memory); then the other native shapes (Cost Explorer pages, BigQuery export rows: bench/generate_native.py)
are normalized, and the incremental check runs (one new day with 1 and with 365 days of history). Last, the
CUR stage times the production export reader on an AWS CUR 2.0 Parquet file (CUR -> FOCUS conversion, checks,
insert) beside the same reader on a FOCUS Parquet file of as many rows (BENCH_CUR_ROWS, default 1,000,000; 0
skips it).
Results: bench/results/latest.json and latest.md.

    make bench                         # BENCH_ROWS=200000 by default
    BENCH_ROWS=10000000 make bench     # the large run
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
    # The template holds DAY's charges: `_history_files` shifts it back k days into the file named DAY - k.
    history_template = generate(history_rows, DAY, work / "history-template.parquet")
    _history_files(history_template.rename(work / "tpl.parquet"), focus_dir, DAY, history_days)
    history_start = DAY - timedelta(days=history_days)
    _mlflow_store(work, [history_start + timedelta(days=i) for i in range(history_days + 1)])
    _pipeline(work, focus_dir, history_start, DAY - timedelta(days=1))
    generate(rows, DAY, focus_dir / f"{DAY.isoformat()}.parquet")
    t = time.monotonic()
    records = _pipeline(work, focus_dir, DAY, DAY)
    seconds = time.monotonic() - t
    busy = {stage: round(total, 2) for stage, (_, _, total) in _step_windows(records).items()}
    return {"history_days": history_days, "seconds": round(seconds, 2), "stage_seconds": busy}


def _cur_stage(root: Path, rows: int) -> dict:
    """The export reader on `rows` CUR 2.0 line items (bench/generate_cur.py) and on `rows` FOCUS line items.

    Each file goes through what the pipeline runs per file and day: the check pass (`summarize_file`, the
    landing step's full read with every row check) and the insert into a core.focus_costs-shaped table in a
    DuckDB file (`insert_focus_export`, the normalize step), on a connection configured as the warehouse
    writer's. The CUR file is converted to FOCUS inside both, in SQL. Same process, one file after the other.
    """
    from bench.generate_cur import generate as generate_cur
    from mlcost_pipeline.normalize.focus_export import insert_focus_export, summarize_file
    from mlcost_pipeline.normalize.focus_schema import create_table_sql
    from mlcost_pipeline.warehouse.connection import write_connection

    work = root / "cur-stage"
    exports = work / "exports"  # the folder MLCOST_FOCUS_PATH points at for the pipeline run
    exports.mkdir(parents=True)
    files = {"cur2_to_focus": generate_cur(rows, DAY, exports / f"{DAY.isoformat()}.parquet"),
             "focus": generate(rows, DAY, work / "focus.parquet")}  # fmt: skip
    ingested = datetime.combine(DAY + timedelta(days=1), datetime.min.time())
    out: dict = {"rows_in": rows}
    for name, path in files.items():
        with write_connection(work / f"{name}.duckdb") as con, RssSampler() as sampler:
            con.execute(create_table_sql("focus_costs"))
            t0 = time.monotonic()
            summary = summarize_file(con, str(path), DAY, DAY + timedelta(days=1))
            t1 = time.monotonic()
            con.execute("BEGIN")
            n = insert_focus_export(con, "focus_costs", [str(path)], DAY, DAY + timedelta(days=1), ingested)
            con.execute("COMMIT")
            t2 = time.monotonic()
        out[name] = {
            "dataset": summary.dataset, "rows_out": n, "quality_counts": len(summary.quality),
            "check": {"seconds": round(t1 - t0, 2), "rows_per_s": round(rows / (t1 - t0))},
            "insert": {"seconds": round(t2 - t1, 2), "rows_per_s": round(rows / (t2 - t1))},
            "rows_per_s": round(rows / (t2 - t0)), "seconds": round(t2 - t0, 2),
            "peak_rss_mb": sampler.peak(),
        }  # fmt: skip
    out["cur_vs_focus"] = round(out["cur2_to_focus"]["rows_per_s"] / out["focus"]["rows_per_s"], 2)
    out["convert_only"] = _convert_only(files["cur2_to_focus"], rows)
    # The same CUR file through the whole pipeline (detected by its columns, as a user's export folder is).
    stages, end_to_end = _timed_pipeline(work, exports, rows)
    out["pipeline"] = {"stages": stages, "end_to_end": end_to_end}
    return out


def _convert_only(path: Path, rows: int) -> dict:
    """The CUR -> FOCUS SELECT alone (every converted column consumed, nothing checked or written): the
    converter's own cost, to compare with the FinOps Foundation converter's ~100k rows/s."""
    from mlcost_pipeline.normalize.aws_cur_sql import convert
    from mlcost_pipeline.normalize.focus_export_sql import scan_sql

    con = duckdb.connect()
    try:
        scan, file = scan_sql(str(path)), {"path": str(path)}
        described = con.execute(f"DESCRIBE SELECT * EXCLUDE (__row) FROM {scan}", file)  # noqa: S608
        converted = convert(scan, [(r[0], r[1]) for r in described.fetchall()])
        params = {**file, **converted.params}
        described = con.execute(f"DESCRIBE SELECT * FROM ({converted.sql})", params)  # noqa: S608
        names = [r[0] for r in described.fetchall()]
        counts = ", ".join(f'count("{n}")' for n in names)
        t = time.monotonic()
        con.execute(f"SELECT {counts} FROM ({converted.sql})", params).fetchall()  # noqa: S608
        seconds = time.monotonic() - t
    finally:
        con.close()
    return {"seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def _commit() -> str:
    try:  # "-dirty" when the working tree differs from the commit: the figures are then not the commit's
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _pandas_baseline(path: Path, rows: int, max_rows: int) -> dict:
    """The baseline in a child process: its own wall time and peak RSS, or why it did not run."""
    if rows > max_rows:
        return {"skipped": f"{rows:,} rows > BENCH_PANDAS_MAX_ROWS={max_rows:,}: pandas holds every row in memory "
                           "(about 2 KB a row here), more than this machine has"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "bench.pandas_baseline", str(path)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    if done.returncode:
        return {"skipped": f"the baseline failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {"rows_per_s": round(rows / out["seconds"]) if out["seconds"] else None, "seconds": out["seconds"],
            "peak_rss_mb": out["peak_rss_mb"]}  # fmt: skip


def _native_shapes(records: int) -> dict:
    """Seconds to normalize `records` Cost Explorer groups and BigQuery export rows (production normalizers)."""
    from decimal import Decimal

    from bench.generate_native import billing_export_rows, cost_explorer_pages
    from mlcost_pipeline.normalize.aws_cost_explorer import normalize_cost_explorer
    from mlcost_pipeline.normalize.gcp_billing_export import normalize_billing_export

    out = {}
    for name, generate_records, normalize in (("cost_explorer", cost_explorer_pages, normalize_cost_explorer),
                                              ("bigquery_export", billing_export_rows, normalize_billing_export)):
        # As landed: JSON text parsed with exact decimals (raw_landing.read_payloads).
        payloads = [json.loads(json.dumps(p), parse_float=Decimal) for _, p in generate_records(records, DAY)]
        t = time.perf_counter()
        frame = normalize(payloads, datetime.combine(DAY, datetime.min.time()))
        seconds = time.perf_counter() - t
        out[name] = {"records": records, "rows": frame.height, "seconds": round(seconds, 2),
                     "rows_per_s": round(frame.height / seconds) if seconds else None}  # fmt: skip
    return out


def _timed_pipeline(work: Path, exports: Path, rows: int) -> tuple[dict, dict]:
    """One in-process run over DAY on `exports`: each stage's busy time, rows/s and peak, and the whole run's."""
    _mlflow_store(work, [DAY])
    with RssSampler() as sampler:
        t0 = time.monotonic()
        records = _pipeline(work, exports, DAY, DAY)
        t1 = time.monotonic()
    stages = {}
    for stage, (a, b, busy) in sorted(_step_windows(records).items(), key=lambda kv: kv[1][0]):
        stages[stage] = {"rows_per_s": round(rows / busy) if busy else None, "seconds": round(busy, 2),
                         "peak_rss_mb": sampler.peak(a, b)}  # fmt: skip
    end_to_end = {"rows_per_s": round(rows / (t1 - t0)), "seconds": round(t1 - t0, 2),
                  "peak_rss_mb": sampler.peak(t0, t1)}  # fmt: skip
    return stages, end_to_end


def run(rows: int, history_rows: int, keep: bool = False) -> dict:
    root = Path(tempfile.mkdtemp(prefix="mlcost-bench-"))
    try:
        work = root / "main"
        focus_dir = work / "focus"
        focus_dir.mkdir(parents=True)
        generate(rows, DAY, focus_dir / f"{DAY.isoformat()}.parquet")
        stages, end_to_end = _timed_pipeline(work, focus_dir, rows)
        max_rows = int(os.environ.get("BENCH_PANDAS_MAX_ROWS", "3000000"))
        baseline = _pandas_baseline(focus_dir / f"{DAY.isoformat()}.parquet", rows, max_rows)
        native = _native_shapes(min(rows, int(os.environ.get("BENCH_NATIVE_RECORDS", "50000"))))
        if os.environ.get("BENCH_INCREMENTAL", "1") == "0":  # for quick looks while optimizing; never in reports
            one = year = {"history_days": None, "seconds": float("nan")}
        else:
            one = _incremental(root, rows, history_rows, 1)
            year = _incremental(root, rows, history_rows, 365)
        cur_rows = int(os.environ.get("BENCH_CUR_ROWS", "1000000"))
        cur = _cur_stage(root, cur_rows) if cur_rows > 0 else {"skipped": "BENCH_CUR_ROWS=0"}
        return {
            "rows": rows,
            "cores": os.cpu_count(),
            "commit": _commit(),
            "command": f"BENCH_ROWS={rows} make bench",
            "duckdb_memory_limit": os.environ.get("MLCOST_DUCKDB_MEMORY_LIMIT") or "DuckDB default (80% of RAM)",
            "stages": stages,
            "end_to_end": end_to_end,
            "pandas_baseline": baseline,
            "speedup_vs_pandas": round(baseline["seconds"] / end_to_end["seconds"], 2) if "seconds" in baseline
            else None,
            "native_shapes": native,
            "incremental": {"history_1_day": one, "history_365_days": year, "history_rows_per_day": history_rows,
                            "ratio": round(year["seconds"] / one["seconds"], 2)},  # fmt: skip
            "cur_stage": cur,
        }
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def targets(r: dict) -> list[dict]:
    """Each target of issue 7 with this run's figure; `met` is None where the target is for another size."""
    e2e, inc, speed, rows = r["end_to_end"], r["incremental"], r["speedup_vs_pandas"], r["rows"]
    ratio = inc["ratio"]
    return [
        {"target": "end to end >= 1,000,000 rows/s at 10M rows", "measured": e2e["rows_per_s"],
         "met": e2e["rows_per_s"] >= 1_000_000 if rows >= 10_000_000 else None},
        {"target": "peak RSS <= 2.5 GiB at 30M rows", "measured": e2e["peak_rss_mb"],
         "met": e2e["peak_rss_mb"] <= 2.5 * 1024 if rows >= 30_000_000 else None},
        {"target": ">= 10x the pandas baseline", "measured": speed, "met": speed >= 10 if speed is not None else None},
        {"target": "incremental, 365 vs 1 day of history <= 1.5x", "measured": ratio,
         "met": ratio <= 1.5 if ratio == ratio else None},  # NaN: not measured in this run
    ]  # fmt: skip


def markdown(r: dict) -> str:
    lines = [f"Benchmark: {r['rows']:,} FOCUS line items, {r['cores']} cores, commit {r['commit']} "
             f"(`{r['command']}`), DuckDB memory limit {r['duckdb_memory_limit']}", "", "| stage | seconds | rows/s | peak RSS (MiB) |", "|---|---:|---:|---:|"]
    base = r["pandas_baseline"]
    rows = [*r["stages"].items(), ("end to end", r["end_to_end"])]
    if "seconds" in base:
        rows.append(("pandas baseline (own process)", base))
    for name, s in rows:
        lines.append(f"| {name} | {s['seconds']} | {s['rows_per_s']:,} | {s['peak_rss_mb']} |")
    inc = r["incremental"]
    speed = (f"End to end vs the pandas baseline, same input, same run: {r['speedup_vs_pandas']}x."
             if r["speedup_vs_pandas"] is not None else f"Pandas baseline not run: {base['skipped']}.")
    lines += ["", speed,
              f"One new day with 365 days of history ({inc['history_rows_per_day']:,} rows/day) took "
              f"{inc['history_365_days']['seconds']} s, with 1 day {inc['history_1_day']['seconds']} s: "
              f"ratio {inc['ratio']}."]  # fmt: skip
    native = r.get("native_shapes") or {}
    if native:
        lines += ["", "Other native shapes, normalizer only: " + "; ".join(
            f"{name} {s['rows']:,} rows in {s['seconds']} s ({s['rows_per_s']:,} rows/s)" for name, s in native.items())]
    lines += _cur_markdown(r.get("cur_stage") or {})
    lines += ["", "| target | this run | met |", "|---|---:|---|"]
    verdict = {True: "yes", False: "no", None: "not at this size / not run"}
    lines += [f"| {t['target']} | {t['measured']} | {verdict[t['met']]} |" for t in targets(r)]
    return "\n".join(lines) + "\n"


def _cur_markdown(cur: dict) -> list[str]:
    if not cur or "skipped" in cur:
        return ["", f"CUR stage not run ({cur.get('skipped', 'no figures')})."] if cur else []
    lines = ["", f"Export reader, {cur['rows_in']:,} line items per file, check pass + insert (same process, "
             "same connection settings; the CUR file is converted to FOCUS in SQL inside both steps):", "",
             "| input | rows out | check s | check rows/s | insert s | insert rows/s | total rows/s | "
             "peak RSS (MiB) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name in ("cur2_to_focus", "focus"):
        s = cur[name]
        check, insert = s["check"], s["insert"]
        lines.append(f"| {name} ({s['dataset']}) | {s['rows_out']:,} | {check['seconds']} | "
                     f"{check['rows_per_s']:,} | {insert['seconds']} | {insert['rows_per_s']:,} | "
                     f"{s['rows_per_s']:,} | {s['peak_rss_mb']} |")
    conv = cur["convert_only"]
    lines += ["", f"CUR -> FOCUS vs FOCUS, rows/s: {cur['cur_vs_focus']}x. The conversion SELECT alone: "
              f"{conv['seconds']} s, {conv['rows_per_s']:,} rows/s."]
    pipeline = cur.get("pipeline")
    if pipeline:
        runs = [*pipeline["stages"].items(), ("end to end", pipeline["end_to_end"])]
        lines += ["", f"The CUR 2.0 file through the whole pipeline ({cur['rows_in']:,} line items):", "",
                  "| stage | seconds | rows/s | peak RSS (MiB) |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {s['seconds']} | {s['rows_per_s']:,} | {s['peak_rss_mb']} |"
                  for name, s in runs]
    return lines


def main() -> None:
    # DuckDB's cap for the warehouse writer (warehouse/connection.py): without one DuckDB caches up to 80% of RAM
    # (17 GB at 10M rows here); with it the work goes out of core and the peak stays near the cap.
    os.environ.setdefault("MLCOST_DUCKDB_MEMORY_LIMIT", "1.5GB")
    rows = int(os.environ.get("BENCH_ROWS", "200000"))
    history_rows = int(os.environ.get("BENCH_HISTORY_ROWS", "2000"))
    report = run(rows, history_rows)
    report["targets"] = targets(report)
    RESULTS.mkdir(exist_ok=True)
    for name in ("latest", f"rows-{rows}"):  # latest, and the last run of this size (10M and 30M stay side by side)
        (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
