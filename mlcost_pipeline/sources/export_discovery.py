"""Export discovery: which files of an export root count, for which UTC days, from which run (pure: a `Store`).

Source: one root (a folder, a file or a glob; local or any store) as MLCOST_FOCUS_PATH names it. Grain of the
answer: one `ExportFile` per data file that counts (URI, dataset kind, the days it counts for, the export and the
run that won them, the manifest's row count), and one `Decision` per run found, chosen or skipped, file skipped
and warning, for the asset's metadata and log. Layouts recognised, by their manifests or folder shapes: Azure Cost
Management exports (export_discovery_azure), AWS Data Exports and legacy CUR (export_discovery_aws); every other
data file is a plain file that counts whole (days None), as a plain folder always did.

Cost: one listing of the root and one read per manifest; nothing else is opened, so discovery is O(objects)
whatever the files hold. A glob is listed from its literal folder and selects among the files the layouts chose:
it can narrow what counts, never make a stale run count.
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from dataclasses import dataclass, field

from mlcost_pipeline.sources.export_discovery_aws import (
    cur_like,
    discover_cur,
    discover_cur_without_manifest,
    discover_data_exports,
    is_cur,
    is_data_export,
)
from mlcost_pipeline.sources.export_discovery_azure import discover_azure, is_azure
from mlcost_pipeline.sources.export_discovery_model import (
    Decision,
    ExportFile,
    Found,
    Index,
    ObjectInfo,
    Store,
    day_ranges,
    export_file,
    is_data,
    is_manifest,
    is_status,
    parent,
)

__all__ = ["Decision", "Discovery", "ExportFile", "ObjectInfo", "Store", "discover"]
_GLOB = set("*?[")
METADATA_CAP = 100  # decisions listed in the asset metadata (warnings first); the log has them all


def _line(d: Decision) -> str:
    days = f" [{day_ranges(d.days)}]" if d.days else ""
    return f"{d.export}: {d.action} {d.subject}{days}: {d.reason}"


@dataclass
class Discovery:
    files: list[ExportFile] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    def warnings(self) -> list[str]:
        return [_line(d) for d in self.decisions if d.action == "warning"]

    def lines(self) -> list[str]:
        return [_line(d) for d in self.decisions]

    def metadata(self) -> dict:
        counts = Counter(d.action for d in self.decisions)
        ordered = sorted(self.decisions, key=lambda d: d.action != "warning")
        return {
            "files": len(self.files),
            "exports": len({f.export for f in self.files}),
            "runs_found": counts["run_found"],
            "runs_chosen": counts["run_chosen"],
            "runs_skipped": counts["run_skipped"],
            "files_skipped": counts["file_skipped"],
            "warnings": counts["warning"],
            "decisions": [_line(d) for d in ordered[:METADATA_CAP]],
            "decisions_left_off": max(0, len(ordered) - METADATA_CAP),
        }


def split_glob(root: str) -> tuple[str, str | None]:
    """(the folder to list, the glob pattern or None)."""
    cut = min((root.index(c) for c in _GLOB if c in root), default=None)
    if cut is None:
        return root, None
    return root[:cut].rsplit("/", 1)[0] or "/", root


def _selected(uri: str, pattern: str) -> bool:
    # `**/` may stand for no folder at all (glob's recursive meaning); a folder pattern selects what is under it.
    return any(
        fnmatch.fnmatchcase(uri, p) for p in (pattern, pattern.replace("**/", ""), pattern.rstrip("/") + "/*")
    )


def _manifests(
    store: Store, objects: list[ObjectInfo], found: Found
) -> dict[str, list[tuple[ObjectInfo, dict]]]:
    kinds: dict[str, list[tuple[ObjectInfo, dict]]] = {"azure": [], "data_export": [], "cur": []}
    for m in objects:
        unknown = "unknown:" + parent(m.uri)
        try:
            doc = json.loads(store.read_bytes(m.uri))
        except (ValueError, UnicodeDecodeError) as exc:  # half-written, or not JSON: as if absent
            found.add(unknown, "warning", m.uri, f"unreadable manifest ignored ({type(exc).__name__}: {exc})")
            continue
        if not isinstance(doc, dict):
            found.add(unknown, "warning", m.uri, "manifest is not a JSON object: ignored")
        elif is_azure(doc):
            kinds["azure"].append((m, doc))
        elif is_data_export(doc):
            kinds["data_export"].append((m, doc))
        elif is_cur(doc):
            kinds["cur"].append((m, doc))
        else:
            found.add(unknown, "warning", m.uri, "not an Azure, Data Exports or CUR manifest: ignored")
    return kinds


def _merge(files: list[ExportFile]) -> list[ExportFile]:
    """One entry per URI; a file that two runs listed counts for the days of both."""
    out: dict[str, ExportFile] = {}
    for f in files:
        seen = out.get(f.uri)
        if seen is None:
            out[f.uri] = f
        elif seen.days is not None:
            days = None if f.days is None else tuple(sorted(set(seen.days) | set(f.days)))
            out[f.uri] = ExportFile(**{**seen.__dict__, "days": days})
    return sorted(out.values(), key=lambda f: f.uri)


def discover(store: Store, root: str) -> Discovery:
    """The files under `root` that count, and why (see the module docstring)."""
    listed_root, pattern = split_glob(root)
    objects = store.list(listed_root)
    data = [o for o in objects if is_data(o.uri)]
    plain_root = "files:" + root
    if len(objects) == 1 and objects[0].uri.rstrip("/") == listed_root.rstrip("/"):  # a single file named
        return Discovery([export_file(o, plain_root) for o in data], [])
    total = Found()
    for obj in data:
        if is_status(obj.uri):
            total.claimed.add(obj.uri)
            report = "cur:" + parent(parent(obj.uri))
            total.add(report, "file_skipped", obj.uri, "CUR refresh-status table, not charges")
    kinds = _manifests(store, [o for o in objects if is_manifest(o.uri)], total)
    index = Index(data)
    steps = (lambda rest: discover_data_exports(kinds["data_export"], rest, index),
             lambda rest: discover_cur(kinds["cur"], rest, index),
             lambda rest: discover_azure(kinds["azure"], rest, index, cur_like),
             discover_cur_without_manifest)  # fmt: skip
    for step in steps:
        found = step([o for o in data if o.uri not in total.claimed])
        total.files += found.files
        total.decisions += found.decisions
        total.claimed |= found.claimed
    total.files += [export_file(o, plain_root) for o in data if o.uri not in total.claimed]
    files = _merge(total.files)
    if pattern:
        files = [f for f in files if _selected(f.uri, pattern)]
    return Discovery(files, total.decisions)
