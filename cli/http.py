"""The CLI's connection to the service: the client, and turning an answer into data or a message."""

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console

from cli.settings import CliSettings

console = Console()
errors = Console(stderr=True)


def client() -> httpx.Client:
    """A client of CIFAR_JOBS_URL (default http://127.0.0.1:8000), with API_KEY or the token `login` kept."""
    settings = CliSettings()
    token = settings.token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=settings.cifar_jobs_url, headers=headers, timeout=60)


def fail(message: str) -> typer.Exit:
    errors.print(message, markup=False, highlight=False)
    return typer.Exit(1)


def answer(response: httpx.Response) -> Any:
    """The JSON body, or the service's message and exit code 1."""
    if response.is_success:
        return response.json() if response.content else None
    try:
        body = response.json()
        message = body.get("message") or body.get("detail") or response.text
    except ValueError:
        message = response.text
    raise fail(f"{response.status_code}: {message}")


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
