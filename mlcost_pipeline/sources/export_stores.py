"""Where export files live: local folders, `s3://` (boto3) and every other fsspec protocol, and the local cache.

Source: MLCOST_FOCUS_PATH specs (folders, globs, files, URLs). `store_for(spec)` gives the `Store` that lists and
reads them: local paths (and file://), `s3://`/`s3a://` through boto3 (endpoint from AWS_ENDPOINT_URL_S3 /
AWS_ENDPOINT_URL as boto3 reads them), any other fsspec protocol (`gs://` gcsfs, `az://`/`abfs://` adlfs).
`fetch` makes a chosen file readable by DuckDB: a local file as it is, a remote one copied to the cache
(MLCOST_FOCUS_CACHE_DIR; `.part` then an atomic rename, re-downloaded when size or ETag change), a `.zip` (legacy
CUR) extracted to the cache. `resolve_exports` runs discovery over every spec and fetches what counts.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from mlcost_pipeline.sources.export_discovery import Discovery, discover
from mlcost_pipeline.sources.export_discovery_model import ExportFile, ObjectInfo, Store, is_data

SOURCE = "focus_export"
_FSSPEC_PACKAGES = {"gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs"}


def _scheme(spec: str) -> str:
    return urlsplit(spec).scheme if "://" in spec else ""


class LocalStore:
    """Local files; URIs are absolute paths."""

    @staticmethod
    def _info(path: Path) -> ObjectInfo:
        st = path.stat()
        return ObjectInfo(
            str(path), st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), str(st.st_mtime_ns)
        )

    def list(self, root: str) -> list[ObjectInfo]:
        path = Path(root)
        if path.is_file():
            return [self._info(path)]
        if not path.is_dir():
            raise FileNotFoundError(f"{SOURCE}: MLCOST_FOCUS_PATH {root!r}: no such file or folder")
        return sorted((self._info(p) for p in path.rglob("*") if p.is_file()), key=lambda o: o.uri)

    def read_bytes(self, uri: str) -> bytes:
        return Path(uri).read_bytes()


class S3Store:
    def __init__(self, scheme: str = "s3"):
        import boto3

        self.scheme = scheme
        self.client = boto3.client("s3")

    def list(self, root: str) -> list[ObjectInfo]:
        parts = urlsplit(root)
        bucket, key = parts.netloc, parts.path.lstrip("/")
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents") or []:
                if not obj["Key"].endswith("/"):  # folder markers
                    out.append(ObjectInfo(f"{self.scheme}://{bucket}/{obj['Key']}", int(obj["Size"]),
                                          obj.get("LastModified"), str(obj.get("ETag", ""))))  # fmt: skip
        if key and not key.endswith("/"):  # a file, or a folder named without its slash (not its namesakes)
            exact = [o for o in out if o.uri == f"{self.scheme}://{bucket}/{key}"]
            out = exact or [o for o in out if o.uri.startswith(f"{self.scheme}://{bucket}/{key}/")]
        return out

    def read_bytes(self, uri: str) -> bytes:
        parts = urlsplit(uri)
        return self.client.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()

    def download(self, uri: str, target: Path) -> None:
        parts = urlsplit(uri)
        self.client.download_file(parts.netloc, parts.path.lstrip("/"), str(target))


def _modified(info: dict) -> datetime | None:
    for key in ("LastModified", "last_modified", "updated", "mtime", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str) and value:
            try:
                t = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return t if t.tzinfo else t.replace(tzinfo=UTC)
    return None


class FsspecStore:
    """Any other fsspec protocol: `gs://` (gcsfs), `az://`/`abfs://` (adlfs), `memory://` ...

    Credentials come from each driver's own chain, never from here: gcsfs tries Google ADC, then anonymous access,
    and honours STORAGE_EMULATOR_HOST; adlfs reads AZURE_STORAGE_CONNECTION_STRING, or the account name (in the
    URL as container@<account>.blob.core.windows.net, or AZURE_STORAGE_ACCOUNT_NAME) with a key, SAS token,
    service principal or DefaultAzureCredential.
    """

    def __init__(self, spec: str):
        import fsspec

        parts = urlsplit(spec)
        self.protocol = parts.scheme
        # adlfs names the account in the URL: kept in each URI so two accounts' containers never share a cache path
        self.account = parts.netloc.split("@", 1)[1] if "@" in parts.netloc else ""
        try:
            if self.protocol in ("gs", "gcs"):
                # gcsfs's default class first asks the Storage Control gRPC API for each bucket's layout (one more
                # permission, and emulators do not serve it); the JSON API client reads standard buckets fully.
                from gcsfs.core import GCSFileSystem

                self.fs = GCSFileSystem(**GCSFileSystem._get_kwargs_from_urls(spec))
            else:
                self.fs, _ = fsspec.core.url_to_fs(
                    spec
                )  # the URL's own options (account name) reach the driver
        except ImportError as exc:
            package = _FSSPEC_PACKAGES.get(self.protocol)
            hint = f" (pip install {package})" if package else ""
            raise RuntimeError(
                f"{SOURCE}: reading {self.protocol}:// needs an fsspec driver{hint}: {exc}"
            ) from exc

    def _uri(self, name: str) -> str:
        if "://" in name:
            return name
        name = name.lstrip("/")
        if self.account:
            container, _, key = name.partition("/")
            return f"{self.protocol}://{container}@{self.account}/{key}"
        return f"{self.protocol}://{name}"

    def list(self, root: str) -> list[ObjectInfo]:
        self.fs.invalidate_cache()  # fsspec keeps listings per process: a rerun must see files written since
        if self.fs.isdir(root):
            found = self.fs.find(
                root, detail=True
            )  # one paged listing with details, not an info call per file
        else:
            info = self.fs.info(root)
            found = {info.get("name", root): info}
        out = []
        for name, info in sorted(found.items()):
            if info.get("type") == "file":
                tag = str(
                    info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("mtime") or ""
                )
                out.append(ObjectInfo(self._uri(name), int(info.get("size") or 0), _modified(info), tag))
        return out

    def read_bytes(self, uri: str) -> bytes:
        return self.fs.cat_file(uri)

    def download(self, uri: str, target: Path) -> None:
        self.fs.get_file(uri, str(target))


def store_for(spec: str) -> Store:
    """The store for a spec: local path/glob, file://, s3://, s3a://, gs://, az://, abfs:// (any fsspec URL)."""
    scheme = _scheme(spec)
    if not scheme or scheme == "file":
        return LocalStore()
    if scheme in ("s3", "s3a"):
        return S3Store(scheme)
    return FsspecStore(spec)


def _cache_path(cache_dir: Path, uri: str) -> Path:
    parts = urlsplit(uri)
    if not parts.scheme:
        return cache_dir / "local" / uri.lstrip("/")
    return cache_dir / parts.scheme / parts.netloc / parts.path.lstrip("/")


def _fingerprint(f: ExportFile) -> str:
    return hashlib.sha256(f"{f.size}:{f.tag}".encode()).hexdigest()


def _cached(target: Path, f: ExportFile, size: int | None) -> bool:
    stamp = target.with_name(target.name + ".etag")
    return (target.is_file() and stamp.is_file() and stamp.read_text() == _fingerprint(f)
            and (size is None or target.stat().st_size == size))  # fmt: skip


def _stamp(target: Path, f: ExportFile) -> None:
    target.with_name(target.name + ".etag").write_text(_fingerprint(f))


def _extract(archive: Path, f: ExportFile, cache_dir: Path) -> Path:
    """The one data file (CSV) a `.zip` holds, extracted beside the archive's cache path."""
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir() and is_data(m.filename.rsplit("/", 1)[-1])]
        if len(members) != 1:
            names = [m.filename for m in zf.infolist()]
            raise ValueError(f"{SOURCE}: file {f.uri}: a ZIP export must hold one data file, found {names}")
        target = _cache_path(cache_dir, f.uri + ".unzipped") / Path(members[0].filename).name
        if _cached(target, f, members[0].file_size):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with zf.open(members[0]) as src, partial.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    os.replace(partial, target)
    _stamp(target, f)
    return target


def fetch(store: Store, f: ExportFile, cache_dir: Path) -> Path:
    """The local file to read for `f`: local as is, remote a cached copy, a ZIP its extracted data file."""
    if isinstance(store, LocalStore):
        path = Path(f.uri)
    else:
        path = _cache_path(cache_dir, f.uri)
        if not _cached(path, f, f.size):
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".part")
            store.download(f.uri, partial)  # type: ignore[attr-defined]  (every remote store here has it)
            os.replace(partial, path)  # a reader never sees half a file
            _stamp(path, f)
    return _extract(path, f, cache_dir) if f.uri.lower().endswith(".zip") else path


def resolve_exports(specs: Sequence[str], cache_dir: Path) -> tuple[list[tuple[ExportFile, Path]], Discovery]:
    """Every file that counts under the specs (a comma list of MLCOST_FOCUS_PATH roots), fetched, and why."""
    if not specs:
        raise ValueError(f"{SOURCE}: MLCOST_FOCUS_PATH is not set (a folder, glob or s3:// gs:// az:// URL)")
    out: list[tuple[ExportFile, Path]] = []
    total = Discovery()
    seen: set[str] = set()
    s3: dict[str, Store] = {}
    for spec in specs:
        scheme = _scheme(spec)
        local = scheme in ("", "file")
        root = os.path.abspath(os.path.expanduser(spec.removeprefix("file://"))) if local else spec
        if scheme in ("s3", "s3a") and scheme not in s3:
            s3[scheme] = S3Store(scheme)  # one client for every s3:// root
        store = s3[scheme] if scheme in s3 else store_for(spec)  # a missing driver says so itself
        try:
            found = discover(store, root)
            if not local and not found.files and not found.decisions:
                raise FileNotFoundError(f"{SOURCE}: MLCOST_FOCUS_PATH {spec!r}: no export files "
                                        "(.csv, .csv.gz, .parquet, .zip)")  # fmt: skip
            for f in found.files:
                if f.uri not in seen:
                    seen.add(f.uri)
                    out.append((f, fetch(store, f, cache_dir)))
        except (FileNotFoundError, ValueError):
            raise
        except Exception as exc:  # the store's own error (403, timeout ...) says what; this says where
            raise RuntimeError(f"{SOURCE}: MLCOST_FOCUS_PATH {spec!r}: {type(exc).__name__}: {exc}") from exc
        total.decisions += found.decisions
    total.files = [f for f, _ in out]
    return out, total
