"""Jobs exported for TensorBoard: one run folder per job (`job-<id>`) with its curves (`train/loss`,
`train/accuracy`, `test/loss`, `test/accuracy`), its system metrics (`system/cpu`, `system/rss_mb`, ... by training
step) and its spec as hyperparameters with its final metrics (the HParams plugin). Needs the `tensorboard` package
(`pip install 'cifar-jobs[tensorboard]'`); imports torch's writer."""

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cifar_jobs.jobs import Job

SYSTEM_FIELDS = ("cpu", "rss_mb", "data_wait", "gpu_util", "gpu_mem_mb")


def hparam_value(value: Any) -> bool | int | float | str:
    """What the HParams plugin takes (a number, a string or a bool): lists and objects as compact JSON."""
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, separators=(",", ":"))


def export_job(job: Job, directory: Path) -> Path:
    """Write one job's run folder under `directory`; its path."""
    try:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ModuleNotFoundError as exc:
        if exc.name != "tensorboard":
            raise
        raise ModuleNotFoundError(
            "the TensorBoard export needs tensorboard: pip install 'cifar-jobs[tensorboard]'", name="tensorboard"
        ) from None
    run = directory / f"job-{job.id}"
    run.mkdir(parents=True, exist_ok=True)
    with SummaryWriter(log_dir=str(run)) as writer:
        for point in job.curve():
            writer.add_scalar(f"{point['split']}/loss", point["loss"], point["step"])
            writer.add_scalar(f"{point['split']}/accuracy", point["accuracy"], point["step"])
        for sample in job.system():
            for field in SYSTEM_FIELDS:
                if sample.get(field) is not None:
                    writer.add_scalar(f"system/{field}", sample[field], sample["step"])
        spec = {key: hparam_value(value) for key, value in job.spec.items() if value is not None}
        metrics = {f"final/{key}": float(value) for key, value in job.final_metrics.items()
                   if isinstance(value, int | float) and not isinstance(value, bool)}  # fmt: skip
        experiment, session_start, session_end = hparams(spec, metrics)  # type: ignore[no-untyped-call]
        for summary in (experiment, session_start, session_end):
            writer.file_writer.add_summary(summary)
        for key, value in metrics.items():
            writer.add_scalar(key, value)
    return run


def export_tensorboard(jobs: Iterable[Job], directory: str | Path) -> list[Path]:
    """Each job's run folder under `directory` (`tensorboard --logdir DIRECTORY` shows them side by side)."""
    return [export_job(job, Path(directory)) for job in jobs]
