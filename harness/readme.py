"""The README's code blocks, as the tests run them: in order, with training runs shortened."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHORTENED = re.compile(r'("(?:max|min)_steps": |max_steps=)(\d+)')


def readme_blocks() -> list[tuple[str, str]]:
    """Each fenced block: its info string (`sh`, `python`, `text`) and its text."""
    return [(info, body) for info, body in BLOCK.findall(README.read_text())]


def as_run_here(command: str, port: int) -> str:
    """A block as run against a service on `port` (not 8000), every `max_steps` (and a sweep's `min_steps`)
    divided by 100: the tests' tiny data set needs no thousands of steps."""
    command = re.sub(r"(localhost|127\.0\.0\.1):8000", rf"\1:{port}", command)
    return SHORTENED.sub(lambda m: f"{m.group(1)}{max(1, int(m.group(2)) // 100)}", command)
