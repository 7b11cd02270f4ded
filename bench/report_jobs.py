"""Wait for jobs already submitted and print the same Markdown table as run_specs.py.

python bench/report_jobs.py --url http://127.0.0.1:8000 7 8 9 [--full-specs]

The spec column holds the fields that differ from the model kind's defaults: POST it to /jobs to
rerun the job. `--full-specs` also prints each job's whole stored spec (defaults filled in).
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.kinds import parse_spec

# Fields that say how a job is scheduled, not what it trains: left out of the spec column.
SCHEDULING = {"name", "priority", "timeout_s", "max_attempts", "checkpoint_every"}


def short_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The fields of `spec` that differ from its kind's defaults, model first."""
    defaults = parse_spec({"model": spec["model"]}).model_dump(mode="json")
    return {"model": spec["model"]} | {
        k: v for k, v in spec.items() if k not in SCHEDULING and k != "model" and defaults.get(k) != v
    }


def wait(client: httpx.Client, job_id: int) -> dict[str, Any]:
    while True:
        try:
            job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
        except httpx.HTTPError:
            pass  # the service may be restarting; keep waiting
        time.sleep(5)


def row(label: str, job: dict[str, Any]) -> str:
    m = job["final_metrics"] or {}
    best = f"{m['best_test_accuracy']:.4f} ({int(m['best_step'])})" if "best_test_accuracy" in m else "-"
    final = f"{m['test_accuracy']:.4f}" if "test_accuracy" in m else "-"
    sps = f"{m['steps_per_second']:.2f}" if "steps_per_second" in m else "-"
    ips = f"{m['images_per_second']:.0f}" if "images_per_second" in m else "-"
    wall = f"{job['running_seconds']:.0f} s" if job["running_seconds"] else "-"
    status = job["status"] + (f": {job['error']}" if job["error"] else "")
    steps = f"{job['progress']['step']}/{job['progress']['max_steps']}"
    cells = [label, f"`{json.dumps(short_spec(job['spec']))}`", job["id"], status, steps, final, best, sps, ips, wall]
    return "| " + " | ".join(str(c) for c in cells) + " |"


HEADER = (
    "| run | spec (fields that differ from the defaults) | job | status | steps | final test acc "
    "| best test acc (step) | steps/s | images/s | wall time |\n|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("job_ids", type=int, nargs="+")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--full-specs", action="store_true", help="print every job's whole spec below the table")
    args = parser.parse_args()
    print(HEADER, flush=True)
    jobs = []
    with httpx.Client(base_url=args.url, timeout=30) as client:
        for job_id in args.job_ids:
            jobs.append(wait(client, job_id))
            print(row(jobs[-1]["name"] or f"job {job_id}", jobs[-1]), flush=True)
    if args.full_specs:
        print("\nWhole specs, as stored (defaults filled in):\n")
        for job in jobs:
            print(f"- job {job['id']}: `{json.dumps(job['spec'])}`")


if __name__ == "__main__":
    main()
