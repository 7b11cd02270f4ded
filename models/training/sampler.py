"""Mini-batches of indices, drawn without replacement and reshuffled every epoch, from a seeded
generator: the one sampler of every backend (the torch backend moves each batch to its device)."""

import json
from typing import Any

import numpy as np


class EpochSampler:
    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = np.empty(0, dtype=np.int64)
        self.position = 0

    def next(self) -> np.ndarray:
        """The next batch's indices (int64); a batch that crosses an epoch ends it and starts the next."""
        parts = []
        needed = self.batch_size
        while needed > 0:
            if self.position >= len(self.order):
                self.order = self.rng.permutation(self.n)
                self.position = 0
            take = self.order[self.position : self.position + needed]
            self.position += len(take)
            needed -= len(take)
            parts.append(take)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def state(self) -> tuple[str, np.ndarray]:
        """(the generator and position as JSON, the current epoch's order), for a checkpoint."""
        return json.dumps({"rng": self.rng.bit_generator.state, "position": self.position}), self.order

    def load_state(self, meta_json: str, order: np.ndarray) -> None:
        meta: dict[str, Any] = json.loads(meta_json)
        self.rng.bit_generator.state = meta["rng"]
        self.position = meta["position"]
        self.order = np.asarray(order, dtype=np.int64)
