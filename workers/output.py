"""A training process's output file, read back for the job's logs: the newest part, only when it grew."""

import os
from pathlib import Path

from store.logs import MAX_LOG_CHARS


class JobOutput:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._copied_size = -1

    def read_if_changed(self) -> tuple[str, bool] | None:
        """(the newest MAX_LOG_CHARS of text, whether older output was left out), or None when
        nothing was written since the last read."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return None
        if size == self._copied_size:
            return None
        limit = MAX_LOG_CHARS * 4  # UTF-8: at most 4 bytes a character
        with self.path.open("rb") as file:
            if size > limit:
                file.seek(size - limit)
            data = file.read(limit)
        self._copied_size = size
        return data.decode("utf-8", errors="replace")[-MAX_LOG_CHARS:], size > limit

    def forget(self) -> None:
        self._copied_size = -1

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
