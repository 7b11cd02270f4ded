"""Running one job: knows the spec and a reporter, nothing about HTTP, SQL or who dispatched it."""

import logging
import resource

from models.artifacts import ModelArtifact, pack_model
from models.data.arrays import DatasetError
from models.data.catalog import load_dataset
from models.data.preprocessing import fit_normalization
from models.errors import JobError
from models.kinds import KINDS, JobSpec
from models.training.denormals import denormals_flushed
from models.training.reporting import Reporter
from models.training.results import DataSource, RunResult, StartFrom

log = logging.getLogger(__name__)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_job(spec: JobSpec, reporter: Reporter, source: DataSource, start: StartFrom | None = None) -> RunResult:
    """Load the data set, train the model the spec names (continuing from `start.checkpoint`, or
    starting from `start.init`'s weights and normalisation, when given); return its metrics and the
    packed model (of the last step, also when it stopped early).

    Raises JobError with a message for the user when the job cannot run (missing data set,
    no GPU for a `cuda` job, out of memory, a diverging loss).
    """
    try:
        arrays = load_dataset(spec.dataset, source.data_dir, download=source.download)
    except DatasetError as exc:
        raise JobError(str(exc)) from exc
    log.info("data set %s: %s training and %s test images of %s classes", spec.dataset, f"{len(arrays.train_y):,}",
             f"{len(arrays.test_y):,}", arrays.n_classes)  # fmt: skip
    start = start or StartFrom()
    if start.init is not None:  # the weights were trained on inputs normalised this way
        norm = start.init.normalization
    else:
        norm = fit_normalization(spec.preprocessing or "standardize", arrays.train_x)  # resnet18 fills it in
    try:
        with denormals_flushed():  # the assignment's initialisation makes denormals; many CPUs crawl on them
            result = KINDS[spec.model].train(spec, arrays, norm, reporter, source, start)
    except MemoryError as exc:
        raise JobError(f"out of memory: {exc or 'the model or batch is too large'}; lower batch_size") from exc
    except FloatingPointError as exc:
        raise JobError(str(exc)) from exc
    except RuntimeError as exc:
        if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc):
            raise JobError(f"out of GPU memory: lower batch_size or the model's size ({exc})") from exc
        if "can't allocate memory" in str(exc):  # torch's CPU allocator, at the process's memory limit
            raise JobError("out of memory: the training process reached its memory limit; lower batch_size "
                           "or the model's size") from exc  # fmt: skip
        raise
    if result.weights:  # a stopped run keeps the model it reached (a sweep's early stop stores it)
        result.artifact = pack_model(
            ModelArtifact(spec.model_dump(mode="json"), arrays.class_names, norm, result.weights)
        )
    result.metrics["peak_rss_mb"] = peak_rss_mb()
    return result
