"""Whether bfloat16 autocast pays off on this CPU: by capability, then a short probe, cached.

oneDNN runs convolutions and matrix products in bfloat16 with AVX-512 BF16 or AMX where the CPU
has them; elsewhere bfloat16 is emulated and slower than float32. The probe times one small
training step of a convolution in float32 and under bfloat16 autocast. A worker probes once, in a
throwaway process (it never runs torch itself: its forked children would inherit torch's threads),
and hands the answer to its children in CPU_BF16; a process without it probes in-process, once.
"""

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CPU_BF16_ENV = "CPU_BF16"  # "1" or "0": the probe's answer, set by the worker for its children
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
PROBE_MIN_SPEEDUP = 1.1


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model() -> str:
    """The CPU's model name and its bf16-related flags, for benchmark tables."""
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = sorted(cpu_flags() & {*BF16_CPU_FLAGS, "amx_tile", "avx512f", "avx2"})
    return f"{name} ({' '.join(flags) or 'no AVX-512'})"


def probe_speedup(repeats: int = 3) -> float:
    """Time per step of a small conv layer, float32 over bfloat16 autocast (>1: bf16 is faster)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1))
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(32, 64, 32, 32).contiguous(memory_format=torch.channels_last)

    def seconds(bf16: bool) -> float:
        best = float("inf")
        for _ in range(repeats + 1):  # the first builds oneDNN's kernels
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = conv(x).float().sum()
            out.backward()
            best = min(best, time.perf_counter() - started)
        return best

    return seconds(False) / seconds(True)


def probe_in_subprocess() -> bool:
    """The probe's verdict, from a fresh process (what a worker calls at start)."""
    if not cpu_flags() & set(BF16_CPU_FLAGS):
        return False
    code = "import json; from models.training.precision import probe_speedup; print(json.dumps(probe_speedup()))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        return float(json.loads(done.stdout.strip().splitlines()[-1])) >= PROBE_MIN_SPEEDUP
    except (subprocess.SubprocessError, ValueError, IndexError):
        return False


@functools.cache
def bf16_is_fast_on_cpu() -> bool:
    """True when this CPU has bf16 instructions and bfloat16 autocast measured faster than float32."""
    given = os.environ.get(CPU_BF16_ENV)  # noqa: TID251  (the worker's verdict, handed to its training processes)
    if given in ("0", "1"):
        return given == "1"
    if not cpu_flags() & set(BF16_CPU_FLAGS):
        return False
    import torch

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False
    return probe_speedup() >= PROBE_MIN_SPEEDUP
