"""Prediction throughput and latency through HTTP against the same model called in-process.

    .venv/bin/python bench/predict_load.py --url http://127.0.0.1:8000 --mlp-job 8 --convnet-job 7

For each model, batch size (images per request: 1 and 64) and number of concurrent clients (1 and
8), clients send PNG test images to `POST /predict` for `--seconds`; then the same model, loaded
from the job's stored file in this process, is called directly on the same decoded uint8 tensors
for as long. Prints images per second and p50/p99 latency of each, and HTTP / direct. Targets: at
batch 64, HTTP >= 0.85 of direct for the ConvNet; at batch 1, MLP p50 under 5 ms. Run it while the
machine is otherwise idle: the server and this process share the CPU.
"""

import argparse
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api_load import percentile  # noqa: E402  (bench/ is on sys.path: the script's folder)
from predict_consistency import png_bytes

from models.artifacts import unpack_model
from models.data.catalog import load_dataset
from models.kinds import load_predictor

BATCHES = (1, 64)
CLIENTS = (1, 8)


def http_run(url: str, job_id: int, pngs: list[bytes], batch: int, clients: int, seconds: float) -> list[float]:
    """Latency of every request; each client cycles through its own slices of the images."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client_loop(c: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = c * batch
            while time.monotonic() < deadline:
                files = [("files", (f"{j}.png", pngs[(i + j) % len(pngs)], "image/png")) for j in range(batch)]
                i += batch * clients
                started = time.perf_counter()
                client.post("/predict", params={"job_id": job_id}, files=files).raise_for_status()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)

    # one warm-up request loads the model into the server's cache
    with httpx.Client(base_url=url, timeout=120) as warm:
        warm.post("/predict", params={"job_id": job_id}, files=[("files", ("w.png", pngs[0], "image/png"))])
    threads = [threading.Thread(target=client_loop, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def direct_run(predictor: object, images: np.ndarray, batch: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    probabilities = predictor.probabilities  # type: ignore[attr-defined]
    probabilities(images[:batch])  # warm-up
    deadline, i = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        chunk = images[i % (len(images) - batch) : i % (len(images) - batch) + batch]
        i += batch
        started = time.perf_counter()
        probabilities(chunk)
        latencies.append(time.perf_counter() - started)
    return latencies


def row(model: str, batch: int, clients: int, http: list[float], direct: list[float], seconds: float) -> str:
    http_rate = len(http) * batch / seconds
    direct_rate = len(direct) * batch / seconds
    ms = 1000.0
    return (
        f"| {model} | {batch} | {clients} | {http_rate:,.0f} | {percentile(http, 0.5) * ms:.1f} | "
        f"{percentile(http, 0.99) * ms:.1f} | {direct_rate:,.0f} | {percentile(direct, 0.5) * ms:.2f} | "
        f"{http_rate / direct_rate:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--mlp-job", type=int, required=True)
    parser.add_argument("--convnet-job", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    args = parser.parse_args()

    images = load_dataset("cifar10", args.data_dir).test_x[:2048]
    pngs = [png_bytes(image) for image in images]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads in this process; PNG uploads, 32x32")
    print("| model | images/request | clients | HTTP images/s | HTTP p50 ms | HTTP p99 ms | direct images/s "
          "| direct p50 ms | HTTP / direct |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    with httpx.Client(base_url=args.url, timeout=120) as client:
        for label, job_id in (("MLP", args.mlp_job), ("ConvNet", args.convnet_job)):
            job = client.get(f"/jobs/{job_id}").raise_for_status().json()
            predictor = load_predictor(unpack_model(client.get(f"/jobs/{job_id}/model").raise_for_status().content))
            name = f"{label} (job {job_id}, {job['model']})"
            for batch in BATCHES:
                direct = direct_run(predictor, images, batch, args.seconds)
                for clients in CLIENTS:
                    http = http_run(args.url, job_id, pngs, batch, clients, args.seconds)
                    print(row(name, batch, clients, http, direct, args.seconds), flush=True)


if __name__ == "__main__":
    main()
