"""Wait for jobs already submitted and print the same Markdown table as run_specs.py.

python bench/report_jobs.py --url http://127.0.0.1:8000 7 8 9
"""

import argparse
import json
import time

import httpx


def wait(client: httpx.Client, job_id: int) -> dict:
    while True:
        try:
            job = client.get(f"/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
        except httpx.HTTPError:
            pass  # the service may be restarting; keep waiting
        time.sleep(5)


def row(label: str, job: dict) -> str:
    m = job["final_metrics"] or {}
    best = f"{m['best_test_accuracy']:.4f} ({int(m['best_step'])})" if "best_test_accuracy" in m else "-"
    final = f"{m['test_accuracy']:.4f}" if "test_accuracy" in m else "-"
    sps = f"{m['steps_per_second']:.2f}" if "steps_per_second" in m else "-"
    ips = f"{m['images_per_second']:.0f}" if "images_per_second" in m else "-"
    wall = f"{job['running_seconds']:.0f} s" if job["running_seconds"] else "-"
    status = job["status"] + (f": {job['error']}" if job["error"] else "")
    steps = f"{job['progress']['step']}/{job['progress']['max_steps']}"
    spec = {k: v for k, v in job["spec"].items() if k != "name"}
    cells = [label, f"`{json.dumps(spec)}`", job["id"], status, steps, final, best, sps, ips, wall]
    return "| " + " | ".join(str(c) for c in cells) + " |"


HEADER = (
    "| run | spec (every field, defaults filled in) | job | status | steps | final test acc | best test acc (step) "
    "| steps/s | images/s | wall time |\n|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("job_ids", type=int, nargs="+")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    print(HEADER, flush=True)
    with httpx.Client(base_url=args.url, timeout=30) as client:
        for job_id in args.job_ids:
            job = wait(client, job_id)
            print(row(job["name"] or f"job {job_id}", job), flush=True)


if __name__ == "__main__":
    main()
