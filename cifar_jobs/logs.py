"""A job's training output: read once, or followed as the worker copies it (every few seconds).

The service keeps each attempt's newest 256 KB, so a follower yields what is new since its last read: the text
after the part it has already given (found by its tail when older output was dropped). When the job starts
another attempt (it was handed back), the follower goes on with that one.
"""

import time
from collections.abc import Iterator

from cifar_jobs.connection import Connection

FINISHED = {"succeeded", "failed", "cancelled", "stopped_early"}
OVERLAP_CHARS = 2000  # how much of the given text identifies where the new text begins


def new_part(printed: str, text: str) -> str:
    """What `text` holds beyond `printed`, an earlier read of the same growing (and front-cut) output."""
    if text.startswith(printed):
        return text[len(printed) :]
    tail = printed[-OVERLAP_CHARS:]
    at = text.rfind(tail)
    return text[at + len(tail) :] if tail and at >= 0 else text


def read_logs(connection: Connection, job_id: int, attempt: int | None, tail: int | None) -> tuple[str, int]:
    """The attempt's output (the latest's when None) and its number (0: the job has not started)."""
    if attempt == 0:
        return "", 0
    params = {key: value for key, value in (("attempt", attempt), ("tail", tail)) if value is not None}
    response = connection.response("GET", f"/jobs/{job_id}/logs", params=params)
    return response.text, int(response.headers.get("X-Attempt", attempt or 0))


def follow_logs(
    connection: Connection, job_id: int, attempt: int | None, tail: int | None, interval: float = 1.0
) -> Iterator[str]:
    """The attempt's output (the latest attempt's by default) as it grows, piece by piece, until the job ends."""
    text, shown_attempt = read_logs(connection, job_id, attempt, tail)
    yield text
    printed = text
    ended_at_last_read = False
    while True:
        job = connection.call("GET", f"/jobs/{job_id}")
        if attempt is None and job["attempts"] > shown_attempt:  # started, or handed back and started again
            if shown_attempt > 0:
                yield new_part(printed, read_logs(connection, job_id, shown_attempt, None)[0])
                yield f"--- attempt {job['attempts']}\n"
            shown_attempt = job["attempts"]
            printed = ""
        text, _ = read_logs(connection, job_id, shown_attempt, None)
        yield new_part(printed, text)
        # the training process records its end, then its executor copies its last output: done once a
        # read made an interval after the end was seen brings nothing new
        if ended_at_last_read and text == printed:
            return
        ended_at_last_read = job["status"] in FINISHED
        printed = text
        time.sleep(interval)
