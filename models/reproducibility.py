"""What a run depends on beyond its spec, recorded with every job so that a result can be checked by running it
again: the service's version (and git commit, with a dirty flag, when run from a checkout), Python, torch,
torchvision and NumPy with their BLAS, the CPU (model and flags) or the GPU (name, driver), thread counts, and
the data set's manifest hash. Where and how it trained (device, precision, memory format) comes with the
job's final metrics."""

import importlib.metadata
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

from models.data.catalog import dataset_dir
from models.data.manifest import manifest
from models.training.precision import cpu_model

CHECKOUT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    if not (CHECKOUT / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(CHECKOUT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def service_version() -> dict[str, Any]:
    try:
        version = importlib.metadata.version("cifar-jobs")
    except importlib.metadata.PackageNotFoundError:
        version = None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"version": version, "git_commit": commit, "git_dirty": None if status is None else bool(status)}


def _blas(uses_torch: bool) -> dict[str, str | None]:
    import numpy as np

    numpy_blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    torch_blas = None
    if uses_torch:
        import torch

        torch_blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return {"numpy": f"{numpy_blas.get('name')} {numpy_blas.get('version')}",
            "torch": torch_blas.group(1) if torch_blas else None}  # fmt: skip


def _gpu() -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    driver = None
    try:
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # no NVML: the name alone
        pass
    return {"name": torch.cuda.get_device_name(), "driver": driver, "cuda": torch.version.cuda}


def environment_record(dataset: str, data_dir: Path, uses_torch: bool = True) -> dict[str, Any]:
    """The record of this process and the data set it trains on (the manifest computed once per data version).
    A run that does not use torch (`uses_torch` False: the NumPy MLP) does not import it: torch's version comes
    from its installed metadata (without the build tag), and its BLAS, GPU and threads are None (nothing of the run
    depends on them)."""
    import numpy as np
    from threadpoolctl import threadpool_info

    # the BLAS libraries' threads (NumPy's, and torch's when loaded): held to the job's `cpus` (training/threads.py)
    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    threads: dict[str, int | None] = {"blas": max(blas, default=None)}
    torch_version = importlib.metadata.version("torch")
    if uses_torch:
        import torch

        threads |= {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads()}
        torch_version = torch.__version__  # with its build (`+cu130`, `+cpu`)
    return {
        "service": service_version(),
        "python": platform.python_version(),
        # torchvision's from its installed metadata: importing it takes a second of CPU, which every job would pay
        "packages": {
            "torch": torch_version,
            "torchvision": importlib.metadata.version("torchvision"),
            "numpy": np.__version__,
        },
        "blas": _blas(uses_torch),
        "cpu": cpu_model(),
        "gpu": _gpu() if uses_torch else None,
        "threads": threads,
        "data": {"dataset": dataset, **manifest(dataset_dir(dataset, data_dir))},
    }
