"""How hard a training process works, sampled in that process: CPU use as a fraction of the job's `cpus`,
resident memory, the fraction of step time spent preparing batches, and on a GPU its utilisation (NVML, through
torch and the `nvidia-ml-py` package) and the memory this process holds there."""

import os
import resource
import time

from store.system_points import SystemRow

MAX_SYSTEM_POINTS = 10_000  # per attempt: 27 hours at the default period
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    """Resident memory now (Linux: /proc/self/statm), else the peak so far."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gpu_usage() -> tuple[float | None, float | None]:
    """(utilisation 0-1, MB this process reserved) of the GPU this process trains on; Nones without one. Looks only
    once CUDA is in use here, so a CPU job never loads CUDA for it."""
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        return None, None
    memory = torch.cuda.memory_reserved() / 2**20
    try:
        return torch.cuda.utilization() / 100, memory
    except Exception:  # no NVML library or package: the memory alone
        return None, memory


class SystemSampler:
    """One sample per `period_seconds`, at most MAX_SYSTEM_POINTS per attempt; CPU is measured over the period."""

    def __init__(self, attempt: int, cpus: float, period_seconds: float) -> None:
        self.attempt, self.cpus, self.period = attempt, max(cpus, 1e-9), period_seconds
        self.started = self._last_wall = time.monotonic()
        self._last_cpu = cpu_seconds()
        self.taken = 0

    def due(self) -> bool:
        return self.taken < MAX_SYSTEM_POINTS and time.monotonic() - self._last_wall >= self.period

    def sample(self, step: int, data_wait: float | None) -> SystemRow:
        now, used = time.monotonic(), cpu_seconds()
        cpu = (used - self._last_cpu) / max(now - self._last_wall, 1e-9) / self.cpus
        self._last_wall, self._last_cpu = now, used
        self.taken += 1
        gpu_util, gpu_mem = gpu_usage()
        return (self.attempt, step, round(now - self.started, 3), round(cpu, 4), round(rss_mb(), 1),
                None if data_wait is None else round(data_wait, 4), gpu_util, gpu_mem)  # fmt: skip
