"""Issue 46: several API processes (or hosts) starting at once on an older database migrate it once: a lock (a
file beside a SQLite database, an advisory lock on PostgreSQL) makes one migrate while the others wait, then find
the schema current."""

import subprocess
import sys

import pytest
from sqlalchemy import text

from store.engine import make_engine
from store.migrate import upgrade
from tests.conftest import ROOT

STARTS = """
import sys
from store.engine import make_engine
from store.migrate import upgrade
engine = make_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # every process is ready: all go at once
upgrade(engine)
print("migrated", flush=True)
"""


@pytest.mark.postgresql
def test_processes_starting_at_once_on_an_older_database_migrate_it_once(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine, "0016")  # the schema of the release tests/service/test_upgrade.py starts from
    finally:
        engine.dispose()
    command, pipe = [sys.executable, "-c", STARTS, empty_database_url], subprocess.PIPE
    starts = [subprocess.Popen(command, cwd=ROOT, stdin=pipe, stdout=pipe, stderr=pipe, text=True) for _ in range(3)]
    try:
        for start in starts:
            assert start.stdout is not None and start.stdout.readline() == "ready\n"
        for start in starts:
            assert start.stdin is not None
            start.stdin.write("go\n")
            start.stdin.flush()
        outcomes = [start.communicate(timeout=120) for start in starts]
    finally:
        for start in starts:
            if start.poll() is None:
                start.kill()
                start.wait()
    for start, (out, err) in zip(starts, outcomes, strict=True):
        assert start.returncode == 0 and out == "migrated\n", err[-3000:]
    engine = make_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("select version_num from alembic_version")).scalars().all()
    finally:
        engine.dispose()
    assert versions == [sorted(p.name[:4] for p in (ROOT / "migrations" / "versions").glob("0*.py"))[-1]]
