"""Several workers on one machine: one process each, started, signalled and awaited together."""

import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType


def supervise(concurrency: int, gpus: list[str], name: str | None) -> int:
    """Run `concurrency` workers (or one per GPU); forward SIGTERM/SIGINT; return the worst exit code."""
    base = name or socket.gethostname()
    slots: list[str | None] = list(gpus) if gpus else [None] * concurrency
    children = []
    for i, gpu in enumerate(slots):
        env = dict(os.environ)  # noqa: TID251  (each worker's environment: it reads its own settings)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        label = f"{base}:gpu{gpu}" if gpu is not None else f"{base}:{i}"
        # own process group: a terminal's Ctrl-C reaches the supervisor only, which forwards it once
        # (a worker that got it twice would kill its job instead of checkpointing it)
        children.append(subprocess.Popen([sys.executable, "-m", "workers", "--name", label], env=env, process_group=0))

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while any(child.poll() is None for child in children):
        time.sleep(0.2)
    return max(abs(int(child.returncode or 0)) for child in children)
