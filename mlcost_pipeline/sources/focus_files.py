"""FOCUS export files (AWS Data Exports, Azure FocusCost, GCP FOCUS export, any FOCUS 1.0-1.2 file) by day.

Source: MLCOST_FOCUS_PATH, a comma list of folders, globs or single files, local or remote: `s3://` through
boto3 (endpoint from `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL` as boto3 reads them), any other fsspec protocol
(`gs://` needs gcsfs, `az://`/`abfs://` need adlfs, none installed by default) through fsspec. Remote files are
copied to a local cache (MLCOST_FOCUS_CACHE_DIR, re-downloaded when size or ETag changes) because DuckDB scans
local files: its httpfs extension would be a download at run time. Grain of the answer: (UTC charge day, local
file) for every file holding a charge of that day; each file is read whole by the same reader core.focus_costs
uses, so a broken file, a missing mandatory column or an unknown currency fails the window before anything lands.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from mlcost_pipeline.normalize.focus_export import read_focus_export
from mlcost_pipeline.normalize.focus_schema import NormalizationError
from mlcost_pipeline.sources.currencies import is_known_currency
from mlcost_pipeline.sources.landing_checks import SourceDataError, window_label

SOURCE = "focus_export"
EXTENSIONS = (".csv", ".csv.gz", ".parquet", ".parq", ".snappy.parquet", ".gz.parquet")
_GLOB = set("*?[")


def is_focus_file(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS) and not Path(name).name.startswith((".", "_"))


def _local(spec: str) -> list[str]:
    path = Path(spec).expanduser()
    if _GLOB & set(spec):
        found = glob.glob(str(path), recursive=True)
    elif path.is_dir():
        found = [str(p) for p in path.rglob("*")]
    elif path.is_file():
        return [str(path)]
    else:
        raise FileNotFoundError(f"{SOURCE}: MLCOST_FOCUS_PATH {spec!r}: no such file or folder")
    return sorted(f for f in found if Path(f).is_file() and is_focus_file(f))


def _prefix_and_pattern(key: str) -> tuple[str, str | None]:
    """An object key with a glob -> (the literal prefix to list, the pattern); a folder -> (prefix, None)."""
    cut = min((key.index(c) for c in _GLOB if c in key), default=None)
    if cut is None:
        return key, None
    return key[:cut], key


def _cache_path(cache_dir: Path, uri: str) -> Path:
    parts = urlsplit(uri)
    return cache_dir / parts.scheme / parts.netloc / parts.path.lstrip("/")


class _S3:
    def __init__(self):
        import boto3

        self.client = boto3.client("s3")

    def list(self, uri: str) -> list[tuple[str, int, str]]:
        parts = urlsplit(uri)
        prefix, pattern = _prefix_and_pattern(parts.path.lstrip("/"))
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=parts.netloc, Prefix=prefix):
            for obj in page.get("Contents") or []:
                key = obj["Key"]
                if (pattern is None or fnmatch.fnmatchcase(key, pattern)) and is_focus_file(key):
                    out.append((f"s3://{parts.netloc}/{key}", int(obj["Size"]), str(obj.get("ETag", ""))))
        return out

    def download(self, uri: str, target: Path) -> None:
        parts = urlsplit(uri)
        self.client.download_file(parts.netloc, parts.path.lstrip("/"), str(target))


class _Fsspec:
    def __init__(self, protocol: str):
        import fsspec

        try:
            self.fs = fsspec.filesystem(protocol)
        except ImportError as exc:
            package = {"gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs"}.get(protocol)
            hint = f" (pip install {package})" if package else ""
            raise RuntimeError(f"{SOURCE}: reading {protocol}:// needs an fsspec driver{hint}: {exc}") from exc
        self.protocol = protocol

    def list(self, uri: str) -> list[tuple[str, int, str]]:
        if _GLOB & set(uri):
            names = self.fs.glob(uri)
        elif self.fs.isdir(uri):
            names = self.fs.find(uri)
        else:
            names = [uri]
        out = []
        for name in sorted(names):
            info = self.fs.info(name)
            if info.get("type") == "file" and is_focus_file(name):
                tag = str(info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("mtime") or "")
                full = name if "://" in name else f"{self.protocol}://{name.lstrip('/')}"
                out.append((full, int(info.get("size") or 0), tag))
        return out

    def download(self, uri: str, target: Path) -> None:
        self.fs.get_file(uri, str(target))


def _fetch(store, uri: str, size: int, tag: str, cache_dir: Path) -> Path:
    target = _cache_path(cache_dir, uri)
    stamp = target.with_name(target.name + ".etag")
    fingerprint = hashlib.sha256(f"{size}:{tag}".encode()).hexdigest()
    if target.is_file() and stamp.is_file() and stamp.read_text() == fingerprint and target.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    store.download(uri, partial)
    os.replace(partial, target)  # a reader never sees half a file
    stamp.write_text(fingerprint)
    return target


def resolve_files(specs: list[str] | tuple[str, ...], cache_dir: Path) -> list[Path]:
    """Every FOCUS file the specs name, remote ones copied to the cache; sorted, no duplicates."""
    if not specs:
        raise ValueError(f"{SOURCE}: MLCOST_FOCUS_PATH is not set (a folder, glob or s3:// gs:// az:// URL)")
    files: list[Path] = []
    stores: dict[str, object] = {}
    for spec in specs:
        scheme = urlsplit(spec).scheme if "://" in spec else ""
        if not scheme or scheme == "file":
            files += [Path(p) for p in _local(spec.removeprefix("file://"))]
            continue
        if scheme not in stores:
            stores[scheme] = _S3() if scheme in ("s3", "s3a") else _Fsspec(scheme)
        store = stores[scheme]
        listed = store.list(spec)
        if not listed:
            raise FileNotFoundError(f"{SOURCE}: MLCOST_FOCUS_PATH {spec!r}: no FOCUS files (.csv, .csv.gz, .parquet)")
        files += [_fetch(store, uri, size, tag, cache_dir) for uri, size, tag in listed]
    return sorted(set(files))


def files_by_day(
    files: list[Path], start: date, end: date, log: Callable[[str], None] | None = None
) -> list[tuple[date, Path]]:
    """(day, file) for each day of [start, end) a file has charges for, after reading and checking every file."""
    out: list[tuple[date, Path]] = []
    now = datetime.now(UTC).replace(tzinfo=None)
    con = duckdb.connect()
    try:
        for path in files:
            try:
                frame = read_focus_export(con, [str(path)], start, end, now)
            except (NormalizationError, duckdb.Error) as exc:
                raise SourceDataError(f"{SOURCE} {window_label(start, end)}: {exc}") from exc
            for (day, currency) in frame.select("x_ChargeDate", "BillingCurrency").unique().iter_rows():
                if not is_known_currency(currency):
                    raise SourceDataError(
                        f"{SOURCE} partition {day}: file {path}: field BillingCurrency: unknown currency "
                        f"{currency!r} (not an ISO 4217 code)"
                    )
            days = sorted(set(frame["x_ChargeDate"].to_list()))
            out += [(day, path) for day in days]
            if log and days:
                log(f"FOCUS export: {path} has {frame.height} charge(s) on {len(days)} day(s) of the window")
    finally:
        con.close()
    return sorted(out)
