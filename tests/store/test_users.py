"""Several people on one service, through HTTP: users and tokens, who may see and change what (role x action x
owner x visibility), quotas and the audit log."""

import csv
import io
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import export
from app.main import create_app
from app.settings import ApiSettings
from app.sweeps.driver_process import SweepDriver
from harness.waiting import wait_until
from models.kinds.common import SPEC_VERSION
from store.attempts import claim_next
from store.executors import register_executor
from store.tables import Token
from store.unit_of_work import unit_of_work
from tests.conftest import local_client, store_succeeded_job

BOOTSTRAP = "bootstrap-key"
JOB = {"model": "numpy_mlp", "max_steps": 5}


class People:
    """An API_KEY service with an admin, two members and a viewer, each calling with their own token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.tokens = {"key": BOOTSTRAP}
        for name, role in (("ada", "admin"), ("mia", "member"), ("max", "member"), ("vic", "viewer")):
            created = self.call("key", "POST", "/users", json={"name": name, "role": role})
            assert created.status_code == 201, created.text
            self.tokens[name] = created.json()["token"]

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, **kwargs)

    def job(self, who: str, **spec: Any) -> int:
        answer = self.call(who, "POST", "/jobs", json={**JOB, **spec})
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])


def service(tmp_path: Path, database_url: str, **settings: Any) -> TestClient:
    app = create_app(ApiSettings(data_dir=tmp_path, database_url=database_url, api_key=BOOTSTRAP, **settings))
    return local_client(app)


@pytest.fixture(params=["all", "own"])
def people(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Iterator[People]:
    with service(tmp_path, database_url, visibility=request.param) as client:
        yield People(client)


def test_who_may_see_and_change_what(people: People) -> None:
    own = people.client.app.state.settings.visibility == "own"  # type: ignore[attr-defined]
    mias = people.job("mia", name="mia's run")
    maxs = people.job("max")
    hidden = 404 if own else None  # someone else's job, to a member or viewer, under VISIBILITY=own

    def status(who: str, method: str, path: str, **kwargs: Any) -> int:
        return int(people.call(who, method, path, **kwargs).status_code)

    # reading mia's job, its curve, its log
    for path in (f"/jobs/{mias}", f"/jobs/{mias}/metrics", f"/jobs/{mias}/logs"):
        assert [status(who, "GET", path) for who in ("ada", "mia", "max", "vic")] == [200, 200, hidden or 200,
                                                                                     hidden or 200], path  # fmt: skip
    listed = {who: {job["id"] for job in people.call(who, "GET", "/jobs").json()["data"]} for who in ("ada", "max")}
    assert listed["ada"] == {mias, maxs} and listed["max"] == ({maxs} if own else {mias, maxs})
    assert {job["id"] for job in people.call("mia", "GET", "/jobs?mine=true").json()["data"]} == {mias}
    assert people.call("ada", "GET", f"/jobs/{mias}").json()["owner"] == "mia"

    # changing it: its owner and admins; another member 403 (or 404 when hidden); a viewer never
    patch = {"json": {"notes": "checked"}}
    assert status("max", "PATCH", f"/jobs/{mias}", **patch) == (hidden or 403)
    assert status("vic", "PATCH", f"/jobs/{mias}", **patch) == 403
    assert status("max", "POST", f"/jobs/{mias}/cancel") == (hidden or 403)
    refused = people.call("max", "POST", f"/jobs/{maxs}/cancel")  # his own: fine
    assert refused.status_code == 200
    if not own:
        message = people.call("max", "POST", f"/jobs/{mias}/cancel").json()["message"]
        assert message == f"job {mias} is not yours: only its owner or an admin may change it"
    assert status("mia", "PATCH", f"/jobs/{mias}", **patch) == 200
    assert status("ada", "POST", f"/jobs/{mias}/cancel") == 200  # an admin, anyone's
    assert status("max", "DELETE", f"/jobs/{mias}") == (hidden or 403)
    assert status("vic", "DELETE", f"/jobs/{maxs}") == 403
    assert status("mia", "DELETE", f"/jobs/{mias}") == 204

    # creating: members and admins; viewers read only; high priorities are admins'
    viewer = people.call("vic", "POST", "/jobs", json=JOB)
    assert viewer.status_code == 403 and "viewers read only" in viewer.json()["message"]
    assert status("vic", "POST", "/sweeps", json={"base": JOB, "search": {"seed": {"choices": [1, 2]}}}) == 403
    high = people.call("mia", "POST", "/jobs", json={**JOB, "priority": 500})
    assert high.status_code == 403 and "priority 500: above 100 is for admins" in high.json()["message"]
    assert people.call("ada", "POST", "/jobs", json={**JOB, "priority": 500}).status_code == 201
    # init_from_job reads only what the caller may read
    seeded = people.call("max", "POST", "/jobs", json={**JOB, "init_from_job": maxs})
    assert seeded.status_code == 422  # his own job has no model: found, but refused for that
    assert ("not found" in seeded.json()["message"]) is False
    other = people.job("mia")
    stranger = people.call("max", "POST", "/jobs", json={**JOB, "init_from_job": other})
    assert stranger.status_code == 422 and ("not found" in stranger.json()["message"]) == own

    # sweeps: the same rules
    sweep = people.call("mia", "POST", "/sweeps", json={"base": JOB, "search": {"seed": {"choices": [1, 2]}}}).json()
    assert status("max", "GET", f"/sweeps/{sweep['id']}") == (hidden or 200)
    assert status("max", "POST", f"/sweeps/{sweep['id']}/cancel") == (hidden or 403)
    assert len(people.call("max", "GET", "/sweeps").json()["data"]) == (0 if own else 1)
    assert status("mia", "POST", f"/sweeps/{sweep['id']}/cancel") == 200

    # admins' own routes
    for who, expected in (("ada", 200), ("key", 200), ("mia", 403), ("vic", 403)):
        assert status(who, "GET", "/audit") == expected and status(who, "GET", "/webhooks") == expected, who
        assert status(who, "GET", "/users") == expected, who
    assert status("mia", "POST", "/users", json={"name": "eve", "role": "admin"}) == 403


def test_tokens_are_stored_and_logged_only_as_hashes(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with service(tmp_path, database_url) as client:
        people = People(client)
        made = people.call("mia", "POST", "/users/me/tokens", json={"label": "laptop"})
        assert made.status_code == 201 and made.json()["token"].startswith("cjt_")
        people.tokens["mia2"] = made.json()["token"]
        listed = people.call("mia", "GET", "/users/me/tokens").json()["data"]
        assert [t["label"] for t in listed] == ["first token", "laptop"] and all("token" not in t for t in listed)
        assert people.call("mia2", "GET", "/users/me").json() == {"id": 2, "name": "mia", "role": "member"}
        people.call("mia2", "GET", "/jobs")
        assert client.get("/jobs", headers={"Authorization": "Bearer cjt_wrong"}).status_code == 401
    tokens = [token for who, token in people.tokens.items() if who != "key"]
    with sessions() as session:
        stored = session.scalars(select(Token.sha256)).all()
        assert len(stored) == 5 and not set(stored) & set(tokens)
        everything = "\n".join(str(row) for table in ("users", "tokens", "audit_log", "jobs")
                               for row in session.execute(text(f"SELECT * FROM {table}")))  # fmt: skip
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for token in tokens:
        assert token not in everything and token not in logged


def test_a_revoked_token_stops_working_and_the_audit_log_says_who_did_what(tmp_path: Path, database_url: str) -> None:
    with service(tmp_path, database_url, principal_cache_seconds=0) as client:
        people = People(client)
        made = people.call("mia", "POST", "/users/me/tokens", json={"label": "ci"}).json()
        people.tokens["ci"] = made["token"]
        job = people.job("ci")
        assert people.call("max", "DELETE", f"/users/me/tokens/{made['id']}").status_code == 404  # not his
        assert people.call("mia", "DELETE", f"/users/me/tokens/{made['id']}").status_code == 204
        refused = people.call("ci", "GET", "/jobs")
        assert refused.status_code == 401 and "revoked" in refused.json()["message"]
        assert people.call("mia", "GET", "/users/me/tokens").json()["data"][1]["revoked_at"] is not None
        people.call("mia", "POST", f"/jobs/{job}/cancel")
        entries = people.call("ada", "GET", "/audit").json()
        seen = [(e["actor"], e["action"], e["target"]) for e in reversed(entries["data"])]
        assert seen == [
            ("api-key", "user.create", "user 1"),
            ("api-key", "user.create", "user 2"),
            ("api-key", "user.create", "user 3"),
            ("api-key", "user.create", "user 4"),
            ("mia", "token.create", f"token {made['id']}"),
            ("mia", "job.create", f"job {job}"),
            ("mia", "token.revoke", f"token {made['id']}"),
            ("mia", "job.cancel", f"job {job}"),
        ]
        assert entries["count"] == 8 and entries["data"][0]["client"] == "127.0.0.1"


def test_each_quota_is_a_429_that_names_it(tmp_path: Path, database_url: str) -> None:
    settings = {"quota_queued_jobs": 2, "quota_submissions_per_minute": 3}
    with service(tmp_path, database_url, **settings) as client:
        people = People(client)
        people.job("mia")
        people.job("mia")
        queued = people.call("mia", "POST", "/jobs", json=JOB)
        assert queued.status_code == 429
        assert queued.json()["message"] == (
            "quota queued_jobs: 2 of 2 queued; one frees when one of your queued jobs starts or is cancelled"
        )
        for job in people.call("mia", "GET", "/jobs").json()["data"]:
            people.call("mia", "POST", f"/jobs/{job['id']}/cancel")
        people.job("mia")  # the third this minute
        rate = people.call("mia", "POST", "/jobs", json=JOB)
        assert rate.status_code == 429 and rate.json()["message"].startswith(
            "quota submissions_per_minute: 3 of 3 in the last 60 s; again in "
        )
        assert 1 <= int(rate.headers["Retry-After"]) <= 61
        assert people.call("ada", "POST", "/jobs", json=JOB).status_code == 201  # admins have no quotas
        user_id = people.call("max", "GET", "/users/me").json()["id"]
        changed = people.call("ada", "PUT", f"/users/{user_id}/quotas", json={"cpu_hours": 0, "gpu_hours": 0})
        assert changed.status_code == 200 and changed.json()["quotas"] == {"cpu_hours": 0, "gpu_hours": 0}
        cpu = people.call("max", "POST", "/jobs", json=JOB)
        assert cpu.status_code == 429 and cpu.json()["message"].startswith(
            "quota cpu_hours: 0.0 of 0 CPU-hours used in the last 7 days"
        )
        people.call("ada", "PUT", f"/users/{user_id}/quotas", json={"gpu_hours": 0})
        assert people.call("max", "POST", "/jobs", json=JOB).status_code == 201  # a CPU job: no GPU-hours needed
        gpu = people.call("max", "POST", "/jobs", json={**JOB, "gpus": 1})
        assert gpu.status_code == 429 and "quota gpu_hours: 0.0 of 0 GPU-hours" in gpu.json()["message"]
        usage = people.call("max", "GET", "/users/me/usage").json()
        assert usage["queued_jobs"] == {"used": 1, "quota": 2} and usage["gpu_hours"]["quota"] == 0
        assert usage["submissions_per_minute"] == {"used": 1, "quota": 3}
        assert usage["running_jobs"] == {"used": 0, "quota": 4}


def test_submissions_at_once_cannot_both_take_the_last_queued_place(tmp_path: Path, database_url: str) -> None:
    with service(tmp_path, database_url, quota_queued_jobs=3) as client:
        people = People(client)
        people.job("mia")
        barrier = threading.Barrier(6)

        def submit(_: int) -> int:
            barrier.wait()
            return int(people.call("mia", "POST", "/jobs", json=JOB).status_code)

        with ThreadPoolExecutor(6) as pool:
            answers = sorted(pool.map(submit, range(6)))
        assert answers == [201, 201, 429, 429, 429, 429]
        assert people.call("mia", "GET", "/users/me/usage").json()["queued_jobs"] == {"used": 3, "quota": 3}


def test_a_sweeps_trials_wait_for_room_in_their_owners_queued_quota(tmp_path: Path, database_url: str) -> None:
    """The sweep driver's passes, run here one by one, apply the API's quotas to the trials they create."""
    settings = {"quota_queued_jobs": 2}
    with service(tmp_path, database_url, **settings) as client:
        people = People(client)
        sweep = {"base": JOB, "search": {"learning_rate": {"log_uniform": [1e-3, 1e-1]}}, "method": "random",
                 "trials": 6, "max_concurrent": 6}  # fmt: skip
        made = people.call("mia", "POST", "/sweeps", json=sweep)
        assert made.status_code == 201, made.text
        sweep_id = made.json()["id"]
        app_state = client.app.state  # type: ignore[attr-defined]
        driver = SweepDriver(app_state.sessions, app_state.settings, "test")

        def trial_jobs() -> list[int]:
            trials = people.call("mia", "GET", f"/sweeps/{sweep_id}").json()["leaderboard"]
            return [trial["job_id"] for trial in trials if trial["job_id"] is not None]

        for _ in range(5):
            assert driver.run_once()
        assert len(trial_jobs()) == 2  # her quota is full: no third trial however many passes
        assert people.call("mia", "POST", "/jobs", json=JOB).status_code == 429
        people.call("mia", "POST", f"/jobs/{trial_jobs()[0]}/cancel")
        assert driver.run_once() and len(trial_jobs()) == 3  # a third trial once one place freed


def test_without_a_key_the_first_admin_takes_over_the_jobs_and_tokens_are_needed_from_then(
    tmp_path: Path, database_url: str
) -> None:
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))) as client:
        earlier = client.post("/jobs", json=JOB).json()["id"]  # the single-user mode, as before
        assert client.get("/users/me").json() == {"id": None, "name": "local", "role": "admin"}
        admin = client.post("/users", json={"name": "ada", "role": "admin"})
        assert admin.status_code == 201
        refused = client.get("/jobs")
        assert refused.status_code == 401
        with_token = client.get(f"/jobs/{earlier}", headers={"Authorization": f"Bearer {admin.json()['token']}"})
        assert with_token.status_code == 200 and with_token.json()["owner"] == "ada"
        assert client.post("/users", json={"name": "ada"}, headers={
            "Authorization": f"Bearer {admin.json()['token']}"}).status_code == 409  # fmt: skip


@pytest.mark.parametrize("visibility", ["all", "own"])
def test_the_report_reads_and_reuses_only_the_runs_the_caller_may_see(
    tmp_path: Path, database_url: str, visibility: str
) -> None:
    with service(tmp_path, database_url, visibility=visibility, quota_queued_jobs=20) as client:
        people = People(client)
        mias = people.call("mia", "POST", "/reports/assignment", json={"convnet_max_steps": 5, "resnet18_max_steps": 5})
        assert mias.status_code == 200, mias.text
        mia_jobs = {run["figure"]: run["job_id"] for run in mias.json()["runs"]}
        seen_by_max = people.call("max", "GET", "/reports/assignment", params={"format": "md"}).text
        figure = people.call("max", "GET", "/reports/assignment/figures/figure-2.png")
        maxs = people.call("max", "POST", "/reports/assignment", json={"convnet_max_steps": 5, "resnet18_max_steps": 5})
        assert maxs.status_code == 200, maxs.text
        max_jobs = {run["figure"]: run["job_id"] for run in maxs.json()["runs"]}
        if visibility == "own":  # mia's runs are hidden from max: he sees none, and gets his own
            assert seen_by_max.count("Not submitted yet") == len(mia_jobs)
            assert figure.status_code == 422 and "has no job yet" in figure.json()["message"]
            assert not set(max_jobs.values()) & set(mia_jobs.values())
            assert not any(run["reused"] for run in maxs.json()["runs"])
        else:  # a shared report: max sees mia's runs and reuses them
            assert "Not submitted yet" not in seen_by_max
            assert figure.status_code == 200 and figure.headers["content-type"] == "image/png"
            assert max_jobs == mia_jobs and all(run["reused"] for run in maxs.json()["runs"])


def test_admins_disable_users_change_roles_and_manage_their_tokens(tmp_path: Path, database_url: str) -> None:
    """Issue 40, finding 8: admins could not disable a user, change a role or revoke another user's tokens, and
    tokens never expired."""
    with service(tmp_path, database_url) as client:
        people = People(client)
        mia = people.call("ada", "GET", "/users").json()["data"][1]["id"]

        def mias(token: str) -> int:
            return int(client.get("/users/me", headers={"Authorization": f"Bearer {token}"}).status_code)

        assert people.call("max", "PATCH", f"/users/{mia}", json={"disabled": True}).status_code == 403
        disabled = people.call("ada", "PATCH", f"/users/{mia}", json={"disabled": True})
        assert disabled.status_code == 200 and disabled.json()["disabled"] is True
        assert mias(people.tokens["mia"]) == 401  # at once
        assert people.call("ada", "PATCH", f"/users/{mia}", json={"disabled": False}).status_code == 200
        assert mias(people.tokens["mia"]) == 200
        viewer = people.call("ada", "PATCH", f"/users/{mia}", json={"role": "viewer"})
        assert viewer.status_code == 200 and viewer.json()["role"] == "viewer"
        assert people.call("mia", "POST", "/jobs", json=JOB).status_code == 403
        ada = people.call("ada", "GET", "/users/me").json()["id"]
        refused = people.call("ada", "PATCH", f"/users/{ada}", json={"disabled": True})
        assert refused.status_code == 422 and "yourself" in refused.json()["message"]
        issued = people.call("ada", "POST", f"/users/{mia}/tokens", json={"label": "lost the first"})
        assert issued.status_code == 201 and mias(issued.json()["token"]) == 200
        listed = people.call("ada", "GET", f"/users/{mia}/tokens").json()["data"]
        assert [token["label"] for token in listed] == ["first token", "lost the first"]
        gone = people.call("ada", "DELETE", f"/users/{mia}/tokens/{issued.json()['id']}")
        assert gone.status_code == 204 and mias(issued.json()["token"]) == 401
        assert mias(people.tokens["mia"]) == 200  # her other token still works
        elsewhere = people.call("ada", "DELETE", f"/users/{mia}/tokens/1")  # ada's token 1, not mia's
        assert elsewhere.status_code == 404
        short = people.call("mia", "POST", "/users/me/tokens", json={"label": "a day", "expires_in_days": 1e-5})
        assert short.status_code == 201 and short.json()["expires_at"] is not None
        assert mias(short.json()["token"]) == 200
        wait_until(lambda: mias(short.json()["token"]) == 401, 10, "the token expires (0.86 s)")
        audit = [entry["action"] for entry in people.call("ada", "GET", "/audit").json()["data"]]
        assert audit.count("user.update") == 3 and "token.revoke" in audit


def test_removing_a_user_keeps_their_runs_under_a_marker_and_frees_their_name(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session]
) -> None:
    """Issue 45: an admin removes a student who left; their runs stay (owned by `mia (removed #N)`), what of
    theirs was queued or running is cancelled, their tokens are refused, and the name can be given again."""
    with service(tmp_path, database_url) as client:
        people = People(client)
        mia = people.call("ada", "GET", "/users").json()["data"][1]["id"]
        running, queued = people.job("mia", seed=1), people.job("mia", seed=2)
        claimed = claim_next(sessions, "w")
        assert claimed is not None and claimed.job_id == running
        sweep = people.call("mia", "POST", "/sweeps", json={"base": JOB, "search": {"seed": {"choices": [1, 2]}}})
        assert sweep.status_code == 201, sweep.text
        assert people.call("max", "DELETE", f"/users/{mia}").status_code == 403
        ada = people.call("ada", "GET", "/users/me").json()["id"]
        for own in (str(ada), f"+{ada}", f"0{ada}", f"{ada}.0", f" {ada}"):  # the third audit's spellings of an id
            refused = people.call("ada", "DELETE", f"/users/{own}")
            assert refused.status_code == 422 and "yourself" in refused.json()["message"], own
        assert people.call("ada", "GET", "/users/me").status_code == 200
        removed = people.call("ada", "DELETE", f"/users/{mia}")
        assert removed.status_code == 200, removed.text
        marker = f"mia (removed #{mia})"
        assert removed.json()["name"] == marker and removed.json()["removed"] and removed.json()["disabled"]
        assert people.call("mia", "GET", "/users/me").status_code == 401
        assert people.call("ada", "GET", f"/jobs/{queued}").json()["status"] == "cancelled"
        assert people.call("ada", "GET", f"/jobs/{running}").json()["cancel_requested"] is True
        assert people.call("ada", "GET", f"/sweeps/{sweep.json()['id']}").json()["status"] == "cancelled"
        theirs = people.call("ada", "GET", "/jobs", params={"owner": marker}).json()["data"]
        assert sorted(job["id"] for job in theirs) == sorted([running, queued])
        assert {job["owner"] for job in theirs} == {marker}
        for method, path, body in (("DELETE", f"/users/{mia}", None), ("PATCH", f"/users/{mia}", {"role": "viewer"}),
                                   ("POST", f"/users/{mia}/tokens", {"label": "back"}),
                                   ("PUT", f"/users/{mia}/quotas", {"running_jobs": 1})):  # fmt: skip
            again = people.call("ada", method, path, json=body)
            assert again.status_code == 409 and "was removed" in again.json()["message"], (method, path)
        readded = people.call("ada", "POST", "/users", json={"name": "mia", "role": "member"})
        assert readded.status_code == 201 and readded.json()["id"] != mia
        listed = {user["id"]: user for user in people.call("ada", "GET", "/users").json()["data"]}
        assert listed[mia]["removed"] and not listed[readded.json()["id"]]["removed"]
        audit = people.call("ada", "GET", "/audit").json()["data"]
        assert any(e["action"] == "user.remove" and e["target"] == f"user {mia}" for e in audit)


# A class's leaderboard: the list by owner, and the runs table as CSV (`GET /jobs.csv`)


def rows(answer: object) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(answer.text)))  # type: ignore[attr-defined]


def test_the_list_and_the_csv_select_by_owner_within_what_the_caller_may_see(people: People) -> None:
    own = people.client.app.state.settings.visibility == "own"  # type: ignore[attr-defined]
    mia = [people.job("mia", name="=cmd|' /C calc'!A0", hidden_units=[8, 4]), people.job("mia", learning_rate=0.01)]
    max_ = people.job("max")
    listed = people.call("ada", "GET", "/jobs", params={"owner": "mia"}).json()
    assert [job["id"] for job in listed["data"]] == mia[::-1] and listed["count"] == 2
    assert people.call("ada", "GET", "/jobs", params={"owner": "nobody"}).json()["count"] == 0
    # a member asking for another's jobs: all of them with VISIBILITY=all, none with VISIBILITY=own
    theirs = people.call("max", "GET", "/jobs", params={"owner": "mia"}).json()["count"]
    assert theirs == (0 if own else 2)
    assert people.call("max", "GET", "/jobs", params={"owner": "max"}).json()["count"] == 1
    for bad in ("", "mia; drop", "a" * 101):
        refused = people.call("ada", "GET", "/jobs", params={"owner": bad})
        assert refused.status_code == 422 and "owner" in refused.json()["message"], bad

    table = people.call("ada", "GET", "/jobs.csv", params={"owner": "mia", "sort": "learning_rate"})
    assert table.status_code == 200, table.text
    assert table.headers["content-type"].startswith("text/csv") and "jobs.csv" in table.headers["content-disposition"]
    read = rows(table)
    assert sorted(int(row["id"]) for row in read) == mia
    first, second = read
    assert first["owner"] == second["owner"] == "mia" and first["model"] == "numpy_mlp"
    assert float(first["learning_rate"]) <= float(second["learning_rate"])
    named = next(row for row in read if int(row["id"]) == mia[0])
    assert named["name"] == "'=cmd|' /C calc'!A0"  # a formula is text in a spreadsheet
    assert json.loads(named["hidden_units"]) == [8, 4]
    everyone = rows(people.call("max", "GET", "/jobs.csv"))
    assert sorted(int(row["id"]) for row in everyone) == ([max_] if own else sorted([*mia, max_]))


def test_the_csv_has_the_final_metrics_and_refuses_past_its_bound(
    people: People, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    done = store_succeeded_job(sessions, 0.42)
    queued = people.job("mia")
    read = rows(people.call("ada", "GET", "/jobs.csv", params={"sort": "-test_accuracy"}))
    assert [int(row["id"]) for row in read][:2] == [done, queued]
    assert float(read[0]["test_accuracy"]) == 0.42 and read[1]["test_accuracy"] == ""  # queued: none yet
    assert read[0]["status"] == "succeeded" and read[1]["status"] == "queued" and read[0]["owner"] == ""
    monkeypatch.setattr(export, "MAX_EXPORTED_JOBS", 1)
    refused = people.call("ada", "GET", "/jobs.csv")
    assert refused.status_code == 413 and "2 jobs selected, over the 1 one CSV holds" in refused.json()["message"]
    assert people.call("ada", "GET", "/jobs.csv", params={"status": "queued"}).status_code == 200


def test_an_admin_backs_up_a_sqlite_database_and_is_told_how_for_postgresql(
    people: People, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    job = people.job("mia")
    assert people.call("mia", "GET", "/backup").status_code == 403  # a member
    answer = people.call("ada", "GET", "/backup")
    if sessions.kw["bind"].dialect.name == "sqlite":
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/vnd.sqlite3"
        copy = tmp_path / "copy.db"
        copy.write_bytes(answer.content)
        with closing(sqlite3.connect(copy)) as database:
            assert database.execute("select id, owner_id from jobs").fetchall() == [(job, 2)]
            assert database.execute("pragma integrity_check").fetchall() == [("ok",)]
        assert not list(tmp_path.glob(".backup-*"))  # the server's copy is gone once sent
    else:
        assert answer.status_code == 409 and "pg_dump" in answer.json()["message"]


def test_a_disabled_users_queued_jobs_wait_saying_why_until_they_are_enabled(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session]
) -> None:
    """Issue 45: disabling a student refuses their tokens and holds their queued jobs (no worker takes them; each
    says why it waits); enabling them lets the jobs run."""
    with service(tmp_path, database_url) as client:
        people = People(client)
        mia = people.call("ada", "GET", "/users").json()["data"][1]["id"]
        job_id = people.call("mia", "POST", "/jobs", json=JOB).json()["id"]
        with unit_of_work(sessions) as session:
            register_executor(session, "w", 0, 8, SPEC_VERSION)
        assert people.call("ada", "PATCH", f"/users/{mia}", json={"disabled": True}).status_code == 200
        shown = people.call("ada", "GET", f"/jobs/{job_id}").json()
        assert shown["status"] == "queued" and shown["waiting_reason"].startswith("its owner is disabled")
        assert claim_next(sessions, "w", 0, 8, SPEC_VERSION) is None
        assert people.call("ada", "PATCH", f"/users/{mia}", json={"disabled": False}).status_code == 200
        assert people.call("ada", "GET", f"/jobs/{job_id}").json()["waiting_reason"] is None
        claimed = claim_next(sessions, "w", 0, 8, SPEC_VERSION)
        assert claimed is not None and claimed.job_id == job_id
