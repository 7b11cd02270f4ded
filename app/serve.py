"""`python -m app.serve`: the API and one worker, stopped together on Ctrl-C or SIGTERM.

Honours HOST, PORT, API_WORKERS, DATA_DIR and DATABASE_URL (see app/settings.py).
"""

import logging
import signal
import subprocess
import sys
import time
from types import FrameType

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
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(settings.port),
         "--workers", str(settings.api_workers)]  # fmt: skip
    )
    worker = subprocess.Popen([sys.executable, "-m", "workers"])
    children = [api, worker]

    def stop(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    log.info("API on http://%s:%s (docs at /docs), worker pid %s", host, settings.port, worker.pid)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    stop(signal.SIGTERM, None)  # one ended: take the other down too
    for child in children:
        child.wait()
    return max(abs(child.returncode or 0) for child in children)


if __name__ == "__main__":
    sys.exit(main())
