"""Flush denormal floats to zero in the training process.

The assignment's initialisation (weights N(0, 1e-4)) makes activations, gradients and Adam's second
moments small enough to become denormal floats, which many CPUs compute far more slowly. Setting
the SSE/AVX control register's FTZ (flush results to zero) and DAZ (read denormal inputs as zero)
bits avoids that for every kind, NumPy included, without importing torch: it is glibc's
`fegetenv`/`fesetenv` with the MXCSR field of x86-64's `fenv_t` changed. The register is per thread;
threads started afterwards (torch's OpenMP pool, started on first use) inherit it.
Training runs inside `denormals_flushed()`, which restores the previous setting afterwards.
"""

import ctypes
import ctypes.util
import platform
from collections.abc import Iterator
from contextlib import contextmanager

MXCSR_DAZ = 0x0040  # denormals are zeros
MXCSR_FTZ = 0x8000  # flush to zero
FENV_SIZE = 32  # x86-64 glibc fenv_t: the x87 environment (28 bytes), then the 32-bit MXCSR
MXCSR_OFFSET = 28


def _libm() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("m")
    return ctypes.CDLL(name) if name else None


def _env() -> tuple[ctypes.CDLL, ctypes.Array[ctypes.c_char]] | None:
    """libm and the calling thread's floating-point environment, or None off x86-64 glibc."""
    libm = _libm() if platform.machine() in ("x86_64", "AMD64") else None
    if libm is None:
        return None
    env = ctypes.create_string_buffer(FENV_SIZE)
    return (libm, env) if libm.fegetenv(env) == 0 else None


def read_mxcsr() -> int | None:
    """The calling thread's MXCSR, or None where it cannot be read (not x86-64 with glibc)."""
    found = _env()
    return None if found is None else int.from_bytes(found[1].raw[MXCSR_OFFSET : MXCSR_OFFSET + 4], "little")


def write_mxcsr(mxcsr: int) -> bool:
    """Set the calling thread's MXCSR; whether it could."""
    found = _env()
    if found is None:
        return False
    libm, env = found
    ctypes.memmove(ctypes.addressof(env) + MXCSR_OFFSET, mxcsr.to_bytes(4, "little"), 4)
    return bool(libm.fesetenv(env) == 0)


def flush_denormals() -> bool:
    """Set FTZ and DAZ for the calling thread; whether it could (False off x86-64 or without glibc)."""
    mxcsr = read_mxcsr()
    return mxcsr is not None and write_mxcsr(mxcsr | MXCSR_FTZ | MXCSR_DAZ)


@contextmanager
def denormals_flushed() -> Iterator[bool]:
    """FTZ and DAZ while the block runs (training), the thread's previous setting after it, so a
    process that trains in-process (a test, a benchmark) gets its IEEE arithmetic back."""
    before = read_mxcsr()
    flushed = flush_denormals()
    try:
        yield flushed
    finally:
        if flushed and before is not None:
            write_mxcsr(before)
