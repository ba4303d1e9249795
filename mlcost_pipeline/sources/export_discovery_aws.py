"""AWS billing exports: Data Exports (CUR 2.0, FOCUS 1.0 and 1.2) and legacy Cost and Usage Reports (CUR 1).

Data Exports: data under `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/` (in `<timestamp>-<executionId>/`
folders with "create new"), the current manifest at `metadata/BILLING_PERIOD=YYYY-MM/` (`Manifest.json` or
`<export>-Manifest.json`), each execution's own under `metadata/<partition>/<timestamp>-<executionId>/`. Only the
period-level manifest is current; its `dataFiles` (full s3:// URIs, mapped onto a mirror by path suffix) are the
files that count: leftover chunks of an overwrite and older executions do not.
Legacy CUR: `<prefix>/<report>/<yyyymmdd-yyyymmdd>/[<assemblyId>/]<report>-<n>.csv.(gz|zip)`, the period folder's
`<report>-Manifest.json` naming the current assembly (`assemblyId`, bucket-relative `reportKeys`), a copy in each
assembly folder; the Parquet (Athena) layout `<prefix>/<report>/<report>/year=YYYY/month=M/` is overwrite only.
A billing period's files hold that period's charges and periods do not overlap, so the files count for every day
their rows hold (days None).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.sources.export_discovery_model import (
    Folders,
    Found,
    Index,
    ObjectInfo,
    ancestors,
    export_file,
    is_cur_period,
    name,
    parent,
    parse_time,
    period_bounds,
    stamp_folder,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HAS_PERIOD = re.compile(r"/\d{8}-\d{8}/")


def is_data_export(doc: dict) -> bool:
    return isinstance(doc.get("dataFiles"), list) or "exportArn" in doc


def is_cur(doc: dict) -> bool:
    return isinstance(doc.get("reportKeys"), list) or "assemblyId" in doc


def _dataset(doc: dict) -> str | None:
    """FOCUS or CUR 2.0 from the manifest's columns (or its query, when it carries one); None: the reader detects."""
    columns = {str(c.get("name", "")).lower() for c in doc.get("columns") or [] if isinstance(c, dict)}
    if {"billedcost", "chargeperiodstart"} <= columns:
        return ds.FOCUS
    if "line_item_unblended_cost" in columns or "bill_billing_period_start_date" in columns:
        return ds.AWS_CUR2
    query = str(doc.get("queryStatement") or doc.get("query") or "").upper()
    if re.search(r"\bFROM\s+FOCUS_", query):
        return ds.FOCUS
    return ds.AWS_CUR2 if "COST_AND_USAGE_REPORT" in query else None


def _resolve(keys: list, index: Index, near: str, export: str, subject: str, out: Found) -> list[ObjectInfo]:
    found, missing = [], []
    for key in keys:
        obj = index.resolve(str(key), near)
        (found.append(obj) if obj else missing.append(str(key)))
    if missing:
        out.add(export, "warning", subject, f"{len(missing)} file(s) it lists are missing, e.g. {missing[0]}")
    return found


def discover_data_exports(
    manifests: list[tuple[ObjectInfo, dict]], data: list[ObjectInfo], index: Index
) -> Found:
    out = Found()
    if not manifests:
        return out
    groups: dict[tuple[str, str], list[tuple[ObjectInfo, dict, bool]]] = defaultdict(list)
    for m, doc in manifests:
        folder = parent(m.uri)
        up = parent(folder)
        if name(up) == "metadata":  # metadata/<partition>/<manifest>: the current one
            level, partition, export_folder = "period", name(folder), parent(up)
        elif name(parent(up)) == "metadata":  # metadata/<partition>/<timestamp>-<executionId>/<manifest>
            level, partition, export_folder = "execution", name(up), parent(parent(up))
        else:  # a copy outside metadata/: its folder stands for the partition
            level, partition, export_folder = "period", name(folder), up
        execution_level = level == "execution"
        export = "aws-data-export:" + export_folder
        out.add(export, "run_found", m.uri, f"{level} manifest of {partition}, execution "
                f"{doc.get('executionId') or '?'}, {len(doc.get('dataFiles') or [])} data file(s)")  # fmt: skip
        groups[(export_folder, partition)].append((m, doc, execution_level))
    for (export_folder, partition), items in sorted(groups.items()):
        export = "aws-data-export:" + export_folder
        pool = [i for i in items if not i[2]] or items
        current = max(pool, key=lambda i: (stamp_folder(name(parent(i[0].uri))) or _EPOCH if i[2] else _EPOCH,
                                           i[0].modified or _EPOCH, i[0].uri))  # fmt: skip
        m, doc, execution_level = current
        if execution_level:
            out.add(
                export, "warning", m.uri, f"no period-level manifest for {partition}: the latest execution's"
            )
        for other, other_doc, other_level in items:
            if other is not m:
                same = other_level and other_doc.get("executionId") == doc.get("executionId")
                out.add(export, "run_skipped", other.uri, "the current execution's own manifest (the period's counts)"
                        if same else "superseded: only the period-level manifest is current" if other_level
                        else "an older copy of the period's manifest")  # fmt: skip
        files = _resolve(doc.get("dataFiles") or [], index, f"{export_folder}/data", export, m.uri, out)
        out.add(export, "run_chosen", m.uri, f"current delivery of {partition}: {len(files)} file(s)")
        for obj in files:
            out.claimed.add(obj.uri)
            out.files.append(export_file(obj, export, dataset=_dataset(doc), execution=doc.get("executionId"),
                                         manifest=m.uri))  # fmt: skip
    regions = Folders(folder for folder, _ in groups)
    unmanifested: set[str] = set()
    for obj in data:
        region = regions.holding(obj.uri)
        if obj.uri in out.claimed or region is None:
            continue
        out.claimed.add(obj.uri)
        export = "aws-data-export:" + region
        partition = next((name(f) for f in ancestors(obj.uri) if parent(f) == f"{region}/data"), "?")
        if (region, partition) not in groups and partition not in unmanifested:
            unmanifested.add(partition)
            out.add(
                export, "warning", f"{region}/data/{partition}", "no manifest for this period: not counted"
            )
        out.add(export, "file_skipped", obj.uri, f"not in the current delivery of {partition}")
    return out


def _cur_place(m: ObjectInfo) -> tuple[str, str, bool]:
    """(report folder, period folder, is an assembly folder's copy) of a CUR manifest."""
    folder = parent(m.uri)
    if period_bounds(name(folder)):
        return parent(folder), folder, False
    if period_bounds(name(parent(folder))):
        return parent(parent(folder)), parent(folder), True
    if name(folder).startswith("month=") and name(parent(folder)).startswith("year="):
        return parent(parent(parent(folder))), folder, False
    return parent(folder), folder, False


def discover_cur(manifests: list[tuple[ObjectInfo, dict]], data: list[ObjectInfo], index: Index) -> Found:
    out = Found()
    if not manifests:
        return out
    groups: dict[tuple[str, str], list[tuple[ObjectInfo, dict, bool]]] = defaultdict(list)
    regions: dict[str, str] = {}  # a period folder with a manifest, or a folder of listed files -> export
    for m, doc in manifests:
        report, period_folder, in_assembly = _cur_place(m)
        start = parse_time((doc.get("billingPeriod") or {}).get("start"))
        export = "cur:" + report
        out.add(export, "run_found", m.uri, f"{'assembly' if in_assembly else 'period'} manifest, assembly "
                f"{doc.get('assemblyId') or '?'}, {len(doc.get('reportKeys') or [])} report key(s)")  # fmt: skip
        groups[(report, str(start.date()) if start else name(period_folder))].append((m, doc, in_assembly))
        regions[period_folder] = export
    for (report, period), items in sorted(groups.items()):
        export = "cur:" + report
        pool = [i for i in items if not i[2]] or items
        m, doc, in_assembly = max(pool, key=lambda i: (i[0].modified or _EPOCH, i[0].uri))
        assembly = str(doc.get("assemblyId") or "")
        if in_assembly:
            out.add(
                export, "warning", m.uri, f"no period manifest for {period}: the newest assembly's manifest"
            )
        for other, other_doc, _ in items:
            if other is not m:
                same = str(other_doc.get("assemblyId") or "") == assembly
                out.add(export, "run_skipped", other.uri, "the current assembly's copy of the period manifest"
                        if same else f"superseded: assembly {assembly or '?'} is current")  # fmt: skip
        files = _resolve(doc.get("reportKeys") or [], index, report, export, m.uri, out)
        out.add(
            export,
            "run_chosen",
            m.uri,
            f"current assembly {assembly or '?'} of {period}: {len(files)} file(s)",
        )
        for obj in files:
            out.claimed.add(obj.uri)
            regions[parent(obj.uri)] = export
            out.files.append(export_file(obj, export, dataset=ds.AWS_CUR_LEGACY, execution=assembly or None,
                                         manifest=m.uri))  # fmt: skip
    folders = Folders(regions)
    for obj in data:
        region = folders.holding(obj.uri)
        if obj.uri in out.claimed or region is None:
            continue
        out.claimed.add(obj.uri)
        in_assembly = period_bounds(name(parent(parent(obj.uri)))) is not None
        out.add(regions[region], "file_skipped", obj.uri, "not in the current assembly" if in_assembly
                else "not listed by the current manifest")  # fmt: skip
    return out


def cur_like(uri: str) -> bool:
    """A manifest-less file in a CUR period folder (yyyymmdd-yyyymmdd ending on the 1st of the next month, or
    holding <report>-<n> files) or in an assembly folder of one."""
    if not HAS_PERIOD.search(uri):
        return False
    for folder in ancestors(uri)[:2]:
        bounds = period_bounds(name(folder))
        if bounds:
            return (
                is_cur_period(bounds)
                or re.match(rf"^{re.escape(name(parent(folder)))}-\d+\.", name(uri)) is not None
            )
    return False


def athena_month(uri: str) -> str | None:
    """The report folder of a file in `<prefix>/<report>/<report>/year=YYYY/month=M/`, else None."""
    if "/month=" not in uri:
        return None
    up = ancestors(uri)
    if len(up) >= 4 and name(up[0]).startswith("month=") and name(up[1]).startswith("year=") and \
            name(up[2]) == name(up[3]):  # fmt: skip
        return up[3]
    return None


def discover_cur_without_manifest(data: list[ObjectInfo]) -> Found:
    """CUR files no manifest governs: Parquet months and overwrite period folders count whole; in a period folder
    of assemblies, the newest assembly folder (by its newest file) is the current one."""
    out = Found()
    periods: dict[str, dict[str, list[ObjectInfo]]] = defaultdict(lambda: defaultdict(list))
    for obj in data:
        report = athena_month(obj.uri)
        if report:
            out.claimed.add(obj.uri)
            out.files.append(export_file(obj, "cur:" + report, dataset=ds.AWS_CUR_LEGACY))
        elif cur_like(obj.uri):
            folder = parent(obj.uri)
            period = folder if period_bounds(name(folder)) else parent(folder)
            periods[period][folder].append(obj)
    for period, folders in sorted(periods.items()):
        export = "cur:" + parent(period)
        newest = max(folders, key=lambda f: (max(o.modified or _EPOCH for o in folders[f]), f))
        out.add(export, "warning", period, "no manifest: " + ("every file counts" if newest == period else
                f"the newest assembly {name(newest)} counts"))  # fmt: skip
        for folder, objs in folders.items():
            for obj in objs:
                out.claimed.add(obj.uri)
                if folder == newest:
                    out.files.append(
                        export_file(obj, export, execution=None if folder == period else name(folder))
                    )
                else:
                    out.add(export, "file_skipped", obj.uri, f"older assembly than {name(newest)}")
    return out
