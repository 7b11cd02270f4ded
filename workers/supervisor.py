"""Several workers on one machine: one process each, started, signalled and awaited together."""

import os
import socket
import sys

from supervision.group import Child, ProcessGroup


def supervise(concurrency: int, gpus: list[str], name: str | None, cpus: float | None = None) -> int:
    """Run `concurrency` workers (or one per GPU), each offering `cpus` (None: its default); forward SIGTERM/SIGINT;
    return the worst exit code."""
    base = name or socket.gethostname()
    slots: list[str | None] = list(gpus) if gpus else [None] * concurrency
    children = []
    for i, gpu in enumerate(slots):
        env = dict(os.environ)  # noqa: TID251  (each worker's environment: it reads its own settings)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        label = f"{base}:gpu{gpu}" if gpu is not None else f"{base}:{i}"
        offered = [] if cpus is None else ["--cpus", f"{cpus:g}"]
        children.append(Child(f"worker {label}", [sys.executable, "-m", "workers", "--name", label, *offered], env=env))
    return max(abs(code) for code in ProcessGroup(children).run().codes)
