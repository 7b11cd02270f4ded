"""Submit job specs to a running service, wait for them, print a Markdown table of the results.

    python bench/run_specs.py --url http://127.0.0.1:8000 bench/specs/report_mlp_experiments.json

The spec file is a JSON object {"label": spec, ...}; each job is named after its label, and asks for every core of
this machine (`cpus`: its threads) unless its spec or `--cpus` says otherwise. Jobs
run in the order given; the table gives each full spec, the final and best test accuracy, the
training speed and the wall time. `bench/report_jobs.py` prints the same table for job ids.
"""

import argparse
import json
import os
from pathlib import Path
from typing import Any

import httpx
from report_jobs import HEADER, row, wait


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec_file", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--cpus", type=float, default=float(os.cpu_count() or 1), help="a spec's default `cpus`")
    args = parser.parse_args()
    specs: dict[str, dict[str, Any]] = json.loads(args.spec_file.read_text())
    with httpx.Client(base_url=args.url, timeout=30) as client:
        submitted = {}
        for label, spec in specs.items():
            response = client.post("/jobs", json={"name": label, "cpus": args.cpus, **spec})
            response.raise_for_status()
            submitted[label] = response.json()["id"]
        print(HEADER, flush=True)
        for label, job_id in submitted.items():
            print(row(label, wait(client, job_id)), flush=True)


if __name__ == "__main__":
    main()
