"""The baseline the benchmark compares against: normalize + allocate written the straightforward pandas way.

Kept under bench/ only; `python -m bench.pandas_baseline FILE` runs it in a process of its own. It reads the same FOCUS Parquet, parses each row's Tags JSON, picks the project by the
same ordered, case-insensitive keys with the same normalization and aliases, splits shared-cluster cost evenly
among the day's projects, and sums per day, currency and project: what a FinOps engineer would write first.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pandas as pd

from mlcost_pipeline.allocation.rules import load_rules


def _project(tags: str | None, keys: list[str], aliases: dict[str, str]) -> str | None:
    if not isinstance(tags, str) or not tags:  # pandas 3 gives a missing string as NaN, not None
        return None
    parsed = {str(k).lower(): v for k, v in json.loads(tags).items()}
    for key in keys:
        value = parsed.get(key)
        if value is not None and str(value).strip():
            norm = re.sub(r"[_\s]+", "-", str(value).strip().lower())
            return aliases.get(norm, norm)
    return None


def normalize_and_allocate(path: Path, cluster: str = "gpu-shared") -> pd.DataFrame:
    rules = load_rules().rules.dimensions["project"]
    df = pd.read_parquet(path)
    df["EffectiveCost"] = df["EffectiveCost"].astype(float)
    df["x_ChargeDate"] = pd.to_datetime(df["ChargePeriodStart"]).dt.date
    df["project"] = [_project(t, rules.tag_keys, rules.aliases) for t in df["Tags"]]
    shared = df["Tags"].fillna("").str.contains(f'"cluster":"{cluster}"')
    direct = df[~shared].copy()
    direct["project"] = direct["project"].fillna("__unallocated__")
    owned = direct.groupby(["x_ChargeDate", "BillingCurrency", "project"], as_index=False)["EffectiveCost"].sum()
    pool = df[shared].groupby(["x_ChargeDate", "BillingCurrency"], as_index=False)["EffectiveCost"].sum()
    targets = owned[owned["project"] != "__unallocated__"][["x_ChargeDate", "project"]].drop_duplicates()
    split = pool.merge(targets, on="x_ChargeDate")
    split["EffectiveCost"] = split["EffectiveCost"] / split.groupby("x_ChargeDate")["project"].transform("count")
    both = pd.concat([owned, split], ignore_index=True)
    return both.groupby(["x_ChargeDate", "BillingCurrency", "project"], as_index=False)["EffectiveCost"].sum()


def main() -> None:
    """Run on one file in its own process; print {"seconds", "peak_rss_mb", "groups"} as JSON.

    Its own process, so its memory never counts in the pipeline's peak and the pipeline's never in its own.
    """
    path = Path(sys.argv[1])
    t = time.perf_counter()
    result = normalize_and_allocate(path)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(_peak_kb() / 1024, 1), "groups": len(result)}))


def _peak_kb() -> int:
    # VmHWM: this process's own high-water mark. Not getrusage's ru_maxrss: Linux carries the parent's peak over
    # fork and exec into it, so the child would report the pipeline's memory as its own.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main()
