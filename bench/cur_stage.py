"""The CUR stage of the bench: the export reader and `mlcost materialize` on an AWS CUR 2.0 file.

The production reader (check pass and insert, the CUR file converted to FOCUS in SQL inside both) on `rows`
CUR 2.0 line items (bench/generate_cur.py) and on `rows` FOCUS line items, one file after the other in this
process; the conversion SELECT alone; then the same CUR file through the whole pipeline as a user runs it.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from bench.generate_focus import generate
from bench.pipeline_run import materialize, mlflow_store
from bench.rss import RssSampler


def cur_stage(root: Path, rows: int, day: date) -> dict:
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
    files = {"cur2_to_focus": generate_cur(rows, day, exports / f"{day.isoformat()}.parquet"),
             "focus": generate(rows, day, work / "focus.parquet")}  # fmt: skip
    ingested = datetime.combine(day + timedelta(days=1), datetime.min.time())
    out: dict = {"rows_in": rows}
    for name, path in files.items():
        with write_connection(work / f"{name}.duckdb") as con, RssSampler() as sampler:
            con.execute(create_table_sql("focus_costs"))
            t0 = time.monotonic()
            summary = summarize_file(con, str(path), day, day + timedelta(days=1))
            t1 = time.monotonic()
            con.execute("BEGIN")
            n = insert_focus_export(con, "focus_costs", [str(path)], day, day + timedelta(days=1), ingested)
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
    # The same CUR file through `mlcost materialize` (detected by its columns, as a user's export folder is).
    mlflow_store(work, [day])
    cli = materialize(work, exports, day, rows)
    out["pipeline"] = {"stages": cli["stages"], "end_to_end": cli["end_to_end"], "phases": cli["phases"]}
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
