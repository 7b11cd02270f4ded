"""Long curves in few points that keep their shape.

Per split, the points are cut into buckets of consecutive steps; each bucket keeps the points with
its lowest and highest loss and its lowest and highest accuracy (so spikes and dips survive), and
every curve keeps its first and last point, and the test split its best accuracy. A split within
its share of the budget is returned whole. Vectorised: a 100,000-point curve takes milliseconds.
"""

from dataclasses import dataclass

import numpy as np

from store.points import PointRow

KEPT_PER_BUCKET = 4  # lowest and highest loss, lowest and highest accuracy
ALWAYS_KEPT = 3  # first, last, best
MIN_MAX_POINTS = 2 * (KEPT_PER_BUCKET + ALWAYS_KEPT)


@dataclass
class Curve:
    """A job's points as columns, in step order (train before test at the same step)."""

    step: np.ndarray  # int64
    is_test: np.ndarray  # bool
    loss: np.ndarray  # float64
    accuracy: np.ndarray  # float64

    @classmethod
    def from_rows(cls, rows: list[PointRow]) -> "Curve":
        return cls(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] == "test" for r in rows], dtype=bool),
            np.array([r[2] for r in rows], dtype=np.float64),
            np.array([r[3] for r in rows], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.step)

    def select(self, indices: np.ndarray) -> "Curve":
        return Curve(self.step[indices], self.is_test[indices], self.loss[indices], self.accuracy[indices])

    def rows(self, indices: np.ndarray | None = None) -> list[PointRow]:
        chosen = np.arange(len(self)) if indices is None else indices
        splits = np.where(self.is_test[chosen], "test", "train")
        return list(
            zip(
                self.step[chosen].tolist(),
                splits.tolist(),
                self.loss[chosen].tolist(),
                self.accuracy[chosen].tolist(),
                strict=True,
            )
        )


def _first_extreme_per_bucket(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, lowest: bool) -> np.ndarray:
    """Index (into `values`) of each bucket's first lowest (or highest) value."""
    extremes = (np.minimum if lowest else np.maximum).reduceat(values, starts)
    bucket = np.repeat(np.arange(len(starts)), lengths)
    hits = np.flatnonzero(values == extremes[bucket])
    _, first = np.unique(bucket[hits], return_index=True)
    return hits[first]


def _keep_in_split(curve: Curve, members: np.ndarray, budget: int, keep_best: bool) -> np.ndarray:
    """Which of `members` (indices of one split, in step order) to keep within `budget` points."""
    n = len(members)
    if n <= budget:
        return members
    keep = [np.array([0, n - 1])]
    if keep_best:
        keep.append(np.array([int(np.argmax(curve.accuracy[members]))]))
    buckets = max(1, (budget - ALWAYS_KEPT) // KEPT_PER_BUCKET)
    starts = (np.arange(buckets) * n) // buckets
    lengths = np.diff(np.append(starts, n))
    for values in (curve.loss[members], curve.accuracy[members]):
        keep.append(_first_extreme_per_bucket(values, starts, lengths, lowest=True))
        keep.append(_first_extreme_per_bucket(values, starts, lengths, lowest=False))
    kept: np.ndarray = members[np.unique(np.concatenate(keep))]
    return kept


def downsample(curve: Curve, max_points: int) -> np.ndarray:
    """Indices of at most `max_points` points of `curve` (max_points >= MIN_MAX_POINTS), in step order.
    The budget is shared by the splits in proportion to their length."""
    if len(curve) <= max_points:
        return np.arange(len(curve))
    kept = []
    for is_test in (False, True):
        members = np.flatnonzero(curve.is_test == is_test)
        if len(members):
            share = max(KEPT_PER_BUCKET + ALWAYS_KEPT, max_points * len(members) // len(curve))
            kept.append(_keep_in_split(curve, members, share, keep_best=is_test))
    return np.sort(np.concatenate(kept))
