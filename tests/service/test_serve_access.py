"""`make serve` without a key, as a person starts it: a real process, listening on loopback only."""

import os
import subprocess
import sys
from pathlib import Path

from harness.net import free_port, wait_until_up
from tests.conftest import ROOT, stop_process


def test_serve_without_a_key_listens_on_loopback_only_and_says_so(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": database_url, "HOST": "0.0.0.0",
           "PORT": str(port), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    env.pop("API_KEY", None)
    log_path = tmp_path / "serve.log"
    with log_path.open("ab") as log:
        serve = subprocess.Popen([sys.executable, "-m", "app.serve"], cwd=ROOT, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}", serve)
        listening = {conn.split()[1] for conn in Path("/proc/net/tcp").read_text().splitlines()[1:]
                     if conn.split()[3] == "0A"}  # fmt: skip
        assert f"0100007F:{port:04X}" in listening  # 127.0.0.1
        assert f"00000000:{port:04X}" not in listening  # not 0.0.0.0
        assert "API_KEY is not set: listening on 127.0.0.1 only" in log_path.read_text()
    finally:
        stop_process(serve)
