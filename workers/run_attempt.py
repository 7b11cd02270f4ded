"""`python -m workers.run_attempt JOB_ID ATTEMPT`: train one attempt at a job in this process and
record how it ended, exactly as the local worker's child does. The Ray executor's entrypoint.

It reads the same settings from the environment (DATABASE_URL, DATA_DIR, ...); the dispatcher passes
them in the Ray job's runtime environment. It changes nothing when the attempt is no longer the
job's (fenced by the attempt number). Without CPU_BF16 from the dispatcher, it reads the bfloat16
verdict kept for this node's CPU model (a Ray node may have another CPU than the dispatcher's).
"""

import argparse
import logging
import os
import socket

from models.training.precision import cpu_model, measure_in_subprocess, use_verdict
from store.attempts import Attempt
from store.cpu_verdicts import kept_verdict
from store.engine import engine_for, make_session_factory
from workers.child import run_attempt
from workers.settings import WorkerSettings

log = logging.getLogger("workers.run_attempt")


def use_kept_cpu_verdict(settings: WorkerSettings) -> bool:
    """This node's kept bfloat16 verdict (measured here when its CPU model has none yet), for this process."""
    engine = engine_for(settings)
    try:
        verdict = kept_verdict(make_session_factory(engine), cpu_model(), measure_in_subprocess,
                               f"ray node {socket.gethostname()}")  # fmt: skip
    finally:
        engine.dispose()
    use_verdict(verdict.bf16)
    return verdict.bf16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("job_id", type=int)
    parser.add_argument("attempt", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "")  # noqa: TID251  (CUDA's, as Ray set it)
    log.info("job %s, attempt %s on %s (CUDA_VISIBLE_DEVICES=%s)", args.job_id, args.attempt, socket.gethostname(),
             devices)  # fmt: skip
    settings = WorkerSettings()
    if settings.cpu_bf16 is None:
        use_kept_cpu_verdict(settings)
    run_attempt(Attempt(args.job_id, args.attempt), settings)


if __name__ == "__main__":
    main()
