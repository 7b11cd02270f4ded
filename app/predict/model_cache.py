"""Loaded models for /predict, within a byte budget, least recently used dropped first.

Keyed by the job and its model's SHA-256, which the request reads first (metadata only): a deleted
job never answers from its model, nor does a job whose model changed. Requests that miss the same model at
the same time load it once; a model larger than the whole budget is loaded for its request and not kept.
"""

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from cachetools import LRUCache

from models.prediction import Predictor
from store.errors import ArtifactCorrupt

Key = tuple[int, str]  # job id, model sha256


@dataclass(frozen=True)
class LoadedModel:
    model_kind: str
    predictor: Predictor


class ModelCache:
    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = max(0, capacity_bytes)
        self._models: LRUCache[Key, tuple[LoadedModel, int]] = LRUCache(
            maxsize=max(1, self.capacity_bytes), getsizeof=lambda entry: entry[1]
        )
        self._loading: dict[Key, Future[LoadedModel]] = {}
        self._lock = threading.Lock()
        self._damaged: set[Key] = set()  # models whose bytes failed their SHA-256: not read again
        self.loads = 0  # how many times a model was loaded
        self.waiting = 0  # requests waiting for another request's load of the same model

    @property
    def cached_bytes(self) -> int:
        with self._lock:
            return int(self._models.currsize)

    def get(self, key: Key, size_bytes: int, load: Callable[[], LoadedModel]) -> LoadedModel:
        """The model of `key` (its file `size_bytes` long), loaded with `load()` on a miss."""
        with self._lock:
            kept = self._models.get(key)  # a hit makes it the most recently used
            if kept is not None:
                return kept[0]
            if key in self._damaged:
                raise ArtifactCorrupt(key[0], "model")
            pending = self._loading.get(key)
            leader = pending is None
            if pending is None:
                pending = self._loading[key] = Future()
        if not leader:  # another request is loading it: wait for that one
            with self._lock:
                self.waiting += 1
            try:
                return pending.result()
            finally:
                with self._lock:
                    self.waiting -= 1
        try:
            entry = load()  # outside the lock: other models stay available while one loads
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
                if isinstance(exc, ArtifactCorrupt):
                    self._damaged.add(key)
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._loading[key]
            self.loads += 1
            if 0 < size_bytes <= self.capacity_bytes:
                self._models[key] = (entry, size_bytes)  # the least recently used go until it fits
        pending.set_result(entry)
        return entry
