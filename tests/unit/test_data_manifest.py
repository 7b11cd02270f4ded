"""A data set's manifest hash: the same files give the same hash (kept in the cache), a changed file a new one."""

import json
import os
from pathlib import Path

from models.data.manifest import manifest
from tests.datagen import CLASSES, write_image_folder


def test_the_manifest_changes_with_the_files_and_is_kept_while_they_do_not(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "set", CLASSES[:2], n_train_per_class=3, n_test_per_class=2, fmt="PNG")
    first = manifest(root)
    assert first["files"] == 10 and len(first["sha256"]) == 64
    kept = json.loads((root / ".cache" / "manifest.json").read_text())
    assert kept["sha256"] == first["sha256"]
    assert manifest(root) == first  # unchanged files: the same hash (read from the cache)

    image = sorted((root / "train").rglob("*.png"))[0]
    data = bytearray(image.read_bytes())
    data[-20] ^= 0xFF  # one byte of one file, same size
    image.write_bytes(bytes(data))
    changed = manifest(root)
    assert changed["sha256"] != first["sha256"] and changed["files"] == 10

    stat = image.stat()
    (root / "test" / "extra.txt").write_text("x")
    added = manifest(root)
    assert added["files"] == 11 and added["sha256"] != changed["sha256"]
    (root / "test" / "extra.txt").unlink()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert manifest(root) == changed  # back to the same files: the same hash
