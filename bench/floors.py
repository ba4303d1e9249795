"""What this machine does with one FOCUS Parquet file, step by step: the floors a stage is measured against.

    python -m bench.floors FILE.parquet [--memory-limit 1.5GB] [--rules rules/allocation.yaml]

The repo's copy of the floors tool (../shared/tools/floors.py, outside the repo), with the same steps. Each
runs once, in one DuckDB connection on a scratch database file, over the same file (the bench calls `measure`
on its own input right before the pipeline run, in its own process: machines are noisy, compare ratios from
one run):
  scan      sum of one money column: the read limit
  cells     group to allocation keys with summed costs and a line count: day, provider, billing and sub
            account, service, region, resource, charge category, currency, the Azure resource group when
            the file has one, and every tag key the rules read (each dimension's keys, first present
            wins; the pools' tag keys; the run-id keys), parsed once from the lower-cased Tags JSON, as
            the allocation matches keys
  narrow    12 columns plus a cheap stable line id (file hash, row position) into a DuckDB table
  wide      every column into a DuckDB table (what copying line items costs)
  parquet   every column re-encoded to Parquet (zstd)
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb

STEPS = ("scan", "cells", "narrow", "wide", "parquet")
KEYS = ("ProviderName", "BillingAccountId", "SubAccountId", "ServiceName", "RegionId", "ResourceId",
        "ChargeCategory", "BillingCurrency")  # fmt: skip
OPTIONAL_KEYS = ("x_ResourceGroupName",)


def rules_tag_keys(rules_path: Path | str | None = None) -> dict[str, list[str]]:
    """The tag keys the allocation reads, as it reads them: cell key name -> keys, first present wins."""
    from mlcost_pipeline.allocation.rules import load_rules

    rules = load_rules(rules_path).rules
    out = {f"dim_{name}": [k.lower() for k in dim.tag_keys] for name, dim in rules.dimensions.items()}
    for pool in rules.pools:
        for key in pool.select.tags:
            out.setdefault(f"tag_{key.strip().lower()}", [key.strip().lower()])
    for key in rules.runs.direct_tag_keys:
        out.setdefault(f"tag_{key.strip().lower()}", [key.strip().lower()])
    return out


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _steps(tmp: str, keys: list[str], tag_keys: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, dict]]:
    """step -> (SQL, its parameters); $path is bound by the caller."""
    flat = list(dict.fromkeys(k for group in tag_keys.values() for k in group))
    position = {k: i + 1 for i, k in enumerate(flat)}
    tag_cols = "".join(
        f", coalesce({', '.join(f't[{position[k]}]' for k in group)}) AS \"{name}\""
        for name, group in tag_keys.items()
    )  # fmt: skip
    parsed = "json_extract_string(lower(Tags), $tag_paths)" if flat else "CAST([] AS VARCHAR[])"
    key_list = ", ".join(f'"{k}"' for k in keys)
    out = str(Path(tmp) / "out.parquet").replace("'", "''")
    return {
        "scan": ("SELECT sum(BilledCost) FROM read_parquet($path)", {}),
        "cells": (
            f"CREATE TABLE cells AS SELECT CAST(ChargePeriodStart AS DATE) AS d, {key_list}{tag_cols}, "
            "sum(BilledCost) AS b, sum(EffectiveCost) AS e, count(*) AS lines "
            f"FROM (SELECT *, {parsed} AS t FROM read_parquet($path)) GROUP BY ALL",
            {"tag_paths": [_json_path(k) for k in flat]} if flat else {},
        ),
        "narrow": (
            f"CREATE TABLE narrow AS SELECT $file_id AS file_id, file_row_number AS row_no, "
            f"CAST(ChargePeriodStart AS DATE) AS d, {', '.join(f'{chr(34)}{k}{chr(34)}' for k in KEYS)}, "
            "BilledCost, EffectiveCost FROM read_parquet($path, file_row_number = true)",
            {},
        ),
        "wide": ("CREATE TABLE wide AS SELECT * FROM read_parquet($path)", {}),
        "parquet": (
            f"COPY (SELECT * FROM read_parquet($path)) TO '{out}' (FORMAT parquet, COMPRESSION zstd)",
            {},
        ),
    }


def measure(
    path: Path | str,
    tag_keys: Mapping[str, Sequence[str]] | None = None,
    memory_limit: str = "1.5GB",
    steps: Sequence[str] = STEPS,
) -> dict:
    """Each step once on `path`: {"rows", "columns", "steps": {step: {"seconds", "rows_per_s"}}, ...}."""
    path = str(path)
    tag_keys = dict(tag_keys or {})
    file_id = _digest(path)  # outside the timed steps: a line id needs it once per file
    with tempfile.TemporaryDirectory(prefix="mlcost-floors-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "floors.duckdb"), config={"memory_limit": memory_limit})
        try:
            con.execute("SET enable_progress_bar = false")
            rows = con.execute("SELECT count(*) FROM read_parquet($path)", {"path": path}).fetchall()[0][0]
            cols = [
                r[0]
                for r in con.execute("DESCRIBE SELECT * FROM read_parquet($path)", {"path": path}).fetchall()
            ]
            keys = [k for k in (*KEYS, *OPTIONAL_KEYS) if k in cols]
            plan = _steps(tmp, keys, tag_keys if "Tags" in cols else {})
            result: dict = {"rows": rows, "columns": len(cols), "memory_limit": memory_limit, "steps": {},
                            "duckdb": duckdb.__version__, "cell_key": ["day", *keys, *tag_keys]}  # fmt: skip
            for name in steps:
                sql, params = plan[name]
                params = {"path": path, **params, **({"file_id": file_id} if name == "narrow" else {})}
                t = time.perf_counter()
                con.execute(sql, params).fetchall()
                seconds = time.perf_counter() - t
                result["steps"][name] = {"seconds": round(seconds, 3), "rows_per_s": round(rows / seconds)}
                if name == "cells":
                    cells = con.execute("SELECT count(*) FROM cells").fetchall()[0][0]
                    result["cells"], result["rows_per_cell"] = cells, round(rows / max(cells, 1), 2)
        finally:
            con.close()
    return result


def input_shape(path: Path | str, project_keys: Sequence[str] = ("project", "proj")) -> dict:
    """What the file holds, read from the file: rows by charge period length, hourly resources (usage rows
    of one hour; commitment purchase and unused lines apart) and their rows, commitment lines, tags (untagged
    rows, distinct tag sets, rows per spelling of the project keys)."""
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        src = {"path": str(path)}
        one_hour = "ChargePeriodEnd - ChargePeriodStart = INTERVAL 1 HOUR"
        commitment = ("CommitmentDiscountId IS NOT NULL AND (ChargeCategory = 'Purchase' "
                      "OR CommitmentDiscountStatus = 'Unused')")  # fmt: skip
        resource = f"{one_hour} AND NOT coalesce({commitment}, false)"
        names = (
            "rows",
            "hourly_rows",
            "hourly_resources",
            "hourly_resource_rows",
            "daily_rows",
            "commitment_rows",
            "untagged_rows",
            "tag_sets",
            "providers",
            "sub_accounts",
            "regions",
        )
        values = con.execute(
            f"SELECT count(*), count(*) FILTER ({one_hour}), count(DISTINCT ResourceId) FILTER ({resource}), "
            f"count(ResourceId) FILTER ({resource}), "
            "count(*) FILTER (ChargePeriodEnd - ChargePeriodStart = INTERVAL 1 DAY), "
            f"count(*) FILTER ({commitment}), count(*) FILTER (Tags IS NULL), count(DISTINCT Tags), "
            "count(DISTINCT ProviderName), count(DISTINCT SubAccountId), count(DISTINCT RegionId) "
            "FROM read_parquet($path)", src).fetchall()[0]  # fmt: skip
        shape = dict(zip(names, values, strict=True))
        spellings = con.execute(
            "SELECT k, count(*) FROM (SELECT unnest(json_keys(Tags)) AS k FROM read_parquet($path)) "
            "WHERE list_contains($keys, lower(k)) GROUP BY k ORDER BY k",
            {**src, "keys": list(project_keys)},
        ).fetchall()
    finally:
        con.close()
    shape["rows_per_hourly_resource"] = round(
        shape["hourly_resource_rows"] / max(shape["hourly_resources"], 1), 2
    )
    shape["project_key_rows"] = dict(spellings)
    return shape


def render(result: dict) -> str:
    lines = [
        f"{result['rows']:,} rows, {result['columns']} columns, DuckDB {result['duckdb']}, "
        f"memory_limit {result['memory_limit']}"
    ]
    for name, s in result["steps"].items():
        extra = (
            f"  ({result['cells']:,} cells, {result['rows_per_cell']} lines per cell)"
            if name == "cells"
            else ""
        )
        lines.append(f"{name:8s} {s['rows_per_s']:>14,} rows/s  {s['seconds']:8.2f} s{extra}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--memory-limit", default="1.5GB")
    ap.add_argument(
        "--rules",
        default=None,
        help="rules file whose tag keys the cells step groups by (default: the repo's)",
    )
    a = ap.parse_args()
    print(render(measure(a.file, rules_tag_keys(a.rules), a.memory_limit)))


if __name__ == "__main__":
    main()
