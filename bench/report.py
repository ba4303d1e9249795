"""The bench's report: each target of issue 14 with this run's figure, and latest.md (bench/run.py writes).

Each pipeline stage is shown beside the floor it is compared with, measured on the same input in the same run
(bench/floors.py): land against `scan` (reading the file), normalize against `narrow` (writing a line table),
allocate, marts and end to end against `cells` (grouping the lines to the allocation's keys).
"""

from __future__ import annotations

FLOOR_OF = {
    "land": "scan",
    "normalize": "narrow",
    "allocate": "cells",
    "marts": "cells",
    "end to end": "cells",
}
GIB = 1024


def vs_floors(run: dict, floors: dict | None) -> dict[str, dict]:
    """stage -> {"floor", "floor_rows_per_s", "of_floor"}: the stage's rows/s as a share of its floor's."""
    if not floors or "steps" not in floors:
        return {}
    out = {}
    for stage, s in [*run["stages"].items(), ("end to end", run["end_to_end"])]:
        floor = FLOOR_OF.get(stage)
        step = floors["steps"].get(floor) if floor else None
        if step and s.get("rows_per_s"):
            out[stage] = {"floor": floor, "floor_rows_per_s": step["rows_per_s"],
                          "of_floor": round(s["rows_per_s"] / step["rows_per_s"], 4)}  # fmt: skip
    return out


def targets(r: dict) -> list[dict]:
    """Each target with this run's figure; `met` is None where it is for another size or was not run."""
    e2e, rows, speed, ratio = r["end_to_end"], r["rows"], r["speedup_vs_pandas"], r["incremental"]["ratio"]
    peak_gib = round(e2e["peak_rss_mb"] / GIB, 2)
    at = {10: rows >= 10_000_000, 30: rows >= 30_000_000}
    return [
        {"target": "end to end >= 1,000,000 line items/s at 10M (default settings)",
         "measured": e2e["rows_per_s"], "met": e2e["rows_per_s"] >= 1_000_000 if at[10] else None},
        {"target": "stretch: end to end >= 2,000,000 line items/s at 10M", "measured": e2e["rows_per_s"],
         "met": e2e["rows_per_s"] >= 2_000_000 if at[10] else None},
        {"target": "peak RSS <= 1.5 GiB at 10M, default settings (GiB)", "measured": peak_gib,
         "met": peak_gib <= 1.5 if at[10] and not at[30] else None},
        {"target": "peak RSS <= 2.5 GiB at 30M, default settings (GiB)", "measured": peak_gib,
         "met": peak_gib <= 2.5 if at[30] else None},
        {"target": ">= 10x the pandas baseline at 1M, same run", "measured": speed,
         "met": speed >= 10 if speed is not None and rows >= 1_000_000 else None},
        {"target": "incremental: one new day with 365 days of history <= 1.5x one with 1 day",
         "measured": ratio, "met": ratio <= 1.5 if ratio == ratio else None},  # NaN: not measured in this run
    ]  # fmt: skip


def _stage_rows(run: dict, floors: dict) -> list[str]:
    near = vs_floors(run, floors)
    lines = [
        "| stage | seconds | rows/s | peak RSS (MiB) | floor | floor rows/s | share of floor |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, s in [*run["stages"].items(), ("end to end", run["end_to_end"])]:
        f = near.get(name)
        floor = f"| {f['floor']} | {f['floor_rows_per_s']:,} | {f['of_floor']:.1%} |" if f else "| | | |"
        lines.append(f"| {name} | {s['seconds']} | {_rate(s)} | {s['peak_rss_mb']} {floor}")
    p = run["phases"]
    lines += ["", f"`{run['command']}` in its own process: {p['startup_s']} s before the first step "
              f"(interpreter, imports, definitions, Dagster's start), {p['steps_s']} s of steps, "
              f"{p['after_s']} s after the last (BI snapshot, summary). DuckDB memory limit of the warehouse "
              f"writer: {_limit(run['memory_limit'])}."]  # fmt: skip
    return lines


def _rate(s: dict) -> str:
    return f"{s['rows_per_s']:,}" if s.get("rows_per_s") else "-"


def _limit(m: dict) -> str:
    setting = (
        f"MLCOST_DUCKDB_MEMORY_LIMIT={m['setting']}" if m["setting"] else "MLCOST_DUCKDB_MEMORY_LIMIT unset"
    )
    return f"{setting}, DuckDB reports {m['effective']}"


def _input_lines(r: dict) -> list[str]:
    i, f = r["input"], r.get("floors") or {}
    s = i["shape"]
    spellings = ", ".join(f"`{k}` {v:,}" for k, v in s["project_key_rows"].items())
    cells = (
        f"{f['cells']:,} distinct cells (key: {', '.join(f['cell_key'])}), {f['rows_per_cell']} rows per cell"
        if "cells" in f
        else "cells not measured (BENCH_FLOORS=0)"
    )
    return [f"Input: {s['rows']:,} rows, {i['columns']} columns, {i['bytes'] / 2**20:.1f} MiB, generated "
            f"in {i['seconds']} s. {s['hourly_resources']:,} hourly resources "
            f"({s['rows_per_hourly_resource']} rows each), {s['hourly_rows']:,} hourly rows, "
            f"{s['daily_rows']:,} daily rows, {s['commitment_rows']:,} commitment purchase/unused rows; "
            f"{s['providers']} providers, {s['sub_accounts']} sub accounts, {s['regions']} regions; "
            f"{s['untagged_rows']:,} untagged rows, {s['tag_sets']:,} distinct tag sets, project key "
            f"spellings (rows): {spellings}. {cells}."]  # fmt: skip


def markdown(r: dict) -> str:
    lines = [
        f"Benchmark: {r['rows']:,} FOCUS line items of {r['day']}, {r['cores']} cores, commit {r['commit']} "
        f"(`{r['command']}`)",
        "",
    ]
    lines += _input_lines(r)
    floors = r.get("floors") or {}
    if floors.get("steps"):
        lines += [
            "",
            "Floors on the same file, same run (bench/floors.py, DuckDB memory_limit "
            f"{floors['memory_limit']}):",
            "",
            "| floor | rows/s | seconds |",
            "|---|---:|---:|",
        ]
        lines += [f"| {n} | {s['rows_per_s']:,} | {s['seconds']} |" for n, s in floors["steps"].items()]
    lines += ["", "The pipeline with a user's default settings:", "", *_stage_rows(r["default"], floors)]
    if r.get("capped"):
        lines += [
            "",
            f"Again with MLCOST_DUCKDB_MEMORY_LIMIT={r['capped']['memory_limit']['setting']} "
            "(BENCH_MEMORY_LIMIT), same input, fresh warehouse:",
            "",
            *_stage_rows(r["capped"], floors),
        ]
    if r.get("profile"):
        p = r["profile"]
        lines += [
            "",
            f"Profile (BENCH_PROFILE=1, a third run under cProfile and DuckDB's profiler, "
            f"{p['end_to_end']['seconds']} s with their overhead): {', '.join(p['files'])}.",
        ]
    base = r["pandas_baseline"]
    if "seconds" in base:
        lines += [
            "",
            f"pandas baseline (own process, same file): {base['seconds']} s, {base['rows_per_s']:,} rows/s, "
            f"peak {base['peak_rss_mb']} MiB; the pipeline end to end runs at {r['speedup_vs_pandas']}x its "
            "speed.",
        ]
    else:
        lines += ["", f"Pandas baseline not run: {base['skipped']}."]
    inc = r["incremental"]
    lines += ["", f"One new day with 365 days of history ({inc['history_rows_per_day']:,} rows/day) took "
              f"{inc['history_365_days']['seconds']} s, with 1 day {inc['history_1_day']['seconds']} s: "
              f"ratio {inc['ratio']}."]  # fmt: skip
    native = r.get("native_shapes") or {}
    if native:
        lines += [
            "",
            "Other native shapes, normalizer only: "
            + "; ".join(
                f"{name} {s['rows']:,} rows in {s['seconds']} s ({s['rows_per_s']:,} rows/s)"
                for name, s in native.items()
            ),
        ]
    lines += _cur_markdown(r.get("cur_stage") or {})
    lines += ["", "| target | this run | met |", "|---|---:|---|"]
    verdict = {True: "yes", False: "no", None: "not at this size / not run"}
    lines += [f"| {t['target']} | {t['measured']} | {verdict[t['met']]} |" for t in r["targets"]]
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
        lines.append(
            f"| {name} ({s['dataset']}) | {s['rows_out']:,} | {check['seconds']} | "
            f"{check['rows_per_s']:,} | {insert['seconds']} | {insert['rows_per_s']:,} | "
            f"{s['rows_per_s']:,} | {s['peak_rss_mb']} |"
        )
    conv = cur["convert_only"]
    lines += [
        "",
        f"CUR -> FOCUS vs FOCUS, rows/s: {cur['cur_vs_focus']}x. The conversion SELECT alone: "
        f"{conv['seconds']} s, {conv['rows_per_s']:,} rows/s.",
    ]
    pipeline = cur.get("pipeline")
    if pipeline:
        runs = [*pipeline["stages"].items(), ("end to end", pipeline["end_to_end"])]
        lines += [
            "",
            f"The CUR 2.0 file through `mlcost materialize` ({cur['rows_in']:,} line items):",
            "",
            "| stage | seconds | rows/s | peak RSS (MiB) |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| {name} | {s['seconds']} | {_rate(s)} | {s['peak_rss_mb']} |" for name, s in runs]
    return lines
