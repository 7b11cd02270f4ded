"""Whether bfloat16 autocast pays off on this CPU: by what the CPU is, then a measurement kept per
CPU model.

oneDNN runs convolutions and matrix products in bfloat16 with AVX-512 BF16 or AMX where the CPU
has them; elsewhere bfloat16 is emulated and slower than float32, and no measurement is made. On a
CPU with them, the probe times one small training step of a convolution in float32 and under
bfloat16 autocast, in a throwaway process (a worker never runs torch itself: its forked children
would inherit torch's threads). That timing moves with the machine's load, so it is taken once per
CPU model and kept in the store (`store.cpu_verdicts`): every worker and API process on that model
then decides alike. A worker hands the verdict to its children in CPU_BF16; the API sets it with
`use_verdict`; a process with neither (a script, a benchmark) probes in-process, once.
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


def cpu_has_bf16() -> bool:
    return bool(cpu_flags() & set(BF16_CPU_FLAGS))


def measure_in_subprocess() -> tuple[bool, float | None]:
    """(bfloat16 is faster, the measured speedup), from a fresh process; no measurement without the
    CPU's bfloat16 instructions, and a probe that fails says float32."""
    if not cpu_has_bf16():
        return False, None
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
        speedup = float(json.loads(done.stdout.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, ValueError, IndexError):
        return False, None
    return speedup >= PROBE_MIN_SPEEDUP, speedup


_verdict: bool | None = None  # set by use_verdict


def given_verdict() -> bool | None:
    """The verdict this process was handed in CPU_BF16 (by its worker, or by whoever started it), or None."""
    given = os.environ.get(CPU_BF16_ENV)  # noqa: TID251  (the worker's verdict, handed to its training processes)
    return None if given not in ("0", "1") else given == "1"


def use_verdict(bf16: bool) -> None:
    """This process's verdict, decided elsewhere (the kept one): no probe in this process."""
    global _verdict
    _verdict = bf16
    bf16_is_fast_on_cpu.cache_clear()


@functools.cache
def bf16_is_fast_on_cpu() -> bool:
    """True when this CPU has bf16 instructions and bfloat16 autocast measured faster than float32."""
    if (given := given_verdict()) is not None:
        return given
    if _verdict is not None:
        return _verdict
    if not cpu_has_bf16():
        return False
    import torch

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():  # noqa: SLF001  (an op, torch's only bf16 check)
        return False
    return probe_speedup() >= PROBE_MIN_SPEEDUP
