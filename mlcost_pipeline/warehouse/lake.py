"""The lake: export files landed as they are, byte for byte, named by their content.

Layout: `<lake>/files/<first 2 hex of sha256>/<sha256><extension>` (the extension the reader needs: `.csv`,
`.csv.gz`, `.parquet` ...). A provider that overwrites its export cannot change what a past run saw, a rerun reads
the same bytes, and the same bytes land once however many runs and roots name them. The copy is where the file's
sha256 is computed (one read of the source); it is written aside (`.<name>.part`) and renamed, so a reader never
sees half a file and a killed copy leaves only a `.part` file behind (never under a content name). A file landed
before is hashed (read) but not written again: a daily run re-reads the month-to-date files it counts anyway.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

_CHUNK = 1 << 20
_EXTENSIONS = (".snappy.parquet", ".gz.parquet", ".csv.gz", ".parquet", ".parq", ".csv")


def extension(path: Path) -> str:
    name = path.name.lower()
    return next((e for e in _EXTENSIONS if name.endswith(e)), path.suffix.lower())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def land_file(source: Path, lake_dir: Path) -> tuple[Path, str]:
    """`source`'s lake copy (made unless its bytes are there already) and its sha256."""
    sha = _sha256(source)
    target = lake_dir / "files" / sha[:2] / f"{sha}{extension(source)}"
    if target.is_file():
        return target, sha
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{uuid.uuid4().hex}.part")
    digest = hashlib.sha256()
    try:
        with source.open("rb") as src, partial.open("wb") as out:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha:  # rewritten while we read it: land nothing rather than the wrong name
            raise OSError(f"{source} changed while it was being landed; rerun to land its new content")
        os.replace(partial, target)
        return target, sha
    finally:
        partial.unlink(missing_ok=True)
