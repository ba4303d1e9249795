"""FOCUS export files (AWS Data Exports, Azure FocusCost, GCP FOCUS export, any FOCUS 1.0-1.2 file) by day.

Source: MLCOST_FOCUS_PATH, a comma list of folders, globs or single files, local or remote: `s3://` through
boto3 (endpoint from `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL` as boto3 reads them), any other fsspec protocol
(`gs://` through gcsfs, `az://`/`abfs://` through adlfs, both installed) through fsspec. Remote files are
copied to a local cache (MLCOST_FOCUS_CACHE_DIR, re-downloaded when size or ETag changes) because DuckDB scans
local files: its httpfs extension would be a download at run time. Grain of the answer: (UTC charge day, local
file) for every file holding a charge of that day; each such file is read whole with the checks core.focus_costs
uses, so a broken file, a missing mandatory column or an unknown currency fails the window before anything lands
(a Parquet file whose statistics put it outside the window is not opened).
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from mlcost_pipeline.normalize.focus_export import file_days
from mlcost_pipeline.normalize.focus_schema import NormalizationError
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
    """Any other fsspec protocol: `gs://` (gcsfs), `az://`/`abfs://` (adlfs), `memory://` ...

    Credentials come from each driver's own chain, never from here: gcsfs tries Google ADC
    (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server), then anonymous access, and honours
    STORAGE_EMULATOR_HOST; adlfs reads AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME (or the
    `container@<account>.blob.core.windows.net` in the URL) with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN,
    a service principal (AZURE_STORAGE_CLIENT_ID/_SECRET/TENANT_ID) or, failing those, DefaultAzureCredential.
    """

    def __init__(self, spec: str):
        import fsspec

        parts = urlsplit(spec)
        self.protocol = parts.scheme
        # adlfs names the account in the URL (container@account.blob.core.windows.net): kept in each file's URI
        # so two accounts' same-named containers never share a cache path.
        self.account = parts.netloc.split("@", 1)[1] if "@" in parts.netloc else ""
        try:
            if self.protocol in ("gs", "gcs"):
                # gcsfs's default class (experimental zonal/HNS support) first asks the Storage Control gRPC API
                # for each bucket's layout, which needs one more permission and which emulators
                # (STORAGE_EMULATOR_HOST) do not serve (a 60 s timeout per bucket). Export files are objects read
                # whole from standard buckets: the JSON API client does all of it.
                from gcsfs.core import GCSFileSystem

                self.fs = GCSFileSystem(**GCSFileSystem._get_kwargs_from_urls(spec))
            else:
                self.fs, _ = fsspec.core.url_to_fs(spec)  # the URL's own options (account name) reach the driver
        except ImportError as exc:
            package = {"gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs"}.get(
                self.protocol)  # fmt: skip
            hint = f" (pip install {package})" if package else ""
            raise RuntimeError(f"{SOURCE}: reading {self.protocol}:// needs an fsspec driver{hint}: {exc}") from exc

    def _uri(self, name: str) -> str:
        if "://" in name:
            return name
        name = name.lstrip("/")
        if self.account:
            container, _, key = name.partition("/")
            return f"{self.protocol}://{container}@{self.account}/{key}"
        return f"{self.protocol}://{name}"

    def list(self, uri: str) -> list[tuple[str, int, str]]:
        # fsspec keeps filesystems (and their listings) per process: a rerun must see files written since.
        self.fs.invalidate_cache()
        # One listing with details (glob/find), not an info call per file: a request each on a remote store.
        if _GLOB & set(uri):
            found = self.fs.glob(uri, detail=True)
        elif self.fs.isdir(uri):
            found = self.fs.find(uri, detail=True)
        else:
            info = self.fs.info(uri)
            found = {info.get("name", uri): info}
        out = []
        for name, info in sorted(found.items()):
            if info.get("type") == "file" and is_focus_file(name):
                tag = str(info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("mtime") or "")
                out.append((self._uri(name), int(info.get("size") or 0), tag))
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
    stores: dict[str, _S3] = {}
    for spec in specs:
        scheme = urlsplit(spec).scheme if "://" in spec else ""
        if not scheme or scheme == "file":
            files += [Path(p) for p in _local(spec.removeprefix("file://"))]
            continue
        if scheme in ("s3", "s3a"):
            if scheme not in stores:
                stores[scheme] = _S3()
            store = stores[scheme]
        else:
            store = _Fsspec(spec)  # fsspec caches filesystems by options: one per account, not per spec
        try:
            listed = store.list(spec)
            if not listed:
                raise FileNotFoundError(f"{SOURCE}: MLCOST_FOCUS_PATH {spec!r}: no FOCUS files (.csv, .csv.gz, .parquet)")
            files += [_fetch(store, uri, size, tag, cache_dir) for uri, size, tag in listed]
        except FileNotFoundError:
            raise
        except Exception as exc:  # the store's own error (403, timeout ...) says what; this says where
            raise RuntimeError(f"{SOURCE}: MLCOST_FOCUS_PATH {spec!r}: {type(exc).__name__}: {exc}") from exc
    return sorted(set(files))


def _parquet_day_ranges(con: duckdb.DuckDBPyConnection, files: list[Path]) -> dict[str, tuple[date, date]]:
    """Parquet files -> (first, last) UTC day of ChargePeriodStart from the row-group statistics (footers only).

    The statistics hold the stored values: a timestamp (UTC) or an ISO text that may carry an offset, so a day
    is only trusted give or take one; a file without usable statistics is left out (and read instead).
    """
    parquet = [str(p) for p in files if str(p).lower().endswith((".parquet", ".parq"))]
    if not parquet:
        return {}
    rows = con.execute(
        "SELECT file_name, bool_and(stats_min IS NOT NULL AND stats_max IS NOT NULL), "
        "min(TRY_CAST(left(stats_min, 10) AS DATE)), max(TRY_CAST(left(stats_max, 10) AS DATE)), "
        "count(*) FILTER (WHERE TRY_CAST(left(stats_min, 10) AS DATE) IS NULL "
        "                  OR TRY_CAST(left(stats_max, 10) AS DATE) IS NULL) "
        "FROM parquet_metadata($files) WHERE lower(path_in_schema) = 'chargeperiodstart' GROUP BY ALL",
        {"files": parquet},
    ).fetchall()
    return {name: (lo, hi) for name, complete, lo, hi, unparsed in rows if complete and not unparsed}


def files_by_day(
    files: list[Path], start: date, end: date, log: Callable[[str], None] | None = None
) -> list[tuple[date, Path]]:
    """(day, file) for each day of [start, end) a file has charges for, every such file read and checked.

    A Parquet file whose statistics put every charge more than a day outside the window is not opened, so a
    daily run over a folder holding a year of exports costs O(day), not O(history). Every other file is read
    once with the production checks (file_days), which parse only the columns they need.
    """
    out: list[tuple[date, Path]] = []
    con = duckdb.connect()
    try:
        ranges = _parquet_day_ranges(con, files)
        for path in files:
            known = ranges.get(str(path))
            if known and (known[1] < start - timedelta(days=1) or known[0] > end):
                continue
            try:
                summary = file_days(con, str(path), start, end)
            except (NormalizationError, duckdb.Error) as exc:
                raise SourceDataError(f"{SOURCE} {window_label(start, end)}: {exc}") from exc
            days = sorted({day for day, *_ in summary})
            out += [(day, path) for day in days]
            if log and days:
                log(f"FOCUS export: {path} has {sum(r[-1] for r in summary)} charge(s) on {len(days)} day(s) "
                    "of the window")
    finally:
        con.close()
    return sorted(out)
