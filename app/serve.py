"""`python -m app.serve`: the API and one worker, stopped together on Ctrl-C or SIGTERM.

Honours HOST, PORT, API_WORKERS, DATA_DIR and DATABASE_URL (see app/settings.py).
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

from app.prometheus import MULTIPROC_ENV
from app.settings import get_settings

log = logging.getLogger("serve")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
    env = dict(os.environ)
    shared_metrics: str | None = None
    if settings.api_workers > 1 and MULTIPROC_ENV not in env:  # Prometheus counts of every API process
        shared_metrics = env[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="cifar-jobs-prometheus-")
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(settings.port),
         "--workers", str(settings.api_workers)], process_group=0, env=env)  # fmt: skip
    worker = subprocess.Popen([sys.executable, "-m", "workers"], process_group=0)
    children = [api, worker]

    asked_to_stop = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal asked_to_stop
        asked_to_stop = asked_to_stop or frame is not None  # a signal, not the call below
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    log.info("API on http://%s:%s (docs at /docs), worker pid %s", host, settings.port, worker.pid)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
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
