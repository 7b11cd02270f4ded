"""The CLI's terminal: where it prints, how it fails, and how it reads a JSON argument."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from cifar_jobs import Client, ServiceError

console = Console()
errors = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    errors.print(message, markup=False, highlight=False)
    return typer.Exit(1)


@contextmanager
def service(token: str | None = None) -> Iterator[Client]:
    """The Python client of the service (CIFAR_JOBS_URL, with API_KEY or the token `login` kept); a refusal ends
    the command with the service's status and message, and exit code 1."""
    try:
        with Client(token=token) as client:
            yield client
    except ServiceError as exc:
        raise fail(f"{exc.status}: {exc.message}") from None


def read_json_argument(text: str, what: str) -> dict[str, Any]:
    """JSON given inline, as @file.json, or - for standard input."""
    try:
        if text == "-":
            value = json.loads(sys.stdin.read())
        elif text.startswith("@"):
            value = json.loads(Path(text[1:]).read_text())
        else:
            value = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{text[:60]!r}: {exc}", param_hint=what) from None
    if not isinstance(value, dict):
        raise typer.BadParameter("a JSON object is needed", param_hint=what)
    return value
