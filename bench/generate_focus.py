"""N FOCUS 1.2 line items for one UTC day as Parquet (zstd): the shape large organizations export.

The rows are the sample OCI export's rows for that day (mlcost_pipeline.sources.sample.focus_export), replicated
inside DuckDB with distinct resource ids (rows without one get a distinct description), scaled costs and a spread
of project tags (a quarter untagged, a slice on the shared GPU cluster), so every row goes through the same
reader, normalizer and rules as the demo's. Row groups of 122,880 rows (DuckDB's and Arrow's usual size; exports
written by Spark or Athena have groups of similar size), so readers can use every core.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import date
from pathlib import Path

import duckdb

from mlcost_pipeline.sources.sample import org
from mlcost_pipeline.sources.sample.focus_export import focus_csv

MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
TIMES = ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd")


def generate(n_rows: int, day: date, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.csv"
        template.write_bytes(focus_csv(day))
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        # ORDER BY i sorts every row: capped, DuckDB sorts out of core instead of holding 30M wide rows in memory.
        con.execute("SET memory_limit = '2GB'")
        con.execute(
            "CREATE TABLE tpl AS SELECT row_number() OVER () - 1 AS k, * "
            "FROM read_csv($p, all_varchar = true, header = true)",
            {"p": str(template)},
        )
        k = con.execute("SELECT count(*) FROM tpl").fetchall()[0][0]
        columns = [r[0] for r in con.execute("DESCRIBE tpl").fetchall() if r[0] != "k"]
        # 3 in 4 rows tagged with a project; 1 in 16 on the shared GPU cluster; the rest untagged.
        tags = (
            "CASE WHEN i % 16 = 0 THEN json_object('cluster', $cluster) "
            "WHEN i % 4 = 3 THEN NULL "
            "ELSE json_object(CASE WHEN i % 3 = 0 THEN 'Project' ELSE 'proj' END, $projects[(i // 4) % 8 + 1]) END"
        )
        exprs = []
        for c in columns:
            q = f'"{c}"'
            if c in MONEY:
                # Exact decimals in the file: a factor in [0.5, 1.5) per row, rounded to 6 places.
                exprs.append(f"CAST(CAST({q} AS DECIMAL(18,6)) * (0.5 + (i * 7919 % 1000) / 1000.0)::DECIMAL(18,3)"
                             f" AS DECIMAL(18,6)) AS {q}")
            elif c in TIMES:
                exprs.append(f"strptime({q}, '%Y-%m-%dT%H:%M:%SZ') AS {q}")
            elif c == "ResourceId":
                exprs.append(f"{q} || '-' || CAST(i AS VARCHAR) AS {q}")
            elif c == "ChargeDescription":
                # Rows without a resource (tax, egress) stay distinct charges too, as in a real export.
                exprs.append(f"CASE WHEN ResourceId IS NULL THEN {q} || ' #' || CAST(i AS VARCHAR) ELSE {q} END AS {q}")
            elif c == "Tags":
                exprs.append(f"{tags} AS {q}")
            else:
                exprs.append(q)
        con.execute(
            f"COPY (SELECT {', '.join(exprs)} FROM range($n) r(i) JOIN tpl ON tpl.k = i % $k ORDER BY i) "
            f"TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
            {"n": n_rows, "k": k, "cluster": org.SHARED_GPU_CLUSTER, "projects": list(org.PROJECTS)},
        )
        con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--day", type=date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(generate(args.rows, args.day, args.out))


if __name__ == "__main__":
    main()
