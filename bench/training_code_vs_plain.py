"""The service's training code alone against the plain PyTorch loop, both in fresh processes.

    .venv/bin/python bench/training_code_vs_plain.py --data-dir data

Splits `bench/service_vs_plain.py`'s ratio in two: `models.run.run_job` with an in-memory reporter
(the code the worker's child runs, without the database, the worker or the API) against the same
plain loop, each in a fresh process, interleaved for `--rounds` rounds; and the same run_job at
niceness 10, as the worker starts training processes (TRAINING_NICE). When these ratios hold and
the service's does not, the difference is in the service around the training code.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import in_fresh_process, train_on_cpu
from bench.service_vs_plain import CONFIGS, plain_loop
from models.training.precision import cpu_model


def training_code(spec: dict[str, Any], data_dir: Path, nice: int) -> float:
    """Steps per second of `run_job` at niceness `nice` (call it in a fresh process)."""
    os.nice(nice)
    steps_per_second: float = train_on_cpu({**spec, "eval_every": spec["max_steps"]}, data_dir)["steps_per_second"]
    return steps_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(cpu_model())
    print("| configuration | run_job steps/s | plain steps/s | ratio (each round) | at niceness 10 (each round) |")
    print("|---|---|---|---|---|")
    for spec in CONFIGS:
        rates: dict[str, list[float]] = {"code": [], "plain": [], "nice": []}
        for round_number in range(args.rounds):
            order = ["code", "plain", "nice"] if round_number % 2 == 0 else ["nice", "plain", "code"]
            for what in order:
                if what == "plain":
                    rates[what].append(in_fresh_process(plain_loop, spec, args.data_dir))
                else:
                    rates[what].append(
                        in_fresh_process(training_code, spec, args.data_dir, 10 if what == "nice" else 0)
                    )
        ratios = [c / p for c, p in zip(rates["code"], rates["plain"], strict=True)]
        nice_ratios = [n / p for n, p in zip(rates["nice"], rates["plain"], strict=True)]
        label = f"hidden {spec['hidden_units']}, {spec['optimizer']}, {spec['max_steps']} steps"
        print(
            f"| {label} | {statistics.median(rates['code']):.1f} | {statistics.median(rates['plain']):.1f} "
            f"| {statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)}) "
            f"| {statistics.median(nice_ratios):.2f} ({', '.join(f'{r:.2f}' for r in nice_ratios)}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
