"""`python -m app.serve`: the API, one worker and the webhook delivery process, stopped together on Ctrl-C or
SIGTERM; a worker or deliverer that ends on its own is started again (with backoff) and the API stays up.

Honours HOST, PORT, API_WORKERS, DATA_DIR and DATABASE_URL (see app/settings.py), and EXECUTOR: `local`
(the default, a worker on this machine) or `ray` (`workers.ray_dispatcher`, with RAY_ADDRESS).
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from types import FrameType
from typing import cast

from app.plumbing.prometheus import MULTIPROC_ENV
from app.settings import get_settings

log = logging.getLogger("serve")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Helper:
    """A process that runs beside the API, started again with backoff (1 s doubling to 60 s) when it ends."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name, self.command = name, command
        self.delay, self.restart_at = 1.0, cast(float | None, None)
        self.process = self.start()

    def start(self) -> "subprocess.Popen[bytes]":
        return subprocess.Popen(self.command, process_group=0)

    def restart_when_due(self) -> None:
        if self.process.poll() is None:
            return
        if self.restart_at is None:
            log.warning(
                "the %s exited with %s; another starts in %.0f s", self.name, self.process.returncode, self.delay
            )
            self.restart_at = time.monotonic() + self.delay
        elif time.monotonic() >= self.restart_at:
            self.process = self.start()
            log.info("%s restarted, pid %s", self.name, self.process.pid)
            self.delay, self.restart_at = min(60.0, self.delay * 2), None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    host = settings.host
    if not settings.api_key and host not in LOOPBACK:
        log.warning("API_KEY is not set: listening on 127.0.0.1 only, not on HOST=%s (set API_KEY to open it)", host)
        host = "127.0.0.1"
    elif not settings.api_key:
        log.info("API_KEY is not set: listening on %s only; every local caller may submit and cancel jobs", host)
    # Each child in its own process group: a terminal's Ctrl-C reaches this process only, and each
    # child gets the signal once, from stop(). A worker that got it twice (from the terminal and
    # forwarded) would take it for the second Ctrl-C and kill its job instead of checkpointing it.
    env = dict(os.environ)  # noqa: TID251  (the children's environment: they read their own settings)
    shared_metrics: str | None = None
    if settings.api_workers > 1 and MULTIPROC_ENV not in env:  # Prometheus counts of every API process
        shared_metrics = env[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="cifar-jobs-prometheus-")
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(settings.port),
         "--workers", str(settings.api_workers)], process_group=0, env=env)  # fmt: skip

    executor = ["workers.ray_dispatcher"] if settings.executor == "ray" else ["workers"]
    # what runs beside the API, each started again (with backoff) when it ends on its own: the executor (a local
    # worker, or with EXECUTOR=ray the dispatcher to a Ray cluster) and the webhook delivery process
    helpers = [Helper("worker", [sys.executable, "-m", *executor]),
               Helper("webhook deliverer", [sys.executable, "-m", "workers.deliverer"])]  # fmt: skip

    asked_to_stop = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal asked_to_stop
        asked_to_stop = asked_to_stop or frame is not None  # a signal, not the call below
        for child in [api, *(helper.process for helper in helpers)]:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    log.info("API on http://%s:%s (docs at /docs), worker pid %s", host, settings.port, helpers[0].process.pid)
    while api.poll() is None and not (asked_to_stop and all(h.process.poll() is not None for h in helpers)):
        if not asked_to_stop:  # a helper that ends on its own (a crash, the OOM killer) is started again
            for helper in helpers:
                helper.restart_when_due()
        time.sleep(0.2)
    children = [api, *(helper.process for helper in helpers)]
    stop(signal.SIGTERM, None)  # one ended: take the other down too
    codes = [child.wait() for child in children]
    if shared_metrics is not None:
        shutil.rmtree(shared_metrics, ignore_errors=True)
    # uvicorn ends by re-raising the signal it stopped on: that is a clean stop when we asked for it
    stopped_by_us = {0, -signal.SIGINT, -signal.SIGTERM}
    if asked_to_stop and all(code in stopped_by_us for code in codes):
        return 0
    return max(abs(code) for code in codes)


if __name__ == "__main__":
    sys.exit(main())
