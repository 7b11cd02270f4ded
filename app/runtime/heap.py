"""What lives as long as the API process, kept out of the cyclic collector's full collections.

A full collection scans every tracked object with the whole process waiting: 163 ms for the API's modules
with torch (340,000 objects), 0 ms once they are frozen (`.venv/bin/python -c "import gc, time, torch,
app.main; t = time.perf_counter(); gc.collect(); print(time.perf_counter() - t)"`, then the same after
`gc.freeze()`); under polling one came every few seconds. Modules, routes and a loaded model's code live
until the process ends:
frozen (`gc.freeze`, which costs nothing: it moves lists), a full collection scans only what came after
them and takes a few milliseconds. Not collected first (that is a full collection, 150 ms each time an
application starts in a test process): the cyclic garbage of that moment stays, once per start and per
import, and objects alive then that die later are still freed by their reference counts."""

import gc
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def freeze_long_lived() -> None:
    gc.freeze()


def freezing_what_it_imports(load: Callable[[], T]) -> T:
    """`load()`; when it imported modules (torch, the first time a model loads), they and what came with
    them are frozen too."""
    modules_before = len(sys.modules)
    loaded = load()
    if len(sys.modules) > modules_before:
        freeze_long_lived()
    return loaded


def thaw() -> None:
    """At shutdown: an application in a test process ends, the process goes on."""
    gc.unfreeze()
