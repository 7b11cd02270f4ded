"""What sampling system metrics costs a training job: the same job trained in a fresh process with the sampler
of the service's reporter and without it, in interleaved rounds; and the batch timer every step runs (both
arms run it), timed alone against a training step.

    .venv/bin/python bench/system_metrics.py --data-dir data [--rounds 5] [--steps 1500] [--period 0.5]

The period is shorter than SYSTEM_METRICS_SECONDS' default (10 s), so that the cost, if any, shows. Target: at
most 2% of the job's training speed (steps/s, evaluation left out).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import in_fresh_process
from models.kinds import parse_spec
from models.run import run_job
from models.training.curve import DataTimer
from models.training.precision import cpu_model
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource
from workers.system_metrics import SystemSampler

SPEC = {"model": "torch_mlp", "hidden_units": [800, 600, 400], "batch_size": 200, "optimizer": "adam",
        "learning_rate": 1e-4, "eval_every": 100_000, "log_every": 10, "device": "cpu"}  # fmt: skip


class SamplingReporter(InMemoryReporter):
    """An in-memory reporter that samples as the service's reporter does (`workers/reporter.py::progress`)."""

    def __init__(self, period: float) -> None:
        super().__init__()
        self.sampler = SystemSampler(1, 1.0, period)
        self.samples: list[Any] = []

    def progress(
        self, step: int, steps_per_second: float, images_per_second: float, data_wait: float | None = None
    ) -> None:
        super().progress(step, steps_per_second, images_per_second, data_wait)
        if self.sampler.due():
            self.samples.append(self.sampler.sample(step, data_wait))


def train(data_dir: Path, steps: int, period: float | None) -> tuple[float, int]:
    """(steps/s, samples taken) of one job, sampling every `period` seconds or not at all."""
    reporter = InMemoryReporter() if period is None else SamplingReporter(period)
    result = run_job(parse_spec({**SPEC, "max_steps": steps}), reporter, DataSource(data_dir))
    taken = len(reporter.samples) if isinstance(reporter, SamplingReporter) else 0
    return float(result.job_metrics()["steps_per_second"]), taken


def timer_seconds_per_step(calls: int = 1_000_000) -> float:
    timer = DataTimer()
    started = time.perf_counter()
    for _ in range(calls):
        with timer:
            pass
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--period", type=float, default=0.5)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; {SPEC['hidden_units']} MLP, batch {SPEC['batch_size']}, {args.steps} steps per run")
    print("\n| round | without sampling, steps/s | with sampling, steps/s | samples | with / without |")
    print("|---|---|---|---|---|")
    ratios = []
    for round_ in range(args.rounds):
        order = [None, args.period] if round_ % 2 == 0 else [args.period, None]
        speeds: dict[float | None, tuple[float, int]] = {}
        for period in order:
            speeds[period] = in_fresh_process(train, args.data_dir, args.steps, period)
        (plain, _), (sampled, taken) = speeds[None], speeds[args.period]
        ratios.append(sampled / plain)
        print(f"| {round_ + 1} | {plain:.1f} | {sampled:.1f} | {taken} | {sampled / plain:.3f} |")
    median = statistics.median(ratios)
    print(f"\nmedian with / without: {median:.3f} (target >= 0.98); sampling every {args.period} s")
    per_step = timer_seconds_per_step()
    step_seconds = 1 / statistics.median(in_fresh_process(train, args.data_dir, 300, None)[0] for _ in range(1))
    print(
        f"batch timer: {per_step * 1e9:.0f} ns per step, {per_step / step_seconds:.5%} of a {step_seconds * 1e3:.2f} "
        "ms step (in both arms)"
    )


if __name__ == "__main__":
    main()
