"""Hostile load: the API's peak memory and the pollers' latency with hostile clients, against a quiet
run, in one run.

    .venv/bin/python bench/hostile_load.py --data-dir data [--seconds 20] [--catch-ups 20] [--rounds 3] [--each]
        [--api-workers 2]

Starts one API process and one worker (real processes, loopback only, SQLite in a temporary
folder), stores a finished job with a 101,000-point curve, trains a small model (for /predict to
decode against) and starts a long MLP job whose curve 20 pollers read (`GET /jobs/{id}/metrics?
max_points=500` and `GET /jobs/{id}`). Then three phases, each with a fresh API process (or processes:
each of them) that first answers an ordinary prediction (so each has the model and torch loaded):
- `quiet`: the pollers alone;
- `hostile`: the pollers, plus 8 clients sending the requests of issue 12's items 1, 2 and 4 (a 24 MB
  JSON body of empty image strings, a 24 MB job spec, 5000x5000 PNGs, a request of 16 large JPEGs, an
  unbounded-curve spec, the whole curve of the job), and issue 22's: two sweeps whose every proposal
  is refused (500 trials each), and 20 clients catching up on the 101,000-point curve from its start,
  again 2 s after each catch-up;
- `idle streams`: the pollers, and 1,000 event streams opened and never read.
The 20 pollers run in a process of their own, as another person's client would (in the bench's process
they would share one GIL with its 28 hostile client threads and time those too), and send a few untimed
requests to each phase's fresh API process before its clock starts.
Prints the API's peak resident memory (VmHWM) and the pollers' p50/p99 latency side by side, with the
ratios against `quiet`, and the CPU time the API, the hostile clients and the pollers used in each
phase. Every request loop is bounded in time. With `--each`: a phase per attack instead of `hostile` (the
8 clients sending only that request; the catch-ups alone; the refused sweeps alone), to see which moves
the pollers' p99.
"""

import argparse
import io
import json
import multiprocessing
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from store.unit_of_work import unit_of_work

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.net import free_port, wait_until_up
from harness.processes import cpu_seconds

TRAINING = {"model": "torch_mlp", "hidden_units": [256], "max_steps": 200_000, "log_every": 10,
            "eval_every": 2000, "name": "polled"}  # fmt: skip
MODEL = {"model": "torch_mlp", "hidden_units": [64], "max_steps": 50, "eval_every": 50, "name": "for /predict"}
LONG_CURVE = {"model": "torch_mlp", "max_steps": 1_000_000, "log_every": 10, "eval_every": 1000, "name": "long"}
ALL_REFUSED = {"base": {"model": "torch_mlp", "max_steps": 200}, "method": "random", "trials": 500,
               "search": {"warmup_steps": {"uniform": [150, 199]}, "max_steps": {"uniform": [100, 149]}}}  # fmt: skip
IDLE_STREAMS = 1000
HOSTILE_CLIENTS = 8
Attack = tuple[str, Callable[[httpx.Client, int], httpx.Response]]  # its name, and how a client sends it
WARM_UP_POLLS = 4  # per poller, before each phase's clock starts: not timed, in any phase
CATCH_UP_PAUSE_SECONDS = 2.0  # each catch-up client follows the long curve from its start every 2 s


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return "unknown"


def store_long_curve(database_url: str) -> int:
    """A finished (cancelled) job with 100,000 train and 1,000 test points, written through the store."""
    # imported here: the pollers' process (which imports this module) stays a light client, without torch
    from specs import parse_job_spec
    from store.attempts import cancel_attempt, claim_next
    from store.engine import make_engine, make_session_factory
    from store.jobs import create_job
    from store.points import add_points

    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        create_job(session, parse_job_spec(LONG_CURVE))
        session.commit()
        attempt = claim_next(sessions, "bench")
    assert attempt is not None
    points = [(step, "train", 1.0 / step, 0.5) for step in range(10, 1_000_001, 10)]
    points += [(step, "test", 1.0 / step, 0.5) for step in range(1000, 1_000_001, 1000)]
    points.sort(key=lambda p: (p[0], p[1] == "test"))
    with sessions() as session:
        add_points(session, attempt.job_id, points)
        session.commit()
    with unit_of_work(sessions) as session:
        cancel_attempt(session, attempt, {}, 1_000_000)
    engine.dispose()
    return attempt.job_id


def open_idle_streams(port: int, count: int) -> tuple[list[socket.socket], dict[str, int]]:
    """`count` connections that ask for the jobs table's event stream and never read it."""
    sockets, answers = [], {"200": 0, "503": 0, "other": 0}
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sockets.append(sock)
    for sock in sockets:
        try:
            status = sock.recv(64).split(b" ", 2)[1].decode()
        except (OSError, IndexError):
            status = "other"
        answers[status if status in answers else "other"] += 1
    return sockets, answers


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def api_processes(pid: int) -> list[int]:
    """The API's serving processes: uvicorn's own, or with `--workers N` the N it started."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()] or [pid]


def warm_up_predictions(url: str, api_pid: int, seconds: float = 120) -> None:
    """Every API process answers an ordinary prediction first (torch and the model loaded, as in every phase).
    With several processes a new connection goes to whichever accepts it first, so predictions are sent on
    fresh connections, four at a time, until each process has torch in its memory map: one prediction
    warmed up only one of two processes, and the other then imported torch in the middle of the timed phase."""
    deadline = time.monotonic() + seconds

    def predict() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            client.post("/predict", files=[("files", ("ok.png", small_png(), "image/png"))]).raise_for_status()

    while not all(b"libtorch_cpu" in Path(f"/proc/{p}/maps").read_bytes() for p in api_processes(api_pid)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every API process had answered a prediction after {seconds:.0f} s")
        clients = [threading.Thread(target=predict) for _ in range(4)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()


def api_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(p) for p in {pid, *api_processes(pid)})


def hostile_requests() -> list[Attack]:
    empty_images = b'{"images": [' + b",".join([b'""'] * 8_000_000) + b"]}"  # 24 MB
    nested_units = json.dumps({"model": "torch_mlp", "hidden_units": [[]] * 6_000_000}).encode()  # ~24 MB
    bomb = io.BytesIO()
    Image.new("L", (5000, 5000)).save(bomb, format="PNG")  # tens of KB, 25 M pixels
    rng = np.random.default_rng(0)
    photo = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).resize((4000, 3000)).save(photo, "JPEG")
    unbounded = {"model": "torch_mlp", "log_every": 1, "eval_every": 1, "max_steps": 1_000_000}
    json_headers = {"content-type": "application/json"}
    return [
        ("24 MB of empty images", lambda c, j: c.post("/predict", content=empty_images, headers=json_headers)),
        ("24 MB job spec", lambda c, j: c.post("/jobs", content=nested_units, headers=json_headers)),
        ("8 PNGs of 25 M pixels", lambda c, j: c.post(
            "/predict", files=[("files", (f"{i}.png", bomb.getvalue(), "image/png")) for i in range(8)])),
        ("16 JPEGs of 12 M pixels", lambda c, j: c.post(
            "/predict", files=[("files", (f"{i}.jpg", photo.getvalue(), "image/jpeg")) for i in range(16)])),
        ("unbounded curve spec", lambda c, j: c.post("/jobs", json=unbounded)),
        ("the whole curve", lambda c, j: c.get(f"/jobs/{j}/metrics")),
    ]  # fmt: skip


def poll(url: str, job_id: int, pollers: int, deadlines: "multiprocessing.Queue[float]",
         results: "multiprocessing.Queue[list[float]]") -> None:  # fmt: skip
    """The pollers, in a process of their own (as another person's client is): their latencies are the
    service's, not the bench's other client threads' share of one GIL. Each poller first sends a few
    requests that are not timed (in every phase: each starts a fresh API process, whose first requests
    open connections and fill caches while all 20 pollers wait together); then the pollers poll until the
    deadline they are sent (the monotonic clock is the machine's, the same in every process)."""
    latencies: list[float] = []
    lock = threading.Lock()
    warmed_up, go = threading.Barrier(pollers + 1), threading.Event()
    window: dict[str, float] = {}

    def poller() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:

            def poll_once(i: int) -> None:
                if i % 2:
                    response = client.get(f"/jobs/{job_id}")
                else:
                    response = client.get(f"/jobs/{job_id}/metrics", params={"max_points": 500})
                response.raise_for_status()

            for i in range(WARM_UP_POLLS):  # a fresh API process's first requests (connections, caches)
                poll_once(i)
            warmed_up.wait()
            go.wait()
            i = 0
            while time.monotonic() < window["deadline"]:
                started = time.perf_counter()
                poll_once(i)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                i += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=poller) for _ in range(pollers)]
    for t in threads:
        t.start()
    warmed_up.wait()
    results.put([])  # ready
    window["deadline"] = deadlines.get()
    cpu_at_start = cpu_seconds(os.getpid())
    go.set()
    for t in threads:
        t.join()
    results.put(latencies)
    results.put([cpu_seconds(os.getpid()) - cpu_at_start])


def run_clients(
    url: str, job_id: int, seconds: float, pollers: int, attacks: list[Attack], long_job: int, catch_ups: int
) -> tuple[list[float], dict[str, list[int]], float]:
    """The pollers' latencies, the hostile requests' answers, and the CPU seconds the pollers' process used.
    `attacks`: what the 8 hostile clients send, each in turn (none: no hostile client)."""
    statuses: dict[str, list[int]] = {}
    lock = threading.Lock()
    requests, hostile = attacks, HOSTILE_CLIENTS if attacks else 0
    context = multiprocessing.get_context("spawn")
    deadlines: multiprocessing.Queue[float] = context.Queue()
    polled: multiprocessing.Queue[list[float]] = context.Queue()
    polling = context.Process(target=poll, args=(url, job_id, pollers, deadlines, polled))
    polling.start()
    polled.get(timeout=120)  # the polling process is ready
    deadline = time.monotonic() + seconds
    deadlines.put(deadline)

    def attacker(n: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            i = n
            while time.monotonic() < deadline:
                name, send = requests[i % len(requests)]
                try:
                    status = send(client, job_id).status_code
                except httpx.HTTPError:
                    status = -1
                with lock:
                    statuses.setdefault(name, []).append(status)
                i += 1

    def catching_up() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while time.monotonic() < deadline:
                retry_after = 0.0
                try:
                    with client.stream("GET", f"/jobs/{long_job}/events") as stream:
                        status = stream.status_code
                        retry_after = float(stream.headers.get("Retry-After", 0))  # a 503: as a client would
                        for _ in stream.iter_bytes():
                            if time.monotonic() > deadline:
                                break
                except httpx.HTTPError:
                    status = -1
                with lock:
                    statuses.setdefault("a catch-up of 101,000 points", []).append(status)
                pause = retry_after or CATCH_UP_PAUSE_SECONDS  # then again, as a follower that reconnects
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))

    threads = [threading.Thread(target=attacker, args=(n,)) for n in range(hostile)]
    threads += [threading.Thread(target=catching_up) for _ in range(catch_ups)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies = polled.get(timeout=seconds + 120)
    pollers_cpu = polled.get(timeout=60)[0]
    polling.join(30)
    return latencies, statuses, pollers_cpu


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def start_api(env: dict[str, str], port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        api = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--workers",
                                str(workers)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
    wait_until_up(f"http://127.0.0.1:{port}", api)
    return api


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--catch-ups", type=int, default=20, help="clients catching up on the long curve, again "
                        "and again (0: leave that attack out)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="the phases this many times, interleaved (a fresh "
                        "API each time); the tables show each phase's median")  # fmt: skip
    parser.add_argument("--each", action="store_true", help="one phase per attack instead of `hostile` (and no "
                        "idle streams): which attack moves the pollers' p99")  # fmt: skip
    parser.add_argument("--api-workers", type=int, default=1, help="API server processes (uvicorn --workers; "
                        "`make serve` starts API_WORKERS=2)")  # fmt: skip
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # this process holds the 1,000 idle streams
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATA_DIR": str(args.data_dir.resolve()), "DATABASE_URL": f"sqlite:///{folder}/jobs.db",
           "DOWNLOAD_DATASETS": "false", "OMP_NUM_THREADS": "1"}  # fmt: skip
    api = start_api(env, port, folder / "api.log")  # the API migrates the database first
    long_job = store_long_curve(env["DATABASE_URL"])
    with (folder / "worker.log").open("ab") as out:
        worker = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            model_job = client.post("/jobs", json=MODEL).raise_for_status().json()["id"]
            while client.get(f"/jobs/{model_job}").json()["status"] != "succeeded":
                time.sleep(1)
            job_id = client.post("/jobs", json=TRAINING).raise_for_status().json()["id"]
            while client.get(f"/jobs/{job_id}").json()["progress"]["step"] < 2000:
                time.sleep(1)
        runs: dict[str, list[Run]] = {}  # each phase's runs, one a round
        cpus: dict[str, list[tuple[float, float, float]]] = {}  # the API's, the hostile clients', the pollers'
        notes: list[str] = []
        # quiet: the pollers alone; hostile: the attacks on requests, sweeps and catch-ups; idle streams: a
        # flood of event streams that never read (the per-process cap is what stands against it)
        attacks = hostile_requests()
        # (phase, what the hostile clients send, catch-up clients, refused sweeps, idle streams)
        phases: list[tuple[str, list[Attack], int, bool, int]] = [("quiet", [], 0, False, 0)]
        if args.each:
            phases += [(name, [(name, send)], 0, False, 0) for name, send in attacks]
            phases += [("catch-ups", [], args.catch_ups, False, 0), ("refused sweeps", [], 0, True, 0)]
        else:
            phases += [("hostile", attacks, args.catch_ups, True, 0), ("idle streams", [], 0, False, IDLE_STREAMS)]
        for phase, sent, catch_ups, refused_sweeps, flood in [p for _ in range(args.rounds) for p in phases]:
            stop(api)  # a fresh API process per phase: its peak memory is that phase's
            api = start_api(env, port, folder / "api.log", args.api_workers)
            warm_up_predictions(url, api.pid)  # every phase serves predictions: torch loaded in each process
            sweeps: list[int] = []
            if refused_sweeps:
                with httpx.Client(base_url=url, timeout=60) as client:
                    sweeps = [client.post("/sweeps", json=ALL_REFUSED).json()["id"] for _ in range(2)]
            idle, idle_answers = open_idle_streams(port, flood)
            api_cpu, bench_cpu = api_cpu_seconds(api.pid), cpu_seconds(os.getpid())
            latencies, statuses, pollers_cpu = run_clients(url, job_id, args.seconds, pollers=20, attacks=sent,
                                              long_job=long_job, catch_ups=catch_ups)  # fmt: skip
            used = (api_cpu_seconds(api.pid) - api_cpu, cpu_seconds(os.getpid()) - bench_cpu, pollers_cpu)
            cpus.setdefault(phase, []).append(used)
            with httpx.Client(base_url=url, timeout=60) as client:
                ended = [client.get(f"/sweeps/{sweep}").json() for sweep in sweeps]
            round_of = f"round {len(runs.get(phase, [])) + 1}: " if args.rounds > 1 else ""
            if ended:
                notes.append(round_of + "the two sweeps of refused proposals ended " + ", ".join(
                    f"{sweep['status']} after {sweep['trials_created']} trials" for sweep in ended))  # fmt: skip
            if flood:
                notes.append(round_of + f"{flood} idle streams: {idle_answers['200']} held open (200), "
                             f"{idle_answers['503']} refused (503), {idle_answers['other']} other")  # fmt: skip
            for sock in idle:
                sock.close()
            peak = max(map(peak_rss_mb, api_processes(api.pid)))  # of one API process, with several
            runs.setdefault(phase, []).append((peak, percentile(latencies, 0.5), percentile(latencies, 0.99),
                                               len(latencies), statuses))  # fmt: skip
    finally:
        stop(worker)
        stop(api)
    results, cpu = (
        {phase: median_run(of) for phase, of in runs.items()},
        {phase: tuple_median(of) for phase, of in cpus.items()},
    )
    print(
        f"CPU: {cpu_model()}; "
        + (f"medians of {args.rounds} rounds, interleaved" if args.rounds > 1 else "one round")
        + f"; {args.api_workers} API process{'es' if args.api_workers > 1 else ''}"
    )
    if args.rounds > 1:
        p99s = {phase: [run[2] * 1000 for run in of] for phase, of in runs.items()}
        print("pollers' p99 in each round (ms): " + "; ".join(
            f"{phase} {', '.join(f'{p:.0f}' for p in values)}" for phase, values in p99s.items()))  # fmt: skip
        if "hostile" in p99s:
            ratios = [h / q for h, q in zip(p99s["hostile"], p99s["quiet"], strict=True)]
            print("hostile / quiet p99 in each round: " + ", ".join(f"{r:.2f}x" for r in ratios))
        print()
    if args.each:
        print_each(results, cpu)
        return
    quiet, hostile_run = results["quiet"], results["hostile"]
    print(f"| run | API peak RSS (MB) | pollers' p50 (ms) | pollers' p99 (ms) | polls in {args.seconds:.0f} s |")
    print("|---|---|---|---|---|")
    for name, (rss, p50, p99, count, _) in results.items():
        print(f"| {name} | {rss:.0f} | {p50 * 1000:.1f} | {p99 * 1000:.1f} | {count} |")
    for name in ("hostile", "idle streams"):
        run = results[name]
        print(f"| {name} vs quiet | +{run[0] - quiet[0]:.0f} MB | {run[1] / quiet[1]:.2f}x | "
              f"{run[2] / quiet[2]:.2f}x | |")  # fmt: skip
    print()
    print(f"CPU seconds used in each phase of {args.seconds:.0f} s (the machine has {os.cpu_count()} cores; the "
          "worker's training, at nice 10, takes what is left):")  # fmt: skip
    print("| run | API | the bench's hostile clients | the pollers' process |")
    print("|---|---|---|---|")
    for name, (api_s, clients_s, pollers_s) in cpu.items():
        print(f"| {name} | {api_s:.1f} | {clients_s:.1f} | {pollers_s:.1f} |")
    print()
    print("Hostile requests and their answers:")
    for name, codes in sorted(hostile_run[4].items()):
        counted = {code: codes.count(code) for code in sorted(set(codes))}
        print(f"- {name}: {len(codes)} sent, answers {counted}")
    for note in notes:
        print(f"- {note}")


Run = tuple[float, float, float, int, dict[str, list[int]]]  # peak RSS MB, p50 s, p99 s, polls, answers


def median_run(runs: list[Run]) -> Run:
    """A phase over its rounds: the highest peak memory, the median latencies and poll count, every answer."""
    answers: dict[str, list[int]] = {}
    for run in runs:
        for name, codes in run[4].items():
            answers.setdefault(name, []).extend(codes)
    return (max(run[0] for run in runs), statistics.median(run[1] for run in runs),
            statistics.median(run[2] for run in runs), round(statistics.median(run[3] for run in runs)),
            answers)  # fmt: skip


def tuple_median(values: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    api_s, clients_s, pollers_s = (statistics.median(column) for column in zip(*values, strict=True))
    return api_s, clients_s, pollers_s


def print_each(results: dict[str, Run],
               cpu: dict[str, tuple[float, float, float]]) -> None:  # fmt: skip
    """One row per phase: the pollers' p99 against quiet, and where the CPU went."""
    quiet_p99 = results["quiet"][2]
    print("| phase (one attack) | pollers' p50 (ms) | pollers' p99 (ms) | p99 vs quiet | CPU s: API | the bench's "
          "hostile clients | the pollers |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for name, (_, p50, p99, _, _) in results.items():
        api_s, clients_s, pollers_s = cpu[name]
        print(f"| {name} | {p50 * 1000:.1f} | {p99 * 1000:.1f} | {p99 / quiet_p99:.2f}x | {api_s:.1f} | "
              f"{clients_s:.1f} | {pollers_s:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
