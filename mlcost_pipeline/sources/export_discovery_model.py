"""What export discovery sees and decides, and the path arithmetic it needs (pure: no I/O, no Dagster).

A `Store` lists objects (`ObjectInfo`: URI, size, modification time, ETag-like tag) and reads small ones
(manifests). Discovery answers with `ExportFile`s (a data file, its dataset kind, the UTC days it counts for, the
run that won them) and `Decision`s (runs found, chosen, skipped; files skipped; warnings). URIs are absolute local
paths or `scheme://bucket/key`; every folder operation here works on their `/`-separated text, so the same
decisions are made for a local mirror and for the bucket it mirrors. Manifests name files by paths relative to
a container or bucket (Azure `blobName`, CUR `reportKeys`) or by full `s3://` URIs (AWS `dataFiles`): `Index`
maps each onto a listed object by the longest matching path suffix.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".parq", ".snappy.parquet", ".gz.parquet", ".csv.zip", ".zip")
STATUS_NAME = "cost_and_usage_data_status"  # legacy CUR Parquet layout: a refresh-status table, not charges
PERIOD = re.compile(
    r"^(\d{8})-(\d{8})$"
)  # Azure YYYYMMDD-YYYYMMDD (end inclusive), CUR yyyymmdd-yyyymmdd (exclusive)


@dataclass(frozen=True)
class ObjectInfo:
    uri: str
    size: int
    modified: datetime | None
    tag: str  # ETag, md5 or mtime text: changes when the object does


class Store(Protocol):
    def list(self, root: str) -> list[ObjectInfo]: ...  # every object under root, recursively, any name

    def read_bytes(self, uri: str) -> bytes: ...  # small objects (manifests)


@dataclass(frozen=True)
class ExportFile:
    uri: str
    size: int
    tag: str
    modified: datetime | None
    dataset: (
        str | None
    )  # export_datasets kind when the manifest/layout says it, else None (the reader detects)
    export: str  # a stable id of the export ("azure:<resourceId or path>", "aws-data-export:<folder>", ...)
    execution: str | None  # Azure runId, AWS executionId, CUR assemblyId; None for plain files
    days: tuple[date, ...] | None  # the UTC days this file counts for; None: every day its rows hold
    expected_rows: int | None  # the manifest's dataRowCount for this blob (header excluded)
    scope: str | None  # Azure: resourceId before /providers/Microsoft.CostManagement/exports/ (lower case)
    manifest: str | None  # the manifest that listed it


@dataclass(frozen=True)
class Decision:
    export: str
    action: str  # "run_found" | "run_chosen" | "run_skipped" | "file_skipped" | "warning"
    subject: str  # the run or file concerned
    reason: str
    days: tuple[date, ...] = ()  # for run_chosen: the days it won


@dataclass
class Found:
    """What one layout handler chose and decided, and every data object it took responsibility for."""

    files: list[ExportFile] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)

    def add(self, export: str, action: str, subject: str, reason: str, days: tuple[date, ...] = ()) -> None:
        self.decisions.append(Decision(export, action, subject, reason, days))


def export_file(obj: ObjectInfo, export: str, *, dataset: str | None = None, execution: str | None = None,
                days: tuple[date, ...] | None = None, expected_rows: int | None = None, scope: str | None = None,
                manifest: str | None = None) -> ExportFile:  # fmt: skip
    return ExportFile(obj.uri, obj.size, obj.tag, obj.modified, dataset, export, execution, days, expected_rows,
                      scope, manifest)  # fmt: skip


def name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def parent(uri: str) -> str:
    head, sep, _ = uri.rstrip("/").rpartition("/")
    return head if sep and not head.endswith(":/") else uri


def ancestors(uri: str) -> list[str]:
    """Folders holding uri, nearest first, up to the bucket (not the filesystem root)."""
    scheme = uri.find("://")
    floor = uri.find("/", scheme + 3) if scheme >= 0 else 0  # the slash after the bucket
    if floor < 0:
        return []
    out, i = [], uri.rfind("/", 0, len(uri.rstrip("/")))
    while i > floor:
        out.append(uri[:i])
        i = uri.rfind("/", 0, i)
    if scheme >= 0:
        out.append(uri[:floor])
    return out


def segments(uri: str) -> list[str]:
    """The path segments of a URI or key; a URI's bucket is its first segment. Blanks around them are dropped
    (Microsoft's documented manifest example has spaces after its slashes)."""
    path = uri.split("://", 1)[1] if "://" in uri else uri
    return [s.strip() for s in path.split("/") if s.strip()]


def is_data(uri: str) -> bool:
    n = name(uri)
    return n.lower().endswith(DATA_SUFFIXES) and not n.startswith((".", "_"))


def is_manifest(uri: str) -> bool:
    n = name(uri).lower()  # manifest.json, _manifest.json, Manifest.json, <name>-Manifest.json
    return n.endswith("manifest.json") and not n.endswith("redshiftmanifest.json")


def is_status(uri: str) -> bool:
    return STATUS_NAME in uri and any(s.split(".", 1)[0] == STATUS_NAME for s in segments(uri)[-2:])


def parse_time(text: object) -> datetime | None:
    """ISO 8601 as the providers write it (7-digit fractions, Z, basic 20231101T000000.000Z), as UTC."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def stamp_folder(folder: str) -> datetime | None:
    """An Azure export-time folder (yyyyMMddHHmm) or an AWS execution folder (<yyyyMMddTHHmmss...>-<id>)."""
    digits = re.match(r"^(\d{8})T?(\d{4,6})", folder)
    if not digits:
        return None
    try:
        return datetime.strptime(digits[1] + digits[2][:4], "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


def period_bounds(folder: str) -> tuple[date, date] | None:
    """The two dates of a YYYYMMDD-YYYYMMDD folder name, as written."""
    m = PERIOD.match(folder)
    if not m:
        return None
    try:
        return datetime.strptime(m[1], "%Y%m%d").date(), datetime.strptime(m[2], "%Y%m%d").date()
    except ValueError:
        return None


def next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def is_cur_period(bounds: tuple[date, date]) -> bool:
    """CUR period folders end on the first day of the next month (exclusive); Azure's end on the last day."""
    start, end = bounds
    return start.day == 1 and end == next_month(start)


def day_span(first: date, last: date) -> tuple[date, ...]:
    if last < first:
        return ()
    return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))


def day_ranges(days: tuple[date, ...] | list[date]) -> str:
    """2026-09-01..2026-09-05, 2026-09-08 for the sorted days given."""
    out: list[str] = []
    ordered = sorted(days)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + timedelta(days=1):
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}..{ordered[j]}")
        i = j + 1
    return ", ".join(out)


def under(uri: str, folder: str) -> bool:
    return uri.startswith(folder.rstrip("/") + "/")


class Index:
    """Listed data objects by URI and by their last two path segments, for manifest keys -> objects."""

    def __init__(self, objects: list[ObjectInfo]):
        self.by_uri = {o.uri: o for o in objects}
        self._by_tail: dict[tuple[str, ...], list[ObjectInfo]] = defaultdict(list)
        for o in objects:
            self._by_tail[tuple(o.uri.rsplit("/", 2)[-2:])].append(o)

    def resolve(self, key: str, near: str) -> ObjectInfo | None:
        """The object a manifest's key names: the exact URI, else the one sharing the longest path suffix with
        the key (at least its folder and name), preferring one under `near`; a bare file name is looked up in
        `near` only."""
        if key in self.by_uri:
            return self.by_uri[key]
        parts = segments(key)
        if len(parts) == 1:
            return self.by_uri.get(f"{near.rstrip('/')}/{parts[0]}")
        if not parts:
            return None
        best, score = None, (1, False)  # a match shares the name and its folder at least
        for cand in self._by_tail.get(tuple(parts[-2:]), []):
            mine, common = segments(cand.uri), 0
            while common < min(len(mine), len(parts)) and mine[-1 - common] == parts[-1 - common]:
                common += 1
            if (common, under(cand.uri, near)) > score:
                best, score = cand, (common, under(cand.uri, near))
        return best


class Folders:
    """A set of folders answering "which of them holds this URI, nearest first" in O(log n), not O(depth)."""

    def __init__(self, folders):
        self._sorted = sorted({f.rstrip("/") + "/" for f in folders})

    def __bool__(self) -> bool:
        return bool(self._sorted)

    def holding(self, uri: str) -> str | None:
        i = bisect_right(self._sorted, uri)
        while i:
            candidate = self._sorted[i - 1]
            if uri.startswith(candidate):
                return candidate[:-1]
            # a folder holding uri sorts before `candidate` and is a prefix of what the two share
            lo, hi = 0, min(len(candidate), len(uri))
            while lo < hi:  # the length of that shared prefix, by bisection (startswith runs in C)
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if uri.startswith(candidate[:mid]) else (lo, mid - 1)
            i = bisect_right(self._sorted, uri[:lo], 0, i - 1)
        return None
