"""Users across API processes: a token revoked through one process is refused by another within a second (each
process trusts a token it looked up for PRINCIPAL_CACHE_SECONDS), and no process logs a token."""

import time
from pathlib import Path

import httpx
import pytest

from harness.net import free_port, wait_until_up
from tests.conftest import running_service


@pytest.mark.postgresql
def test_a_token_revoked_through_one_api_process_is_refused_by_another(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    with running_service(tmp_path, data_dir, database_url, {"API_KEY": "bootstrap"}) as first:
        port = free_port()
        second_url = f"http://127.0.0.1:{port}"
        second = first.start_process("api-2", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port))
        wait_until_up(second_url, second)
        admin = {"Authorization": "Bearer bootstrap"}
        with httpx.Client(base_url=first.url, timeout=10) as one, httpx.Client(base_url=second_url, timeout=10) as two:
            token = one.post("/users", json={"name": "mia"}, headers=admin).json()["token"]
            mia = {"Authorization": f"Bearer {token}"}
            in_use_until = time.monotonic() + 2.5  # in steady use past PRINCIPAL_CACHE_SECONDS: looked up again
            while time.monotonic() < in_use_until:  # beside the requests (refresh-ahead), and still taken
                assert two.get("/jobs", headers=mia).status_code == 200
                time.sleep(0.05)
            token_id = one.get("/users/me/tokens", headers=mia).json()["data"][0]["id"]
            assert one.delete(f"/users/me/tokens/{token_id}", headers=mia).status_code == 204
            revoked_at = time.monotonic()
            assert one.get("/jobs", headers=mia).status_code == 401  # the process that revoked it: at once
            while two.get("/jobs", headers=mia).status_code == 200:
                assert time.monotonic() - revoked_at < 1.5, "the second process still takes the revoked token"
                time.sleep(0.05)
            assert two.get("/jobs", headers=mia).status_code == 401
    for log in (first.log_dir / "api.log", first.log_dir / "api-2.log"):
        assert token not in log.read_text()
