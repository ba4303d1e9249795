"""`python -m bench.profile_run OUT_DIR -- <mlcost arguments>`: mlcost under cProfile and DuckDB's profiler.

What the pipeline does is not changed: in this process only, `duckdb.connect` returns a thin proxy of the
connection whose `execute()` times each statement and turns on DuckDB's profiler (`enable_profiling =
'no_output'`: kept in memory, read back with `get_profiling_information`). Written into OUT_DIR:
- python-profile.txt: cProfile's top functions by cumulative and by own time; python.prof, the raw stats
  (`python -m pstats`, snakeviz);
- duckdb-statements.txt: time spent in `execute()` against the run's wall time, the statements slowest first
  (seconds, calls, the start of the SQL), then DuckDB's operator tree (time and rows per operator) of the
  slowest statements; duckdb-slowest.json, DuckDB's JSON profile of the slowest one.
A SELECT's rows fetched after `execute()` returns, and statements run through `con.sql()`, are not in the
statement times (the pipeline's large statements are INSERT ... SELECT and CREATE ... AS, which are).
"""

from __future__ import annotations

import cProfile
import heapq
import io
import json
import pstats
import re
import sys
import time
from pathlib import Path

import duckdb

KEEP_TREES = 5
TREE_MIN_SECONDS = 0.5
REPO = str(Path(__file__).resolve().parent.parent)


class StatementLog:
    def __init__(self) -> None:
        self.by_sql: dict[str, list[float]] = {}  # normalized SQL -> [seconds, calls]
        self.trees: list[
            tuple[float, int, str, str, str]
        ] = []  # min-heap: (seconds, n, sql, text tree, json)
        self.total = 0.0
        self._n = 0

    def add(self, sql: str, seconds: float, con: duckdb.DuckDBPyConnection) -> None:
        key = re.sub(r"\s+", " ", sql).strip()[:240]
        entry = self.by_sql.setdefault(key, [0.0, 0])
        entry[0] += seconds
        entry[1] += 1
        self.total += seconds
        if seconds >= TREE_MIN_SECONDS and (len(self.trees) < KEEP_TREES or seconds > self.trees[0][0]):
            try:
                tree, raw = (
                    con.get_profiling_information(format="text"),
                    con.get_profiling_information(format="json"),
                )
            except duckdb.Error:
                return
            self._n += 1
            item = (seconds, self._n, re.sub(r"\s+", " ", sql).strip()[:2000], tree, raw)
            (heapq.heappush if len(self.trees) < KEEP_TREES else heapq.heapreplace)(self.trees, item)


class ProfiledConnection:
    """Delegates everything to the DuckDB connection; `execute` is timed and its profile kept when slow."""

    def __init__(self, con: duckdb.DuckDBPyConnection, log: StatementLog) -> None:
        self._con, self._log = con, log
        con.execute("SET enable_profiling = 'no_output'")

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def __enter__(self) -> ProfiledConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._con.close()

    def execute(self, query: str, parameters: object = None, *args: object, **kwargs: object):
        t = time.perf_counter()
        result = self._con.execute(query, parameters, *args, **kwargs)
        self._log.add(query, time.perf_counter() - t, self._con)
        return result


def _install(log: StatementLog) -> None:
    connect = duckdb.connect

    def profiled_connect(*args: object, **kwargs: object) -> ProfiledConnection:
        return ProfiledConnection(connect(*args, **kwargs), log)

    duckdb.connect = profiled_connect


def _python_summary(profile: cProfile.Profile) -> str:
    out = io.StringIO()
    for order, limit in (("cumulative", 60), ("tottime", 40)):
        out.write(f"=== top {limit} by {order} time ===\n")
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(limit)
    return out.getvalue().replace(REPO + "/", "").replace(sys.prefix + "/", "<venv>/")


def _duckdb_summary(log: StatementLog, wall: float) -> str:
    lines = [
        f"wall time {wall:.2f} s; in DuckDB execute() {log.total:.2f} s ({log.total / wall:.0%}), "
        f"{sum(c for _, c in log.by_sql.values()):,} statements",
        "",
        "seconds  calls  statement",
    ]
    for sql, (seconds, calls) in sorted(log.by_sql.items(), key=lambda kv: -kv[1][0])[:40]:
        lines.append(f"{seconds:7.2f}  {calls:5d}  {sql}")
    for seconds, _, sql, tree, _ in sorted(log.trees, reverse=True):
        lines += ["", "=" * 100, f"{seconds:.2f} s: {sql}", tree]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        print("usage: python -m bench.profile_run OUT_DIR -- <mlcost arguments>", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    log = StatementLog()
    _install(log)
    from mlcost_pipeline.cli import main as mlcost

    profile = cProfile.Profile()
    t = time.perf_counter()
    try:
        code = profile.runcall(mlcost, argv[2:])
    except SystemExit as exc:  # argparse and the command's own exits
        code = exc.code if isinstance(exc.code, int) else 1
    wall = time.perf_counter() - t
    profile.dump_stats(out / "python.prof")
    (out / "python-profile.txt").write_text(_python_summary(profile))
    (out / "duckdb-statements.txt").write_text(_duckdb_summary(log, wall))
    if log.trees:
        (out / "duckdb-slowest.json").write_text(json.dumps(json.loads(max(log.trees)[4]), indent=1) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
