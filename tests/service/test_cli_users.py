"""`cifar-jobs login`, `whoami`, `logout` and `admin add-user`, run as a person runs them against a real server."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import running_service

CLI = [sys.executable, "-m", "cli"]


def test_an_admin_adds_a_user_who_logs_in_with_a_file_only_they_can_read(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    with running_service(tmp_path, data_dir, database_url, {"API_KEY": "bootstrap"}) as service:
        config = tmp_path / "config"
        base = {k: v for k, v in os.environ.items() if k != "API_KEY"}
        user_env = {**base, "CIFAR_JOBS_URL": service.url, "CIFAR_JOBS_CONFIG_DIR": str(config)}
        admin_env = {**user_env, "API_KEY": "bootstrap"}

        def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)

        assert "CIFAR_JOBS_CONFIG_DIR" in run(user_env, "--help").stdout  # where `login` keeps the token
        added = run(admin_env, "admin", "add-user", "mia", "--role", "member")
        assert added.returncode == 0, added.stderr
        token = added.stdout.split("token ", 1)[1].split()[0]
        assert token.startswith("cjt_")
        refused = run(user_env, "whoami")
        assert refused.returncode == 1 and "401" in refused.stderr
        wrong = run(user_env, "login", "--token", "cjt_not-a-token")
        assert wrong.returncode == 1 and not (config / "token").exists()
        logged_in = run(user_env, "login", "--token", token)
        assert logged_in.returncode == 0 and "signed in as mia (member)" in logged_in.stdout
        assert stat.S_IMODE((config / "token").stat().st_mode) == 0o600
        assert run(user_env, "whoami").stdout.strip() == "mia (member)"
        submitted = run(user_env, "submit", '{"model": "numpy_mlp", "max_steps": 5}')
        assert submitted.returncode == 0, submitted.stderr
        audit = run(admin_env, "admin", "audit")
        assert "mia job.create job 1" in audit.stdout and "api-key user.create user 1" in audit.stdout
        assert run(user_env, "admin", "audit").returncode == 1  # a member: 403
        disabled = run(admin_env, "admin", "user", "1", "--disable")
        assert disabled.returncode == 0 and disabled.stdout.strip() == "user 1: mia (member, disabled)", disabled
        assert run(user_env, "whoami").returncode == 1  # her token is refused
        assert run(admin_env, "admin", "user", "1", "--enable", "--role", "viewer").stdout.strip() == (
            "user 1: mia (viewer, enabled)"
        )
        assert run(user_env, "whoami").stdout.strip() == "mia (viewer)"
        issued = run(admin_env, "admin", "token", "1", "--label", "spare", "--days", "7")
        assert issued.returncode == 0 and "token 2 of user 1, until " in issued.stdout, issued
        spare = issued.stdout.split(": ", 1)[1].split()[0]
        assert run({**user_env, "API_KEY": spare}, "whoami").stdout.strip() == "mia (viewer)"
        assert run(admin_env, "admin", "revoke", "1", "2").stdout.strip() == "token 2 of user 1 revoked"
        assert run({**user_env, "API_KEY": spare}, "whoami").returncode == 1
        reset = run(admin_env, "admin", "reset-token", "1", "--label", "lost laptop")
        assert reset.returncode == 0 and reset.stdout.strip().endswith("(shown once); 1 revoked"), reset
        assert run(user_env, "whoami").returncode == 1  # the token she logged in with is revoked
        fresh = reset.stdout.split(": ", 1)[1].split()[0]
        assert run({**user_env, "API_KEY": fresh}, "whoami").stdout.strip() == "mia (viewer)"
        listed = run({**admin_env, "COLUMNS": "160"}, "admin", "users")
        assert listed.returncode == 0 and "mia" in listed.stdout and "viewer" in listed.stdout, listed
        leo = run(admin_env, "admin", "add-user", "leo").stdout.split()[1].rstrip(":")
        kept = subprocess.run([*CLI, "admin", "remove", leo], env=admin_env, input="n\n", capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert kept.returncode == 1 and f"Remove user {leo} (leo)?" in kept.stdout, kept
        removed = run(admin_env, "admin", "remove", leo, "--yes")
        assert removed.stdout.strip() == f"user {leo} removed: their runs stay, owned by leo (removed #{leo})", removed
        listed = run({**admin_env, "COLUMNS": "160"}, "admin", "users")
        assert "removed" in listed.stdout and f"leo (removed #{leo})" in listed.stdout, listed.stdout
        nothing = run(admin_env, "admin", "user", "1")
        assert nothing.returncode == 1 and "nothing to change" in nothing.stderr
        assert run(user_env, "logout").returncode == 0 and not (config / "token").exists()
        assert run(user_env, "whoami").returncode == 1
        # behind a reverse proxy on this machine (uvicorn trusts FORWARDED_ALLOW_IPS, 127.0.0.1 by default), the
        # audit log names the client the proxy says it forwards for, not the proxy (issue 46)
        with httpx.Client(base_url=service.url, headers={"Authorization": "Bearer bootstrap"}) as proxied:
            made = proxied.post("/users", json={"name": "via-proxy"}, headers={"X-Forwarded-For": "203.0.113.7"})
            assert made.status_code == 201, made.text
            entry = proxied.get("/audit", params={"limit": 1}).json()["data"][0]
        assert (entry["action"], entry["client"]) == ("user.create", "203.0.113.7")
