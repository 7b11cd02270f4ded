"""What a training process may take of the machine's memory, so that running out ends that job
with a message, not the API or the database."""

import logging
import os
import resource
from pathlib import Path

log = logging.getLogger(__name__)
MB = 1024 * 1024
OOM_SCORE_ADJ = 1000  # the kernel's out-of-memory killer picks this process first


def _total_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _address_space_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


def gpu_may_be_used(device: str) -> bool:
    if device == "cpu":
        return False
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")  # noqa: TID251  (CUDA's own variable)
    return Path("/dev/nvidiactl").exists() and visible not in ("", "-1")


def guard_training_memory(limit_mb: int, device: str) -> int | None:
    """Make this process the OOM killer's first choice, and (on a CPU run) cap the address space it
    may add to what it has now: `limit_mb`, or three quarters of the machine's memory when -1, none
    when 0. Returns the cap in bytes, or None."""
    try:
        Path("/proc/self/oom_score_adj").write_text(str(OOM_SCORE_ADJ))
    except OSError as exc:  # not Linux, or a sandbox without /proc writes
        log.warning("could not raise oom_score_adj: %s", exc)
    if limit_mb == 0 or gpu_may_be_used(device):
        return None
    extra = int(_total_memory_bytes() * 0.75) if limit_mb < 0 else limit_mb * MB
    cap = _address_space_bytes() + extra
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return cap
