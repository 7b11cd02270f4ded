"""Starting a run from an earlier job's model (`init_from_job`): which of its tensors to load."""

import math

import numpy as np

from models.artifacts import ModelArtifact
from models.errors import JobError


def matched_weights(
    target_shapes: dict[str, tuple[int, ...]], source: ModelArtifact, source_job: int, n_classes: int
) -> dict[str, np.ndarray]:
    """The source's tensors to load into a network whose tensors have `target_shapes`.

    Every tensor must match by name and shape, except the output layer's when the class count
    differs (its first dimension is the class count): that layer starts new. Raises JobError naming
    the first tensor that differs otherwise."""
    source_classes = len(source.class_names)
    loaded: dict[str, np.ndarray] = {}
    for name, shape in target_shapes.items():
        found = source.weights.get(name)
        if found is None:
            raise JobError(f"init_from_job: job {source_job}'s model has no tensor {name!r}: the architectures differ")
        if tuple(found.shape) == shape or (found.size == 1 and math.prod(shape) == 1):  # scalars are stored 1-d
            loaded[name] = found.reshape(shape)
            continue
        is_head = source_classes != n_classes and found.shape[:1] == (source_classes,) and shape[:1] == (n_classes,)
        if not is_head:
            raise JobError(
                f"init_from_job: {name} is {tuple(found.shape)} in job {source_job}'s model and {shape} here: "
                "the architectures differ"
            )
    extra = sorted(set(source.weights) - set(target_shapes))
    if extra:
        raise JobError(f"init_from_job: job {source_job}'s model has tensors this one lacks, e.g. {extra[0]!r}")
    return loaded
