"""`make lint`'s check of the store's two rules, which ruff cannot say:

1. The unit of work owns the transaction: no code of the service commits, rolls back or begins one itself, but
   `store/unit_of_work.py` (and `store/migrate.py`, which runs Alembic's migrations on their own connection).
2. Rows are read and written in store/: outside it (and migrations/) no session is asked to run a query, get,
   add, delete or flush a row (ruff's TID251 bans building a query there; this catches the session's own calls).

    .venv/bin/python -m harness.store_rules      # prints each breach as path:line: what; exits 1 when any
"""

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ("app", "workers", "store", "models", "specs", "sweeps", "webhooks", "supervision", "cli", "migrations")
OWNS_TRANSACTIONS = {Path("store/unit_of_work.py"), Path("store/migrate.py")}
TRANSACTION_CALLS = {"commit", "rollback", "begin", "begin_nested"}
ROW_CALLS = {"execute", "scalar", "scalars", "get", "add", "add_all", "delete", "merge", "query", "flush", "refresh"}
QUERIES_LIVE_IN = ("store", "migrations")


def _receiver(call: ast.Call) -> tuple[str, str] | None:
    """(the name a method is called on, the method) for `name.method(...)`."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id, func.attr
    return None


def breaches(path: Path) -> Iterator[str]:
    relative = path.relative_to(ROOT)
    in_store = relative.parts[0] in QUERIES_LIVE_IN
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method, called_on = node.func.attr, _receiver(node)
        if method in TRANSACTION_CALLS and relative not in OWNS_TRANSACTIONS:
            yield f"{relative}:{node.lineno}: .{method}() outside the unit of work: use store.unit_of_work"
        elif not in_store and called_on is not None and called_on[0].endswith("session") and method in ROW_CALLS:
            yield f"{relative}:{node.lineno}: {called_on[0]}.{method}() outside store/: call a store function"


def main() -> int:
    found = [line for package in SERVICE for path in sorted((ROOT / package).rglob("*.py")) for line in breaches(path)]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
