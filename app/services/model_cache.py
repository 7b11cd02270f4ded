"""Loaded models for /predict, least recently used dropped first.

Keyed by the job and its model's SHA-256, which the request reads first (metadata only): a deleted
job, or a new job that got a deleted one's id (SQLite reuses the highest id), never answers from
another model."""

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from models.prediction import Predictor


@dataclass(frozen=True)
class LoadedModel:
    model_kind: str
    predictor: Predictor


class ModelCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._models: OrderedDict[tuple[int, str], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, str], load: Callable[[], LoadedModel]) -> LoadedModel:
        """The model of (job id, model sha256), loaded with `load()` on a miss."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        entry = load()  # outside the lock: other models stay available while one loads
        with self._lock:
            self._models[key] = entry
            self._models.move_to_end(key)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return entry
