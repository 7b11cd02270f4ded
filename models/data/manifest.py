"""A data set's manifest hash: every file's name, size and content, hashed; what a reproduction checks its data by.

Hashing the contents reads the whole data set, so the result is kept in `<dataset>/.cache/manifest.json` under a
signature of the files' names, sizes and modification times (one `stat` each): it is computed again only when
a file is added, removed, resized or touched. Where the folder is read-only, it is computed each time.
"""

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_VERSION = 1
CHUNK = 1 << 20


@dataclass(frozen=True)
class _File:
    name: str  # relative to the data set's folder, with `/`
    path: str
    size: int
    mtime_ns: int


def _files(folder: str, prefix: str = "") -> list[_File]:
    """Every file of the data set in name order, the cache folder left out (`os.scandir`: one stat a file)."""
    with os.scandir(folder) as found:
        entries = sorted(found, key=lambda entry: entry.name)
    files = []
    for entry in entries:
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            if entry.name != ".cache":
                files.extend(_files(entry.path, f"{name}/"))
        elif entry.is_file():
            st = entry.stat()
            files.append(_File(name, entry.path, st.st_size, st.st_mtime_ns))
    return files


def _signature(files: list[_File]) -> str:
    digest = hashlib.sha256(f"v{MANIFEST_VERSION}".encode())
    for file in files:
        digest.update(f"{file.name}:{file.size}:{file.mtime_ns};".encode())
    return digest.hexdigest()


def _content_hash(files: list[_File]) -> str:
    digest = hashlib.sha256(f"v{MANIFEST_VERSION}".encode())
    for file in files:
        content = hashlib.sha256()
        with open(file.path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                content.update(chunk)
        digest.update(f"{file.name}:{file.size}:{content.hexdigest()};".encode())
    return digest.hexdigest()


def manifest(root: Path) -> dict[str, Any]:
    """`{"sha256", "files", "bytes"}` of the data set in `root` (cached while its files are unchanged)."""
    files = _files(str(root))
    signature = _signature(files)
    cached = root / ".cache" / "manifest.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        kept = json.loads(cached.read_text())
        if kept["signature"] == signature:
            return {key: kept[key] for key in ("sha256", "files", "bytes")}
    found = {"sha256": _content_hash(files), "files": len(files), "bytes": sum(file.size for file in files)}
    with contextlib.suppress(OSError):  # a read-only data folder: no cache
        cached.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump({"signature": signature, **found}, out)
        os.replace(tmp, cached)
    return found
