"""`python -m app.serve`: the API, one worker, the sweep driver and the webhook delivery process, stopped together
on Ctrl-C or SIGTERM; one beside the API that ends on its own is started again (with backoff), the API stays up.

Honours HOST, PORT, API_WORKERS, DATA_DIR and DATABASE_URL (see app/settings.py), EXECUTOR: `local`
(the default, a worker on this machine) or `ray` (`workers.ray_dispatcher`, with RAY_ADDRESS), and SERVE_ROLES:
which of them it starts (all by default; `worker` on a worker machine, `api,sweeps,deliverer` on an API one).
"""

import logging
import os
import shutil
import signal
import sys
import tempfile

from pydantic import ValidationError

from app.ops.prometheus import MULTIPROC_ENV
from app.settings import get_settings, split_list
from supervision.group import Child, ProcessGroup

log = logging.getLogger("serve")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = get_settings()
    except ValidationError as exc:  # a setting out of range or unknown: say which, no traceback
        for error in exc.errors():
            field = "_".join(str(part) for part in error["loc"]).upper()  # empty for a check of several fields
            message = error["msg"].removeprefix("Value error, ")
            print(f"{field}: {message}" if field else message, file=sys.stderr)
        return 2
    host, roles = settings.host, set(split_list(settings.serve_roles))
    if "api" in roles and not settings.api_key and host not in LOOPBACK:
        log.warning("API_KEY is not set: listening on 127.0.0.1 only, not on HOST=%s (set API_KEY to open it)", host)
        host = "127.0.0.1"
    elif "api" in roles and not settings.api_key:
        log.info("API_KEY is not set: listening on %s only; every local caller may submit and cancel jobs", host)
    env = dict(os.environ)  # noqa: TID251  (the children's environment: they read their own settings)
    shared_metrics: str | None = None
    if settings.api_workers > 1 and MULTIPROC_ENV not in env:  # Prometheus counts of every API process
        shared_metrics = env[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="cifar-jobs-prometheus-")
    uvicorn = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(settings.port),
               "--workers", str(settings.api_workers)]  # fmt: skip
    executor = ["workers.ray_dispatcher"] if settings.executor == "ray" else ["workers"]
    executor_name = "dispatcher" if settings.executor == "ray" else "worker"
    # the API ends the group when it ends; what runs beside it is started again (with backoff) when it ends on its
    # own: the executor (a local worker, or with EXECUTOR=ray the dispatcher to a Ray cluster), the sweep driver (one
    # for every API process) and the webhook delivery process
    children = {
        "api": Child("API", uvicorn, env=env, essential=True),
        "worker": Child(executor_name, [sys.executable, "-m", *executor], restart=True),
        "sweeps": Child("sweep driver", [sys.executable, "-m", "app.sweeps.driver_process"], restart=True),
        "deliverer": Child("webhook deliverer", [sys.executable, "-m", "workers.deliverer"], restart=True),
    }
    group = ProcessGroup([child for role, child in children.items() if role in roles])
    started = ", ".join(f"{child.name} pid {child.process.pid}" for child in group.children if child.process)
    if "api" in roles:
        log.info("API on http://%s:%s (docs at /docs); %s", host, settings.port, started)
    else:
        log.info("no API here (SERVE_ROLES=%s); %s", settings.serve_roles, started)
    outcome = group.run()
    if shared_metrics is not None:
        shutil.rmtree(shared_metrics, ignore_errors=True)
    # uvicorn ends by re-raising the signal it stopped on: that is a clean stop when we asked for it
    stopped_by_us = {0, -signal.SIGINT, -signal.SIGTERM}
    if outcome.asked_to_stop and all(code in stopped_by_us for code in outcome.codes):
        return 0
    return max(abs(code) for code in outcome.codes)


if __name__ == "__main__":
    sys.exit(main())
