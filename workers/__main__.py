"""`python -m workers`: worker processes that train queued jobs.

python -m workers                    # one worker
python -m workers --concurrency 4    # four workers on this machine
python -m workers --gpus 0,1         # one worker per GPU (CUDA_VISIBLE_DEVICES set for each)
python -m workers --cpus 1           # a worker that offers one CPU (WORKER_CPUS): three share a 3-core box
"""

import argparse
import logging
import os
import sys

from workers.settings import WorkerSettings
from workers.supervisor import supervise
from workers.worker import Worker


def main() -> None:
    parser = argparse.ArgumentParser(description="Train queued jobs until stopped (SIGTERM or Ctrl-C).")
    parser.add_argument("--name", help="worker name stored on the jobs it takes (default host:pid)")
    parser.add_argument("--concurrency", type=int, default=1, help="worker processes to run (default 1)")
    parser.add_argument("--gpus", help="comma-separated GPU ids: one worker per GPU")
    parser.add_argument("--cpus", type=float, help="CPUs each worker offers (default: WORKER_CPUS, else every core)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else []
    if args.concurrency > 1 or gpus:
        raise SystemExit(supervise(args.concurrency, gpus, args.name, args.cpus))
    settings = WorkerSettings() if args.cpus is None else WorkerSettings(worker_cpus=args.cpus)
    Worker(settings, args.name).run()
    # Its work is saved and its child gone: skip the interpreter's teardown of torch's modules (about a second of CPU)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
