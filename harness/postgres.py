"""A throwaway PostgreSQL server for the tests: its own data folder, loopback only, stopped at the end.

The data folder is in memory (/dev/shm) where there is room: each test's database is a copy of a migrated
template, which there is several times faster, with the file-copy strategy (on disk that strategy is slower
than the default).

Uses Debian's `postgresql` package (.ci/run installs it). The server runs as the `postgres` user
when the tests run as root, since PostgreSQL refuses to run as root.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (or run .ci/run)")
    return Path(found[-1])


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


# In memory when /dev/shm has this much room (180 test databases took 2.2 GB; a run's two servers hold about that)
MEMORY_NEEDED = 6 * 1024**3


def _data_parent() -> str | None:
    """Where the data folder goes: /dev/shm (memory) when it has room, else the usual temporary folder."""
    try:
        roomy = shutil.disk_usage("/dev/shm").free >= MEMORY_NEEDED and os.access("/dev/shm", os.W_OK)
    except OSError:
        return None
    return "/dev/shm" if roomy else None


@dataclass
class PostgresServer:
    base: Path
    port: int
    counter: int = 0
    in_memory: bool = False

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def new_database_url(self, template: str | None = None) -> str:
        """A fresh database on the server, for one test: empty, or a copy of the database `template` names (which
        nobody may be connected to)."""
        self.counter += 1
        name = f"test_{os.getpid()}_{self.counter}"
        # in memory, copying the files beats logging every page of the copy (WAL_LOG, the default); on disk not
        strategy = " STRATEGY FILE_COPY" if self.in_memory else ""
        copied = f' TEMPLATE "{template}"{strategy}' if template else ""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copied}')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def restart(self) -> None:
        """Drop every connection and start again on the same port (pg_ctl keeps the options)."""
        # -l as at start: without it the new server would write to (and hold open) our captured pipes
        subprocess.run(_as_postgres([str(_bindir() / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate",
                                     "-l", str(self.base / "log"), "-w", "restart"]), check=True,
                       capture_output=True, timeout=60)  # fmt: skip

    def stop(self) -> None:
        subprocess.run(_as_postgres([str(_bindir() / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate",
                                     "stop"]), check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(self.base, ignore_errors=True)


def start_postgres(port: int, on_disk: bool = False) -> PostgresServer:
    """A server on `port`; its data in memory when there is room, unless `on_disk` (a benchmark's)."""
    bindir = _bindir()
    parent = None if on_disk else _data_parent()
    base = Path(tempfile.mkdtemp(prefix="cifar-jobs-pg-", dir=parent))
    base.chmod(0o755)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
    data = base / "data"
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                 "-E", "UTF8", "--locale=C"]), check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"),
                                 "-w", "start"]), check=True, capture_output=True)  # fmt: skip
    return PostgresServer(base, port, in_memory=parent is not None)
