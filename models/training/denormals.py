"""Flush denormal floats to zero in the training process.

The assignment's initialisation (weights N(0, 1e-4)) makes activations, gradients and Adam's second
moments small enough to become denormal floats, which many CPUs compute far more slowly. Setting
the SSE/AVX control register's FTZ (flush results to zero) and DAZ (read denormal inputs as zero)
bits avoids that for every kind, NumPy included, without importing torch: it is glibc's
`fegetenv`/`fesetenv` with the MXCSR field of x86-64's `fenv_t` changed. The register is per thread;
threads started afterwards (torch's OpenMP pool, started on first use) inherit it.
"""

import ctypes
import ctypes.util
import platform

MXCSR_DAZ = 0x0040  # denormals are zeros
MXCSR_FTZ = 0x8000  # flush to zero
FENV_SIZE = 32  # x86-64 glibc fenv_t: the x87 environment (28 bytes), then the 32-bit MXCSR
MXCSR_OFFSET = 28


def _libm() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("m")
    return ctypes.CDLL(name) if name else None


def read_mxcsr() -> int | None:
    """The calling thread's MXCSR, or None where it cannot be read (not x86-64 with glibc)."""
    libm = _libm() if platform.machine() in ("x86_64", "AMD64") else None
    if libm is None:
        return None
    env = ctypes.create_string_buffer(FENV_SIZE)
    if libm.fegetenv(env) != 0:
        return None
    return int.from_bytes(env.raw[MXCSR_OFFSET : MXCSR_OFFSET + 4], "little")


def flush_denormals() -> bool:
    """Set FTZ and DAZ for the calling thread; whether it could (False off x86-64 or without glibc)."""
    libm = _libm() if platform.machine() in ("x86_64", "AMD64") else None
    if libm is None:
        return False
    env = ctypes.create_string_buffer(FENV_SIZE)
    if libm.fegetenv(env) != 0:
        return False
    mxcsr = int.from_bytes(env.raw[MXCSR_OFFSET : MXCSR_OFFSET + 4], "little") | MXCSR_FTZ | MXCSR_DAZ
    ctypes.memmove(ctypes.addressof(env) + MXCSR_OFFSET, mxcsr.to_bytes(4, "little"), 4)
    return bool(libm.fesetenv(env) == 0)
