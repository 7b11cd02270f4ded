"""Long-lived objects out of the cyclic collector's full collections (app.runtime.heap)."""

import gc
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.runtime.heap import freezing_what_it_imports, thaw


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "freshly_imported.py").write_text("TABLE = [{'row': i} for i in range(1000)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "freshly_imported"
    sys.modules.pop("freshly_imported", None)
    thaw()


def test_a_load_that_imports_freezes_what_came_and_one_that_does_not_freezes_nothing(importable: str) -> None:
    thaw()
    assert freezing_what_it_imports(lambda: 42) == 42
    assert gc.get_freeze_count() == 0  # nothing imported: nothing frozen (no 150 ms collection either)
    module = freezing_what_it_imports(lambda: importlib.import_module(importable))
    assert gc.get_freeze_count() > len(module.TABLE)
    # the module's objects are alive and out of the lists a full collection scans
    assert not any(obj is module.TABLE or obj is module.TABLE[0] for obj in gc.get_objects())
