"""CSV answers: Python's csv writer in chunks, and text cells no spreadsheet runs as formulas."""

import csv
import io
import itertools
from collections.abc import Iterable, Iterator, Sequence

CSV_ROWS_PER_CHUNK = 10_000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The header and rows as CSV text, CSV_ROWS_PER_CHUNK rows a chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, CSV_ROWS_PER_CHUNK)):
        writer.writerows(chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def spreadsheet_safe(text: str) -> str:
    """A text cell no spreadsheet runs: one that starts as a formula would gets a `'` first (OWASP's advice)."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
