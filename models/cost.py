"""What a job will cost before it runs: parameters, FLOPs per training step and per evaluation, parameter and
activation memory (counted on the network itself, with torch's FLOP counter), and a measured probe: a few real
training steps and one evaluation of the job's own spec, in a fresh process, for its step time (less what it waited
for a CPU on a busy machine) and peak memory.
"""

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.kinds.common import CIFAR_INPUTS
from models.run import run_job
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource
from models.training.threads import train_with_cpus

BYTES_PER_VALUE = 4  # float32
CIFAR_TEST_IMAGES = 10_000
OPTIMIZER_STATES = {"sgd": 0, "sgd_momentum": 1, "adam": 2, "adamw": 2}  # values kept per parameter
PROBE_STEPS = 20
PROBE_WARMUP_STEPS = 5  # steps whose time counts as start-up, not as a step's (kernels chosen, memory first taken)


@dataclass(frozen=True)
class Cost:
    parameters: int
    forward_flops_per_image: int
    activation_values_per_image: int  # outputs of every layer, kept for the backward pass


def mlp_cost(hidden_units: list[int], n_classes: int = 10) -> Cost:
    """A plain MLP's cost: each layer a matrix product (2 FLOPs a weight) and a bias; its outputs kept."""
    sizes = [CIFAR_INPUTS, *hidden_units, n_classes]
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    kept = sum(b for _, b in pairs) + sum(hidden_units)  # each layer's output, and each hidden activation's
    return Cost(sum(a * b + b for a, b in pairs), sum(2 * a * b for a, b in pairs), kept)


def cost(spec: Any, n_classes: int = 10) -> Cost:
    """The cost of one image through the job's network (counted at batch 2: batch norm needs two in training)."""
    if spec.model == "numpy_mlp":
        return mlp_cost(list(spec.hidden_units), n_classes)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from models.kinds import KINDS

    network = KINDS[spec.model].build(spec, n_classes).eval()
    size = getattr(spec, "input_size", 32) or 32
    batch = torch.zeros(2, 3, size, size)
    outputs = 0

    def count(_module: Any, _inputs: Any, output: Any) -> None:
        nonlocal outputs
        if isinstance(output, torch.Tensor):
            outputs += output.numel()

    leaves = [m for m in network.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            network(batch)
    finally:
        for hook in hooks:
            hook.remove()
    parameters = sum(p.numel() for p in network.parameters())
    return Cost(parameters, counter.get_total_flops() // 2, outputs // 2)


@dataclass(frozen=True)
class Probe:
    step_seconds: float
    evaluation_seconds: float  # estimated: a forward pass costs about a third of a training step, per image
    overhead_seconds: float  # from the process's start to its first steps' end, beyond their steps' time
    peak_rss_mb: float
    steps: int
    waited_share: float = 0.0  # of the measured steps' wall time, what the probe waited for a CPU (left out)


def run_queue_waits() -> dict[int, float]:
    """Seconds each thread of this process has waited for a CPU while ready to run (Linux's schedstat), by thread
    id; {} where the kernel does not say."""
    waits: dict[int, float] = {}
    try:
        tasks = list(os.scandir("/proc/self/task"))
    except OSError:
        return waits
    for task in tasks:
        try:
            with open(f"{task.path}/schedstat") as stats:
                waits[int(task.name)] = int(stats.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
            continue
    return waits


def longest_wait(before: dict[int, float], after: dict[int, float]) -> float:
    """The most any one thread waited for a CPU between two `run_queue_waits()`: the steps' critical path was
    held up at least that long by other processes."""
    return max((after[tid] - before[tid] for tid in before.keys() & after.keys()), default=0.0)


class _StopAt(InMemoryReporter):
    """Stops the loop once `steps` steps are done, before the evaluation a run's last step would have; notes when
    each step ended (progress is reported every step)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.ended_at: dict[int, float] = {}
        self.waits_at: dict[int, dict[int, float]] = {}

    def progress(
        self, step: int, steps_per_second: float, images_per_second: float, data_wait: float | None = None
    ) -> None:
        super().progress(step, steps_per_second, images_per_second, data_wait)
        self.ended_at[step] = time.perf_counter()
        self.waits_at[step] = run_queue_waits()

    def should_stop(self) -> bool:
        return self.last_progress is not None and self.last_progress[0] >= self.steps


def probe(raw_spec: dict[str, Any], data_dir: Path) -> Probe:
    """A few real training steps of the spec on the CPU, in this (fresh) process: the step time (the first
    PROBE_WARMUP_STEPS left out), the start-up (loading the data, building the network, the first steps' extra),
    and the process's peak memory; an evaluation's time is derived from the step's."""
    from models.kinds import KINDS, parse_spec

    began = time.perf_counter()
    shortened = {**raw_spec, "max_steps": 2 * PROBE_STEPS, "eval_every": 2 * PROBE_STEPS, "log_every": 1,
                 "checkpoint_every": 2 * PROBE_STEPS, "device": "cpu", "init_from_job": None}  # fmt: skip
    spec = parse_spec(shortened)
    train_with_cpus(float(raw_spec.get("cpus", 1.0)), KINDS[spec.model].uses_torch)  # as the job will
    reporter = _StopAt(PROBE_STEPS)
    result = run_job(spec, reporter, DataSource(data_dir))
    ended = reporter.ended_at
    last = max(ended)
    first = PROBE_WARMUP_STEPS if PROBE_WARMUP_STEPS in ended and PROBE_WARMUP_STEPS < last else min(ended)
    span = ended[last] - ended[first]
    # on a busy machine the wall time includes the probe's waits for a CPU; the job gets its own when it runs
    waited = min(longest_wait(reporter.waits_at[first], reporter.waits_at[last]), 0.9 * span)
    step_seconds = (span - waited) / (last - first) if last > first else ended[last] - began
    overhead = max(0.0, ended[first] - began - first * step_seconds)
    images = int(raw_spec["batch_size"])
    evaluation = step_seconds / (3 * images) * CIFAR_TEST_IMAGES
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    share = waited / span if span > 0 else 0.0
    return Probe(step_seconds, evaluation, overhead, peak, result.steps_done, share)
