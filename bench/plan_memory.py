"""What a plan costs the API process: its resident memory and each plan's answer time over a few ResNet18 plans at
256x256 (`POST /jobs?dry_run=true&probe=false`), the largest network a plan builds.

    .venv/bin/python bench/plan_memory.py [--plans 3] [--input-size 256]

Starts the API (one uvicorn process) on a fresh SQLite file in a temporary folder, answers one NumPy MLP plan (no
network built: the API's start-up memory, the reference), then the ResNet18 plans (another seed each: the same
shape). Prints a Markdown table: resident MB after each plan, its ratio to the reference, and the answer time.
Target: the API's resident memory after the plans within 1.2x of the reference.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.net import free_port, wait_until_up
from harness.processes import resident_mb, stop_processes
from models.training.precision import cpu_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plans", type=int, default=3)
    parser.add_argument("--input-size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {**os.environ, "DATA_DIR": folder, "DATABASE_URL": f"sqlite:///{folder}/jobs.db",
               "DOWNLOAD_DATASETS": "false"}  # fmt: skip
        command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
        api = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, api)
            rows = []
            with httpx.Client(base_url=url, timeout=600) as client:
                client.post("/jobs?dry_run=true&probe=false", json={"model": "numpy_mlp"}).raise_for_status()
                reference = resident_mb(api.pid)
                for seed in range(args.plans):
                    spec = {"model": "resnet18", "input_size": args.input_size, "batch_size": 64, "seed": seed}
                    started = time.monotonic()
                    client.post("/jobs?dry_run=true&probe=false", json=spec).raise_for_status()
                    rows.append((seed + 1, time.monotonic() - started, resident_mb(api.pid)))
        finally:
            stop_processes([api], report_slow=False)
    print(f"CPU: {cpu_model()}; API resident before the plans (a NumPy MLP's plan answered): {reference:.0f} MB\n")
    print(f"| ResNet18 plan at {args.input_size}x{args.input_size} | answer s | API resident MB | ratio to before |")
    print("|---|---|---|---|")
    for number, seconds, resident in rows:
        print(f"| {number} | {seconds:.2f} | {resident:.0f} | {resident / reference:.2f} |")
    worst = max(resident for _, _, resident in rows) / reference
    print(f"\nwithin 1.2x of the reference: {'yes' if worst <= 1.2 else 'no'} ({worst:.2f}x)")


if __name__ == "__main__":
    main()
