"""float32 conv nets on the CPU: channels-last (what the service runs) against NCHW (what it ran before issue 16).

    .venv/bin/python bench/cpu_memory_format.py

On a CPU without fast bfloat16, `mixed_precision: "auto"` trains in float32, in channels-last memory
order as every conv net now does; this checks that the memory order alone costs nothing there. One
Adam training step and one inference-mode evaluation batch of the ConvNet (batch 32, evaluation 500)
and the CIFAR-stem ResNet18 (batch 128, evaluation 250) on random 32x32 images, denormals flushed,
both orders interleaved for `--rounds` rounds; prints images/s and the channels-last / NCHW ratios.
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch
from torch import nn

from models.networks.convnet import ConvNet
from models.networks.resnet import ResNet18Classifier
from models.training.denormals import denormals_flushed
from models.training.precision import cpu_model

MODELS: list[tuple[str, Callable[[], nn.Module], int, int, int]] = [
    # name, build, training batch, training steps, evaluation batch
    ("ConvNet", ConvNet, 32, 40, 500),
    ("ResNet18 CIFAR stem", lambda: ResNet18Classifier(10), 128, 5, 250),
]


def images_per_second(
    build: Callable[[], nn.Module], batch: int, steps: int, channels_last: bool, train: bool
) -> float:
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = build().to(memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        if train:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        else:
            with torch.inference_mode():
                model.eval()
                model(x)

    for _ in range(2):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads): {cpu_model()}")
    print("| model | NCHW train / eval images/s | channels-last train / eval images/s | train ratio | eval ratio |")
    print("|---|---|---|---|---|")
    with denormals_flushed():
        for name, build, batch, steps, eval_batch in MODELS:
            rates: dict[tuple[bool, bool], list[float]] = {(cl, tr): [] for cl in (False, True) for tr in (False, True)}
            for round_number in range(args.rounds):
                for channels_last in (False, True) if round_number % 2 == 0 else (True, False):
                    rates[channels_last, True].append(images_per_second(build, batch, steps, channels_last, True))
                    rates[channels_last, False].append(
                        images_per_second(build, eval_batch, max(1, steps // 4), channels_last, False)
                    )
            median = {key: statistics.median(values) for key, values in rates.items()}
            train_ratio = median[True, True] / median[False, True]
            eval_ratio = median[True, False] / median[False, False]
            print(
                f"| {name} | {median[False, True]:.0f} / {median[False, False]:.0f} "
                f"| {median[True, True]:.0f} / {median[True, False]:.0f} | {train_ratio:.2f} | {eval_ratio:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
