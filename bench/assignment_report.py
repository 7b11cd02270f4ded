"""Regenerate the assignment report from jobs: submit its runs to a running service (reusing
identical jobs), wait for them, and write the report as Markdown with its figures.

    python bench/assignment_report.py --url http://127.0.0.1:8000 --convnet-steps 1000 \
        --resnet18-steps 500 --out docs/assignment-report.md

The figures go to a folder beside the Markdown file, named after it (docs/assignment-report/).
"""

import argparse
import time
from pathlib import Path

import httpx

FINISHED = {"succeeded", "failed", "cancelled", "stopped_early"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--convnet-steps", type=int, default=5000, help="the ConvNet run's steps (the report's: 5000)")
    parser.add_argument(
        "--resnet18-steps", type=int, default=5000, help="the ResNet18 run's steps (the report's: 5000)"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/assignment-report.md"))
    args = parser.parse_args()
    figures = args.out.with_suffix("")
    with httpx.Client(base_url=args.url, timeout=60) as client:
        options = {"convnet_max_steps": args.convnet_steps, "resnet18_max_steps": args.resnet18_steps}
        runs = client.post("/reports/assignment", json=options).raise_for_status().json()["runs"]
        for run in runs:
            print(f"figure {run['figure']}: job {run['job_id']} ({'reused' if run['reused'] else 'submitted'})")
        for run in runs:
            while (status := client.get(f"/jobs/{run['job_id']}").json()["status"]) not in FINISHED:
                time.sleep(10)
            print(f"figure {run['figure']}: job {run['job_id']} {status}", flush=True)
        figures.mkdir(parents=True, exist_ok=True)
        for run in runs:
            image = client.get(f"/reports/assignment/figures/figure-{run['figure']}.png").raise_for_status()
            (figures / f"figure-{run['figure']}.png").write_bytes(image.content)
        params = {"format": "md", "figure_prefix": f"{figures.name}/"}
        args.out.write_text(client.get("/reports/assignment", params=params).raise_for_status().text + "\n")
    print(f"wrote {args.out} and {len(runs)} figures in {figures}/")


if __name__ == "__main__":
    main()
