"""Loaded models for /predict, least recently used dropped first; a hit reads nothing from the database."""

import threading
from collections import OrderedDict
from collections.abc import Callable

from models.predict import Predictor


class ModelCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._models: OrderedDict[int, tuple[str, Predictor]] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a model was read from the database and built

    def get(self, job_id: int, load: Callable[[], tuple[str, Predictor]]) -> tuple[str, Predictor]:
        """The (model kind, predictor) of the job, loaded with `load()` on a miss."""
        with self._lock:
            if job_id in self._models:
                self._models.move_to_end(job_id)
                return self._models[job_id]
        entry = load()  # outside the lock: other models stay available while one loads
        with self._lock:
            self.loads += 1
            self._models[job_id] = entry
            self._models.move_to_end(job_id)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return entry
