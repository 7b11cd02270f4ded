"""Loaded models for /predict, least recently used dropped first; a hit reads nothing from the database."""

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
        self._models: OrderedDict[int, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: int, load: Callable[[], LoadedModel]) -> LoadedModel:
        """The job's loaded model, loaded with `load()` on a miss."""
        with self._lock:
            if job_id in self._models:
                self._models.move_to_end(job_id)
                return self._models[job_id]
        entry = load()  # outside the lock: other models stay available while one loads
        with self._lock:
            self._models[job_id] = entry
            self._models.move_to_end(job_id)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return entry
