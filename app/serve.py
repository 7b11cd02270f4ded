"""`python -m app.serve`: the API and one worker, stopped together on Ctrl-C or SIGTERM; a worker
that ends on its own is started again (with backoff) and the API stays up.

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

from app.plumbing.prometheus import MULTIPROC_ENV
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
    env = dict(os.environ)  # noqa: TID251  (the children's environment: they read their own settings)
    shared_metrics: str | None = None
    if settings.api_workers > 1 and MULTIPROC_ENV not in env:  # Prometheus counts of every API process
        shared_metrics = env[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="cifar-jobs-prometheus-")
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(settings.port),
         "--workers", str(settings.api_workers)], process_group=0, env=env)  # fmt: skip

    executor = ["workers.ray_dispatcher"] if settings.executor == "ray" else ["workers"]

    def start_worker() -> subprocess.Popen[bytes]:
        """The executor: a local worker, or with EXECUTOR=ray the dispatcher to a Ray cluster."""
        return subprocess.Popen([sys.executable, "-m", *executor], process_group=0)

    worker = start_worker()
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
    restart_delay, restart_at = 1.0, None
    while api.poll() is None and not (asked_to_stop and children[1].poll() is not None):
        # a worker that ends on its own (a crash, the OOM killer) is started again; the API stays up
        if children[1].poll() is not None and not asked_to_stop:
            if restart_at is None:
                log.warning(
                    "the worker exited with %s; another starts in %.0f s", children[1].returncode, restart_delay
                )
                restart_at = time.monotonic() + restart_delay
            elif time.monotonic() >= restart_at:
                children[1] = start_worker()
                log.info("worker restarted, pid %s", children[1].pid)
                restart_delay, restart_at = min(60.0, restart_delay * 2), None
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
