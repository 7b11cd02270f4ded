"""Submit job specs to a running service, wait for them, print a Markdown table of the results.

    python bench/run_specs.py --url http://127.0.0.1:8000 bench/specs/issue2.json

The spec file is a JSON object {"label": spec, ...}. Jobs run in the order given (one worker
takes them one at a time); the table gives the final and best test accuracy and the wall time.
"""

import argparse
import json
import time
from pathlib import Path

import httpx


def wait(client: httpx.Client, job_id: int) -> dict:
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec_file", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    specs: dict[str, dict] = json.loads(args.spec_file.read_text())
    with httpx.Client(base_url=args.url, timeout=30) as client:
        submitted = {}
        for label, spec in specs.items():
            response = client.post("/jobs", json=spec)
            response.raise_for_status()
            submitted[label] = response.json()["id"]
        print("| run | spec | job | status | final test acc | best test acc (step) | steps/s | wall time |")
        print("|---|---|---|---|---|---|---|---|")
        for label, job_id in submitted.items():
            job = wait(client, job_id)
            m = job["final_metrics"] or {}
            best = f"{m.get('best_test_accuracy', float('nan')):.4f} ({int(m.get('best_step', 0))})" if m else "-"
            final = f"{m['test_accuracy']:.4f}" if "test_accuracy" in m else "-"
            sps = f"{m['steps_per_second']:.1f}" if "steps_per_second" in m else "-"
            wall = f"{job['running_seconds']:.0f} s" if job["running_seconds"] else "-"
            status = job["status"] + (f": {job['error']}" if job["error"] else "")
            print(
                f"| {label} | `{json.dumps(specs[label])}` | {job_id} | {status} | {final} | {best} | {sps} | {wall} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
