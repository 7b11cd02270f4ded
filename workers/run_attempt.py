"""`python -m workers.run_attempt JOB_ID ATTEMPT`: train one attempt at a job in this process and
record how it ended, exactly as the local worker's child does. The Ray executor's entrypoint.

It reads the same settings from the environment (DATABASE_URL, DATA_DIR, ...); the dispatcher passes
them in the Ray job's runtime environment. It changes nothing when the attempt is no longer the
job's (fenced by the attempt number).
"""

import argparse
import logging
import os
import socket

from store.attempts import Attempt
from workers.child import run_attempt
from workers.settings import WorkerSettings

log = logging.getLogger("workers.run_attempt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("job_id", type=int)
    parser.add_argument("attempt", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "")  # noqa: TID251  (CUDA's, as Ray set it)
    log.info("job %s, attempt %s on %s (CUDA_VISIBLE_DEVICES=%s)", args.job_id, args.attempt, socket.gethostname(),
             devices)  # fmt: skip
    run_attempt(Attempt(args.job_id, args.attempt), WorkerSettings())


if __name__ == "__main__":
    main()
