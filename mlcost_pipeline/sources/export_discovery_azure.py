"""Azure Cost Management exports: their runs, and per export, dataset and UTC day the run that counts.

Layout: `<rootFolderPath>/<exportName>/<YYYYMMDD-YYYYMMDD>/[<yyyyMMddHHmm>/]<runId>/part_*` with a manifest per
run at any depth: `manifest.json` (manifestVersion 2024-04-01: exportConfig.type/resourceId, runInfo.submittedTime
/runId/startDate/endDate, blobs[].blobName (container-relative)/dataRowCount) or the older `_manifest.json`
(2021-01-01: blobs with headerRowCount, no runInfo). Older unpartitioned exports write one CSV per run directly in
the period folder and no manifest. A run covers the UTC days from runInfo.startDate to runInfo.endDate (both
inclusive, day-granular as Cost Management's time periods are), else the period folder's range (inclusive).

Rule: per (export, dataset) and day, the latest complete run covering that day wins, latest by submittedTime,
else the export-time folder, else the modification time (manifest, or the newest file of a manifest-less run).
Only the blobs a manifest lists count; a run missing a listed blob is incomplete and skipped; a run folder without
a manifest beside runs that have one is still being written and is skipped with a warning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from mlcost_pipeline.normalize import export_datasets as ds
from mlcost_pipeline.sources.export_discovery_aws import HAS_PERIOD
from mlcost_pipeline.sources.export_discovery_model import (
    Folders,
    Found,
    Index,
    ObjectInfo,
    ancestors,
    day_ranges,
    day_span,
    export_file,
    name,
    parent,
    parse_time,
    period_bounds,
    stamp_folder,
)

COST_TYPES = {"focuscost": ds.FOCUS, "actualcost": ds.AZURE_ACTUAL, "amortizedcost": ds.AZURE_AMORTIZED,
              "usage": ds.AZURE_USAGE}  # fmt: skip
NOT_COST = {"pricesheet", "reservationdetails", "reservationrecommendations", "reservationtransactions"}
_EXPORTS = "/providers/microsoft.costmanagement/exports/"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Run:
    export: str
    dataset: str | None
    subject: str  # the manifest, or the folder of a manifest-less run
    execution: str | None
    order: datetime
    order_source: str
    days: tuple[date, ...] | None  # None: the range is unknown
    files: list[tuple[ObjectInfo, int | None]] = field(default_factory=list)
    scope: str | None = None
    manifest: str | None = None


def is_azure(doc: dict) -> bool:
    return isinstance(doc.get("blobs"), list)


def _period_folder(uri: str) -> tuple[str, tuple[date, date]] | None:
    if not HAS_PERIOD.search(uri):
        return None
    for folder in ancestors(uri):
        bounds = period_bounds(name(folder))
        if bounds:
            return folder, bounds
    return None


def _order(uri: str, period: str | None, submitted: datetime | None, modified: datetime | None):
    """(when, which evidence): submittedTime, else an export-time folder below the period, else mtime."""
    if submitted:
        return submitted, "submittedTime"
    for folder in ancestors(uri):
        if folder == period:
            break
        stamp = stamp_folder(name(folder)) if len(name(folder)) == 12 and name(folder).isdigit() else None
        if stamp:
            return stamp, "export-time folder"
    return modified or _EPOCH, "modification time"


def _days(run_info: dict, period: tuple[str, tuple[date, date]] | None) -> tuple[date, ...] | None:
    start, end = parse_time(run_info.get("startDate")), parse_time(run_info.get("endDate"))
    if start and end:
        return day_span(start.date(), end.date())
    return day_span(*period[1]) if period else None


def manifest_run(m: ObjectInfo, doc: dict, index: Index, out: Found) -> tuple[Run | None, str, str]:
    """The run a manifest describes (None when it is not cost data or incomplete), its export's folder and id."""
    folder = parent(m.uri)
    period = _period_folder(m.uri)
    export_folder = parent(period[0]) if period else parent(folder)
    config = doc.get("exportConfig") if isinstance(doc.get("exportConfig"), dict) else {}
    run_info = doc.get("runInfo") if isinstance(doc.get("runInfo"), dict) else {}
    resource = str(config.get("resourceId") or "").strip().lower()
    export = "azure:" + (resource or export_folder)
    scope = resource.split(_EXPORTS, 1)[0] if _EXPORTS in resource else None
    kind = str(config.get("type") or "")
    dataset = COST_TYPES.get(kind.lower())
    order, source = _order(m.uri, period[0] if period else None, parse_time(run_info.get("submittedTime")),
                           m.modified)  # fmt: skip
    execution = run_info.get("runId") or (name(folder) if not period or folder != period[0] else None)
    run = Run(
        export, dataset, m.uri, execution, order, source, _days(run_info, period), scope=scope, manifest=m.uri
    )
    missing = []
    for blob in doc.get("blobs") or []:
        key = blob.get("blobName") if isinstance(blob, dict) else None
        obj = index.resolve(str(key), folder) if key else None
        if obj is None:
            missing.append(str(key))
            continue
        rows = blob.get("dataRowCount")
        run.files.append((obj, int(rows) if isinstance(rows, int | str) and str(rows).isdigit() else None))
        out.claimed.add(obj.uri)
    span = day_ranges(run.days) if run.days else "an unknown range"
    out.add(export, "run_found", m.uri, f"{kind or 'untyped'} run {execution or '?'} ({source} {order:%Y-%m-%d %H:%M}"
            f"), covers {span}, lists {len(run.files) + len(missing)} blob(s)")  # fmt: skip
    if kind.lower() in NOT_COST:
        out.add(export, "run_skipped", m.uri, f"{kind} export: not cost data")
        return None, export_folder, export
    if kind and dataset is None:
        out.add(export, "warning", m.uri, f"unknown export type {kind!r}: the reader classifies its files")
    if missing:
        out.add(export, "run_skipped", m.uri, f"incomplete: {len(missing)} listed blob(s) missing")
        out.add(export, "warning", m.uri, f"incomplete run skipped, missing {', '.join(missing[:3])}")
        return None, export_folder, export
    return run, export_folder, export


def choose(runs: list[Run], out: Found) -> None:
    """Per (export, dataset): every day goes to the latest run covering it; runs left with no day are skipped."""
    groups: dict[tuple[str, str | None], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.export, run.dataset)].append(run)
    for group in groups.values():
        taken: dict[date, Run] = {}
        for run in sorted(group, key=lambda r: (r.order, r.subject), reverse=True):
            if run.days is None:
                out.add(
                    run.export, "warning", run.subject, "range unknown: counted for every day its rows hold"
                )
                won: tuple[date, ...] | None = None
            else:
                won = tuple(d for d in run.days if d not in taken)
                taken.update(dict.fromkeys(won, run))
                if not won:
                    later = taken[run.days[0]].subject if run.days else "no day"
                    out.add(run.export, "run_skipped", run.subject, f"superseded: every day it covers has a later "
                            f"run (e.g. {later})")  # fmt: skip
                    continue
                out.add(
                    run.export, "run_chosen", run.subject, f"latest complete run for {day_ranges(won)}", won
                )
            for obj, rows in run.files:
                out.files.append(export_file(obj, run.export, dataset=run.dataset, execution=run.execution, days=won,
                                             expected_rows=rows, scope=run.scope, manifest=run.manifest))  # fmt: skip


def discover_azure(manifests: list[tuple[ObjectInfo, dict]], data: list[ObjectInfo], index: Index,
                   cur_like: Callable[[str], bool]) -> Found:  # fmt: skip
    """Azure runs from `manifests` (Azure-shaped), and manifest-less runs among `data` in period folders that
    `cur_like` does not claim for a legacy CUR."""
    out = Found()
    runs: list[Run] = []
    if not manifests and not any(HAS_PERIOD.search(o.uri) for o in data):
        return out
    # export folder -> (export id, has a manifest of cost data or of an unknown type)
    regions: dict[str, tuple[str, bool]] = {}
    manifest_dirs = {parent(m.uri) for m, _ in manifests}
    manifest_periods = {p[0] for p in (_period_folder(m.uri) for m, _ in manifests) if p}
    for m, doc in manifests:
        run, region, export = manifest_run(m, doc, index, out)
        regions[region] = (export, regions.get(region, ("", False))[1] or not _not_cost(doc))
        runs += [run] if run else []
    folders = Folders(regions)
    loose: dict[tuple[str, str], list[ObjectInfo]] = defaultdict(list)  # manifest-less (run, export) -> files
    unfinished: set[str] = set()
    for obj in data:
        if obj.uri in out.claimed:
            continue
        region = folders.holding(obj.uri) if folders else None
        period = _period_folder(obj.uri)
        folder = parent(obj.uri)
        if region is None and (period is None or cur_like(obj.uri)):
            continue  # not an Azure export's file
        out.claimed.add(obj.uri)
        export = regions[region][0] if region else "azure:" + parent(period[0])
        if folder in manifest_dirs:
            out.add(export, "file_skipped", obj.uri, "not listed by the manifest in its folder")
        elif period is None:
            out.add(export, "file_skipped", obj.uri, "not listed by any manifest of its export")
        elif folder == period[0] and period[0] in manifest_periods:
            out.add(export, "file_skipped", obj.uri, "beside runs that have manifests, listed by none")
        elif folder == period[0]:  # an unpartitioned export's month-to-date snapshot: a run of its own
            loose[(obj.uri, export)].append(obj)
        elif region is not None:
            if folder not in unfinished:
                unfinished.add(folder)
                out.add(export, "run_skipped", folder, "unfinished: a run folder without a manifest in an export "
                        "whose runs have one")  # fmt: skip
                if regions[region][1]:
                    out.add(export, "warning", folder, "run folder without a manifest skipped (unfinished?)")
        else:  # an export without any manifest: its run folders are its runs
            loose[(folder, export)].append(obj)
    for (key, export), files in sorted(loose.items()):
        run = _loose_run(key, export, files)
        runs.append(run)
        out.add(run.export, "run_found", key, f"run without a manifest ({run.order_source} "
                f"{run.order:%Y-%m-%d %H:%M:%S}), covers {day_ranges(run.days or ())}, {len(files)} file(s)")  # fmt: skip
    choose(runs, out)
    return out


def _not_cost(doc: dict) -> bool:
    config = doc.get("exportConfig") if isinstance(doc.get("exportConfig"), dict) else {}
    return str(config.get("type") or "").lower() in NOT_COST


def _loose_run(key: str, export: str, files: list[ObjectInfo]) -> Run:
    """A manifest-less run (one file of an older unpartitioned export, or a run folder of an export without
    manifests), covering its period folder's days; ordered by its export-time folder, else its newest file."""
    period = _period_folder(files[0].uri)
    assert period is not None
    newest = max((f.modified for f in files if f.modified), default=None)
    order, source = _order(files[0].uri, period[0], None, newest)
    folder = parent(files[0].uri)
    execution = None if folder == period[0] else name(folder)
    run = Run(export, None, key, execution, order, source, day_span(*period[1]))
    run.files = [(f, None) for f in files]
    return run
