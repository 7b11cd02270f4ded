"""Choosing the device and seeding torch for one job."""

import torch

from models.errors import JobError


def resolve_device(requested: str) -> torch.device:
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if requested == "cuda":
        raise JobError(
            'device "cuda" was requested, but this worker has no usable CUDA GPU '
            '(torch.cuda.is_available() is False): use "device": "auto" or "cpu"'
        )
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)  # seeds the CPU and every CUDA device
