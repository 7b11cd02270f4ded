"""A job's training output: printed once, or followed as the worker copies it (every few seconds).

The service keeps each attempt's newest 256 KB, so a follower prints what is new since its last read:
the text after the part it has already printed (found by its tail when older output was dropped).
When the job starts another attempt (it was handed back), the follower goes on with that one.
"""

import sys
import time

import httpx

from cli.http import answer

FINISHED = {"succeeded", "failed", "cancelled", "stopped_early"}
OVERLAP_CHARS = 2000  # how much of the printed text identifies where the new text begins


def new_part(printed: str, text: str) -> str:
    """What `text` holds beyond `printed`, an earlier read of the same growing (and front-cut) output."""
    if text.startswith(printed):
        return text[len(printed) :]
    tail = printed[-OVERLAP_CHARS:]
    at = text.rfind(tail)
    return text[at + len(tail) :] if tail and at >= 0 else text


def _read(http: httpx.Client, job_id: int, attempt: int | None, tail: int | None) -> tuple[str, int]:
    """The attempt's output (the latest's when None) and its number (0: the job has not started)."""
    if attempt == 0:
        return "", 0
    params = {key: value for key, value in (("attempt", attempt), ("tail", tail)) if value is not None}
    response = http.get(f"/jobs/{job_id}/logs", params=params)
    if not response.is_success:
        answer(response)
    return response.text, int(response.headers.get("X-Attempt", attempt or 0))


def show_logs(
    http: httpx.Client, job_id: int, attempt: int | None, tail: int | None, follow: bool, interval: float = 1.0
) -> None:
    """Print the attempt's output (the latest attempt by default); with `follow`, until the job ends."""
    text, shown_attempt = _read(http, job_id, attempt, tail)
    sys.stdout.write(text)
    sys.stdout.flush()
    printed = text
    ended_at_last_read = False
    while follow:
        job = answer(http.get(f"/jobs/{job_id}"))
        if attempt is None and job["attempts"] > shown_attempt:  # started, or handed back and started again
            if shown_attempt > 0:
                sys.stdout.write(new_part(printed, _read(http, job_id, shown_attempt, None)[0]))
                sys.stdout.write(f"--- attempt {job['attempts']}\n")
            shown_attempt = job["attempts"]
            printed = ""
        text, _ = _read(http, job_id, shown_attempt, None)
        sys.stdout.write(new_part(printed, text))
        sys.stdout.flush()
        # the training process records its end, then its executor copies its last output: done once a
        # read made an interval after the end was seen brings nothing new
        if ended_at_last_read and text == printed:
            return
        ended_at_last_read = job["status"] in FINISHED
        printed = text
        time.sleep(interval)
