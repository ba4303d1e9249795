"""Azure Cost Management export trees, as Microsoft documents them (no tests here).

Sources: "Tutorial: improved exports" (manifest.json example, export-time and run folders, CreateNewReport vs
OverwritePreviousReport, the second daily run of the first five days that rewrites the previous month, "export
selected dates") and "Tutorial: create and manage exported data" (the older _manifest.json, unpartitioned CSVs).
"""

from __future__ import annotations

import json
from datetime import date

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline_tests.test_export_discovery_trees import (
    AUG,
    SEP,
    SUB,
    Tree,
    csv_bytes,
    parquet_bytes,
    rows,
)


def _azure_manifest(tree: Tree, run: str, parts: list[str], *, kind: str = "FocusCost", export: str = "focus",
                    submitted: str | None = None, start: date | None = None, end: date | None = None,
                    overwrite: str = "CreateNewReport", fmt: str = "Csv") -> bytes:  # fmt: skip
    """manifest.json in Microsoft's documented shape (manifestVersion 2024-04-01) for the run folder `run`."""
    blobs = [{"blobName": f"exports/{run}/{p}", "byteCount": len(tree.files[f"{run}/{p}"]),
              "dataRowCount": tree.rows.get(f"{run}/{p}", 0)} for p in parts]  # fmt: skip
    run_id = run.rsplit("/", 1)[-1]
    doc = {"manifestVersion": "2024-04-01", "byteCount": sum(b["byteCount"] for b in blobs), "blobCount": len(blobs),
           "dataRowCount": sum(b["dataRowCount"] for b in blobs),
           "exportConfig": {"exportName": export, "resourceId": f"{SUB}/providers/Microsoft.CostManagement/exports/"
                            f"{export}", "dataVersion": "1.2", "apiVersion": "2025-03-01", "type": kind,
                            "timeFrame": "MonthToDate", "granularity": "Daily"},
           "deliveryConfig": {"partitionData": True, "dataOverwriteBehavior": overwrite, "fileFormat": fmt,
                              "compressionMode": "None", "containerUri": f"{SUB}/resourceGroups/finops/providers/"
                              "Microsoft.Storage/storageAccounts/acmebilling", "rootFolderPath": "exports"},
           "runInfo": {"executionType": "Scheduled", "submittedTime": submitted, "runId": run_id,
                       "startDate": f"{start}T00:00:00", "endDate": f"{end}T00:00:00Z"},
           "blobs": blobs}  # fmt: skip
    return json.dumps(doc, indent=2).encode()


def azure_run(tree: Tree, run: str, days: list[date], factor: str, parts: int = 1, *, ext: str = "csv",
              **manifest) -> list[str]:  # fmt: skip
    """A run folder with `parts` partitions of `days` (money x factor) and its manifest; the part keys."""
    rs = rows(days, factor)
    names, keys = [f"part_{i}_0001.{ext}" for i in range(parts)], []
    for i, part in enumerate(names):
        chunk = rs[i::parts]
        tree.put(f"{run}/{part}", parquet_bytes(chunk) if ext.endswith("parquet") else csv_bytes(chunk))
        tree.rows[f"{run}/{part}"] = len(chunk)
        keys.append(f"{run}/{part}")
    manifest.setdefault("export", run.split("/", 1)[0])  # the export's folder is named after it
    tree.put(f"{run}/manifest.json", _azure_manifest(tree, run, names, **manifest))
    return keys


def azure_create_new_with_export_time() -> Tree:
    """CreateNewReport, export-time folders, month-to-date runs of 3, 4, 5 Sept, a 6 Sept run still writing."""
    t, p = Tree(), "daily-focus/20260901-20260930"
    azure_run(t, f"{p}/202609030612/3c0ffee0-0003", SEP[:3], "1.30", submitted="2026-09-03T06:12:44.1234567Z",
              start=SEP[0], end=SEP[2])  # fmt: skip
    azure_run(t, f"{p}/202609040610/1c0ffee0-0004", SEP[:4], "1.20", 2, submitted="2026-09-04T06:10:01.5Z",
              start=SEP[0], end=SEP[3])  # fmt: skip
    current = azure_run(t, f"{p}/202609050605/2c0ffee0-0005", SEP[:5], "1.00", 2,
                        submitted="2026-09-05T06:05:59.0000001Z", start=SEP[0], end=SEP[4])  # fmt: skip
    t.put(
        f"{p}/202609060601/0c0ffee0-0006/part_0_0001.csv", csv_bytes(rows(SEP[:6], "9.00"))
    )  # no manifest yet
    for key in current:
        t.count(key, tuple(SEP[:5]), ds.FOCUS)
    return t


def azure_reruns_without_export_time() -> Tree:
    """Run folders straight under the period; the 2 Sept second run rewrites August (run ids sort the other way)."""
    t = Tree()
    azure_run(
        t,
        "rerun-focus/20260801-20260831/f0000000-aug31",
        AUG[28:],
        "1.40",
        submitted="2026-08-31T05:00:00Z",
        start=AUG[0],
        end=AUG[30],
    )
    rerun = azure_run(t, "rerun-focus/20260801-20260831/a0000000-rerun", AUG[28:], "1.00",
                      submitted="2026-09-02T04:00:00Z", start=AUG[0], end=AUG[30])  # fmt: skip
    sept = azure_run(
        t,
        "rerun-focus/20260901-20260930/b0000000-sep02",
        SEP[:2],
        "1.00",
        submitted="2026-09-02T06:00:00Z",
        start=SEP[0],
        end=SEP[1],
    )
    t.count(rerun[0], tuple(AUG), ds.FOCUS)
    t.count(sept[0], tuple(SEP[:2]), ds.FOCUS)
    return t


def azure_overwrite_and_types() -> Tree:
    """OverwritePreviousReport: ActualCost (a leftover part of a bigger earlier run beside the listed ones),
    AmortizedCost in Parquet, and a PriceSheet export that is not cost data."""
    t, ow = Tree(), "OverwritePreviousReport"
    actual = azure_run(
        t,
        "actual/20260901-20260930/5e1f0000-run",
        SEP[:7],
        "1.00",
        2,
        kind="ActualCost",
        export="actual",
        submitted="2026-09-07T07:00:00Z",
        start=SEP[0],
        end=SEP[6],
        overwrite=ow,
    )
    t.put(
        "actual/20260901-20260930/5e1f0000-run/part_2_0001.csv", csv_bytes(rows(SEP[:3], "7.00"))
    )  # leftover
    amortized = azure_run(t, "amortized/20260901-20260930/6e1f0000-run", SEP[:7], "0.50", ext="snappy.parquet",
                          kind="AmortizedCost", export="amortized", submitted="2026-09-07T07:05:00Z", start=SEP[0],
                          end=SEP[6], overwrite=ow, fmt="Parquet")  # fmt: skip
    t.put("prices/20260901-20260930/7e1f0000-run/part_0_0001.csv", b"MeterId,UnitPrice\nm-1,0.12\n")
    t.put("prices/20260901-20260930/7e1f0000-run/manifest.json", json.dumps({
        "manifestVersion": "2024-04-01", "exportConfig": {"type": "PriceSheet", "resourceId": "/providers/Microsoft."
        "Billing/billingAccounts/1234567/providers/Microsoft.CostManagement/exports/prices"},
        "runInfo": {"submittedTime": "2026-09-07T07:10:00Z", "startDate": "2026-09-01T00:00:00",
                    "endDate": "2026-09-30T00:00:00Z"},
        "blobs": [{"blobName": "exports/prices/20260901-20260930/7e1f0000-run/part_0_0001.csv",
                   "dataRowCount": 1}]}).encode())  # fmt: skip
    for key in actual:
        t.count(key, tuple(SEP[:7]), ds.AZURE_ACTUAL)
    t.count(amortized[0], tuple(SEP[:7]), ds.AZURE_AMORTIZED)
    return t


def azure_selected_dates() -> Tree:
    """A one-time "export selected dates" run for 1-10 Sept, later than the 20 Sept month-to-date run."""
    t = Tree()
    mtd = azure_run(t, "once-focus/20260901-20260930/202609200600/d1000000-mtd", SEP[:20], "1.00",
                    submitted="2026-09-20T06:00:00Z", start=SEP[0], end=SEP[19])  # fmt: skip
    picked = azure_run(t, "once-focus/20260901-20260910/202609210800/e1000000-once", SEP[:10], "1.10",
                       submitted="2026-09-21T08:00:00Z", start=SEP[0], end=SEP[9])  # fmt: skip
    t.count(mtd[0], tuple(SEP[10:20]), ds.FOCUS)
    t.count(picked[0], tuple(SEP[:10]), ds.FOCUS)
    return t


def _old_manifest(tree: Tree, run: str, names: list[str]) -> bytes:
    """_manifest.json in the older documented shape (manifestVersion 2021-01-01: no runInfo, no exportConfig)."""
    blobs = [{"blobName": name, "byteCount": len(tree.files[f"{run}/{name.rsplit('/', 1)[-1]}"]),
              "dataRowCount": tree.rows[f"{run}/{name.rsplit('/', 1)[-1]}"], "headerRowCount": 1,
              "contentMD5": "md5Hash"} for name in names]  # fmt: skip
    return json.dumps({"manifestVersion": "2021-01-01", "dataFormat": "csv", "blobCount": len(blobs),
                       "byteCount": sum(b["byteCount"] for b in blobs),
                       "dataRowCount": sum(b["dataRowCount"] for b in blobs), "blobs": blobs}).encode()  # fmt: skip


def azure_older_manifest() -> Tree:
    """Older partitioned exports: _manifest.json per run folder, ordered by modification time (no runInfo); one
    names its blob by file name (as Microsoft's example), the other by its container path."""
    t = Tree()
    for rank, (run, factor, days) in enumerate(
        [
            ("costs/20260901-20260930/9a000000-old", "1.50", SEP[:8]),
            ("costs/20260901-20260930/1b000000-new", "1.00", SEP[:9]),
        ]
    ):
        rs = rows(days, factor)
        for i in (1, 2):
            t.put(f"{run}/costs_{i}.csv", csv_bytes(rs[i - 1 :: 2]), rank)
            t.rows[f"{run}/costs_{i}.csv"] = len(rs[i - 1 :: 2])
        names = (
            ["costs_1.csv", "costs_2.csv"]
            if rank == 0
            else [f"exports/{run}/costs_1.csv", f"{run}/costs_2.csv"]
        )
        t.put(f"{run}/_manifest.json", _old_manifest(t, run, names), rank)
    for i in (1, 2):
        t.count(f"costs/20260901-20260930/1b000000-new/costs_{i}.csv", tuple(SEP))
    return t


def azure_unpartitioned() -> Tree:
    """Older unpartitioned exports: one month-to-date CSV per run in the period folder, no manifest; the newest by
    modification time wins its period."""
    t, p = Tree(), "daily/20260901-20260930"
    t.put(f"{p}/daily_c4a1e2f0-0001.csv", csv_bytes(rows(SEP[:3], "1.30")), 0)
    t.put(f"{p}/daily_a4a1e2f0-0003.csv", csv_bytes(rows(SEP[:5], "1.00")), 2)
    t.put(f"{p}/daily_f4a1e2f0-0002.csv", csv_bytes(rows(SEP[:4], "1.20")), 1)
    t.put("daily/20260801-20260831/daily_b4a1e2f0-0004.csv", csv_bytes(rows(AUG[29:], "1.00")), 0)
    t.count(f"{p}/daily_a4a1e2f0-0003.csv", tuple(SEP))
    t.count("daily/20260801-20260831/daily_b4a1e2f0-0004.csv", tuple(AUG))
    return t
