"""Submit a sweep to a running service, wait for it, print its leaderboard and the steps it saved.

    python bench/run_sweep.py --url http://127.0.0.1:8000 bench/specs/sweep_mlp_cifar10.json
    python bench/run_sweep.py --url http://127.0.0.1:8000 --sweep 1     # an existing sweep

The table lists every trial best first (its job, the searched values, status, steps, the final and
best test accuracy); below it, the training steps the sweep ran against running every trial to its
max_steps, and the share early stopping saved.
"""

import argparse
import json
import time
from pathlib import Path
from typing import Any

import httpx


def wait(client: httpx.Client, sweep_id: int) -> dict[str, Any]:
    while True:
        sweep: dict[str, Any] = client.get(f"/sweeps/{sweep_id}").raise_for_status().json()
        if sweep["status"] != "running":
            return sweep
        time.sleep(10)


def table(sweep: dict[str, Any]) -> str:
    lines = [
        "| rank | trial | job | searched values | status | steps | final test acc | best test acc |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rank, trial in enumerate(sweep["leaderboard"], start=1):
        final = f"{trial['objective']:.4f}" if trial["objective"] is not None else ""
        best = f"{trial['best']:.4f}" if trial["best"] is not None else ""
        params = json.dumps(trial["params"], separators=(", ", ": "))
        lines.append(
            f"| {rank} | {trial['number']} | {trial['job_id']} | `{params}` | {trial['status']} | "
            f"{trial['step']:,}/{trial['max_steps'] or 0:,} | {final} | {best} |"
        )
    trained = [t for t in sweep["leaderboard"] if t["step"] > 0]  # a trial that failed at once trained nothing
    spent, full = sum(t["step"] for t in trained), sum(t["max_steps"] or 0 for t in trained)
    lines.append("")
    lines.append(
        f"Sweep {sweep['id']} ({sweep['status']}): {sweep['trials_created']} trials, {len(trained)} of them trained: "
        f"{spent:,} training steps against {full:,} with each of those run to the end: early stopping saved "
        f"{1 - spent / full:.1%}."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("request_file", type=Path, nargs="?")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--sweep", type=int, help="an existing sweep's id instead of a request file")
    args = parser.parse_args()
    with httpx.Client(base_url=args.url, timeout=30) as client:
        sweep_id = args.sweep
        if sweep_id is None:
            request = json.loads(args.request_file.read_text())
            sweep_id = client.post("/sweeps", json=request).raise_for_status().json()["id"]
            print(f"sweep {sweep_id} submitted", flush=True)
        print(table(wait(client, sweep_id)), flush=True)


if __name__ == "__main__":
    main()
