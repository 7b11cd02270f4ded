"""`python -m workers`: one worker process that trains queued jobs."""

import argparse
import logging

from app.settings import get_settings
from workers.worker import Worker


def main() -> None:
    parser = argparse.ArgumentParser(description="Train queued jobs until stopped (SIGTERM or Ctrl-C).")
    parser.add_argument("--name", help="worker name stored on the jobs it takes (default host:pid)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Worker(get_settings(), args.name).run()


if __name__ == "__main__":
    main()
