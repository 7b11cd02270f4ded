"""Sweeps, measured against Ray Tune in the same run on the same cores: one TPE search with successive halving, run
by this service's sweeps and by Tune's `ASHAScheduler` with its Optuna searcher.

    .venv/bin/pip install -e '.[peers]'                      # Ray Tune (not a dependency of the service)
    unshare --net sh -c 'ip link set lo up && .venv/bin/python bench/peers/sweeps.py --data-dir data [--seeds 0 1 2]'

(Ray runs inside a private network namespace, where loopback is the only address it can advertise.) Both sides
train the same PyTorch MLP (SGD, standardized pixels) on CIFAR-10 with this project's training code, one CPU (one
thread) a trial, two trials at a time on two cores: this service through its API, sweep driver and two workers
(`--cpus 1`); Tune through `tune.Tuner` with a function trainable that runs the same `run_job` and reports each test
evaluation. The search: `learning_rate` log-uniform in [1e-4, 0.1], `hidden_units` from three choices, 16 trials,
TPE seeded alike (Optuna's `TPESampler` on both sides), successive halving from `--min-steps` with reduction factor
3 up to `--max-steps`. Per sweep: the wall time from submitting to the last trial's end (Ray's start is not in it;
it is printed apart), the best test accuracy, the time until a trial first reaches `--threshold`, and each side's
seconds per trial not training (the wall time times the two slots, less every trial's training time, steps over its
training speed, a trial).
"""

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.hostile_load import cpu_model  # noqa: E402
from harness.net import free_port, wait_until_up  # noqa: E402
from harness.processes import stop_processes  # noqa: E402

HIDDEN = {"100": [100], "200": [200], "400-200": [400, 200]}
SLOTS = 2  # trials at a time, one CPU each
RATES = (1e-4, 0.1)  # the learning rate's range (log-uniform); above it, SGD on standardized pixels can diverge


@dataclass(frozen=True)
class Search:
    trials: int
    max_steps: int
    min_steps: int
    eval_every: int
    threshold: float
    batch_size: int = 200

    def base(self) -> dict[str, Any]:
        return {"model": "torch_mlp", "optimizer": "sgd", "preprocessing": "standardize", "batch_size": self.batch_size,
                "max_steps": self.max_steps,
                "eval_every": self.eval_every, "log_every": self.eval_every, "checkpoint_every": 1_000_000,
                "cpus": 1}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    side: str
    seed: int
    wall_seconds: float
    best_accuracy: float
    to_threshold_seconds: float | None
    not_training_per_trial: float
    trials: int


def through_service(url: str, search: Search, seed: int) -> Outcome:
    request = {"base": search.base(), "method": "tpe", "trials": search.trials, "max_concurrent": SLOTS, "seed": seed,
               "search": {"learning_rate": {"log_uniform": list(RATES)},
                          "hidden_units": {"choices": list(HIDDEN.values())}},
               "early_stopping": {"method": "successive_halving", "min_steps": search.min_steps,
                                  "reduction_factor": 3}}  # fmt: skip
    with httpx.Client(base_url=url, timeout=30) as client:
        started = time.monotonic()
        sweep_id = client.post("/sweeps", json=request).raise_for_status().json()["id"]
        reached: float | None = None
        while True:
            sweep = client.get(f"/sweeps/{sweep_id}").json()
            best = max((t["best"] for t in sweep["leaderboard"] if t["best"] is not None), default=0.0)
            if reached is None and best >= search.threshold:
                reached = time.monotonic() - started
            if sweep["status"] != "running":
                break
            time.sleep(0.25)
        wall = time.monotonic() - started
        if sweep["status"] != "finished":
            raise RuntimeError(f"sweep {sweep_id} ended {sweep['status']}: {sweep['error']}")
        training = 0.0
        for trial in sweep["leaderboard"]:
            progress = client.get(f"/jobs/{trial['job_id']}").json()["progress"]
            if progress["steps_per_second"]:
                training += progress["step"] / progress["steps_per_second"]
    trials = len(sweep["leaderboard"])
    return Outcome("this service", seed, wall, best, reached, (wall * SLOTS - training) / trials, trials)


def start_service(folder: Path, data_dir: Path) -> tuple[list[subprocess.Popen[bytes]], str]:
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(data_dir.resolve()), "DATABASE_URL": f"sqlite:///{folder / 'jobs.db'}",
           "DOWNLOAD_DATASETS": "false", "WORKER_POLL_SECONDS": "0.2", "SWEEP_INTERVAL_SECONDS": "0.5",
           "PLAN_PROBE_SECONDS": "0"}  # fmt: skip
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(name, None)

    def start(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    api = start("uvicorn", "app.main:app", "--port", str(port), "--log-level", "warning")
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, api, timeout=90)
    processes = [api, start("app.sweeps.driver_process")]
    processes += [start("workers", "--name", f"w{i}", "--cpus", "1") for i in range(SLOTS)]
    deadline = time.monotonic() + 120
    while len(httpx.get(f"{url}/executors", timeout=10).json()["data"]) < SLOTS:
        if time.monotonic() > deadline:
            raise TimeoutError("the workers did not register")
        time.sleep(0.2)
    return processes, url


def tune_trial(config: dict[str, Any], data_dir: str, base: dict[str, Any], marks: str, threshold: float) -> None:
    """One Tune trial: this project's training of the spec, each test evaluation reported to Tune (ASHA stops the
    trial at a report), its training time (steps over speed) reported with it."""
    from ray import tune

    from models.errors import JobError
    from models.kinds import parse_spec
    from models.run import run_job
    from models.training.reporting import InMemoryReporter, Split
    from models.training.results import DataSource
    from models.training.threads import train_with_cpus

    train_with_cpus(1, uses_torch=True)

    class ToTune(InMemoryReporter):
        def point(self, step: int, split: "Split", loss: float, accuracy: float) -> None:
            super().point(step, split, loss, accuracy)
            if split != "test":
                return
            if accuracy >= threshold:
                with open(marks, "a") as file:
                    file.write(f"{time.time()}\n")
            speed = self.last_progress[1] if self.last_progress else 0.0
            tune.report({"accuracy": accuracy, "step": step, "training_seconds": step / speed if speed else 0.0})

    spec = parse_spec({**base, "learning_rate": config["learning_rate"], "hidden_units": HIDDEN[config["hidden"]]})
    reporter = ToTune()
    try:
        run_job(spec, reporter, DataSource(Path(data_dir)))
    except JobError:  # diverged, as this service's trial fails: Tune (which needs a value) is told chance's
        step = reporter.last_progress[0] if reporter.last_progress else 0
        tune.report({"accuracy": 0.1, "step": step, "training_seconds": 0.0})


def through_tune(search: Search, seed: int, data_dir: Path, folder: Path) -> Outcome:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    marks = folder / f"reached-{seed}.txt"
    trainable = tune.with_parameters(tune_trial, data_dir=str(data_dir.resolve()), base=search.base(),
                                     marks=str(marks), threshold=search.threshold)  # fmt: skip
    searcher = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed), metric="accuracy", mode="max")
    scheduler = ASHAScheduler(time_attr="step", metric="accuracy", mode="max", max_t=search.max_steps,
                              grace_period=search.min_steps, reduction_factor=3)  # fmt: skip
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"learning_rate": tune.loguniform(*RATES), "hidden": tune.choice(list(HIDDEN))},
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, num_samples=search.trials, max_concurrent_trials=SLOTS
        ),  # fmt: skip
        run_config=tune.RunConfig(storage_path=str(folder / "tune"), name=f"seed-{seed}", verbose=0),
    )
    started, started_at = time.monotonic(), time.time()
    results = tuner.fit()
    wall = time.monotonic() - started
    if results.errors:
        raise RuntimeError(f"{len(results.errors)} Tune trials failed: {results.errors[0]}")
    every = [results[i] for i in range(len(results))]
    frames = [result.metrics_dataframe for result in every if result.metrics_dataframe is not None]
    best = max((float(frame["accuracy"].max()) for frame in frames), default=0.0)
    training = sum(float(frame["training_seconds"].max()) for frame in frames)
    reached_at = [float(line) for line in marks.read_text().split()] if marks.exists() else []
    reached = min(reached_at) - started_at if reached_at else None
    return Outcome("Ray Tune", seed, wall, best, reached, (wall * SLOTS - training) / len(frames), len(frames))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=1800)
    parser.add_argument("--min-steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--threshold", type=float, default=0.40, help="the test accuracy timed to")
    args = parser.parse_args()
    search = Search(args.trials, args.max_steps, args.min_steps, args.eval_every, args.threshold)
    import ray

    print(f"CPU: {cpu_model()}; ray {ray.__version__}; {search.trials} trials, {SLOTS} at a time, one CPU each; "
          f"successive halving from {search.min_steps} to {search.max_steps} steps, factor 3\n",
          flush=True)  # fmt: skip
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        began = time.monotonic()
        ray.init(num_cpus=SLOTS, include_dashboard=False, logging_level=logging.ERROR)
        print(f"Ray started in {time.monotonic() - began:.1f} s (not in Tune's wall times)", flush=True)
        processes, url = start_service(folder, args.data_dir)
        try:
            for index, seed in enumerate(args.seeds):  # interleaved, each side first in turn
                sides = ("service", "tune") if index % 2 == 0 else ("tune", "service")
                for side in sides:
                    if side == "service":
                        outcome = through_service(url, search, seed)
                    else:
                        outcome = through_tune(search, seed, args.data_dir, folder)
                    outcomes.append(outcome)
                    print(f"  seed {seed}: {outcome}", flush=True)
        finally:
            stop_processes(processes, report_slow=False)
            ray.shutdown()
    print("\n| side | seed | trials | wall time | best test accuracy | until accuracy "
          f"{search.threshold:g} | seconds a trial not training |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for o in outcomes:
        reached = f"{o.to_threshold_seconds:.0f} s" if o.to_threshold_seconds is not None else "never"
        print(f"| {o.side} | {o.seed} | {o.trials} | {o.wall_seconds:.0f} s | {o.best_accuracy:.4f} | {reached} | "
              f"{o.not_training_per_trial:.1f} |")  # fmt: skip
    for side in ("this service", "Ray Tune"):
        mine = [o for o in outcomes if o.side == side]
        print(f"{side}: wall {statistics.median(o.wall_seconds for o in mine):.0f} s, best "
              f"{statistics.mean(o.best_accuracy for o in mine):.4f} (mean of {len(mine)} seeds), not training "
              f"{statistics.median(o.not_training_per_trial for o in mine):.1f} s a trial")  # fmt: skip


if __name__ == "__main__":
    main()
