"""Permissions declared per route and checked on the parsed id (issue 40, finding 1): every route of the app
declares what it needs, one that declares nothing is refused, and every route of the OpenAPI document answers
an id spelled `+2`, `02`, `0_2`, `2.0`, ` 2` or `%202` as it answers `2` (or with a 422), for every role, under
both visibilities; under VISIBILITY=own nothing of another user's comes back from any route."""

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import insert, update

from app.access.permissions import declarations
from app.main import create_app
from app.settings import ApiSettings
from store.tables import Job, MetricPoint
from tests.conftest import TEST_DATABASE, local_client, store_succeeded_job

BOOTSTRAP = "bootstrap-key"
ROLES = ("ada", "alice", "bob", "vic")  # an admin, the owner, another member, a viewer
SPELLINGS = ("+{}", "0{}", "0_{}", "{}.0", " {}", "%20{}", "%2B{}", "{}%20")
SECRET = "alice-private-7f3e"  # the name of alice's job and sweep: no answer to bob or vic may hold it (own)
# what is no route: the OpenAPI document and the static files (the page's and Swagger UI's), public by nature
NOT_API_ROUTES = {"/openapi.json", "/static/docs", "/web"}
QUERY_ID_ROUTES = ("/predict", "/plots/compare.{image_format}", "/compare.csv")  # a job's id in the query


class Users:
    """An API_KEY service with alice's succeeded job (a real model) and her sweep, and four callers."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.tokens = {"key": BOOTSTRAP}
        self.ids: dict[str, int] = {}
        for name, role in (("ada", "admin"), ("alice", "member"), ("bob", "member"), ("vic", "viewer")):
            created = self.call("key", "POST", "/users", json={"name": name, "role": role})
            assert created.status_code == 201, created.text
            self.tokens[name], self.ids[name] = created.json()["token"], created.json()["id"]

    def call(self, who: str, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        headers = {**(headers or {}), "Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, **kwargs)

    def alices_job(self) -> int:
        sessions = self.client.app.state.sessions  # type: ignore[attr-defined]
        job_id = store_succeeded_job(sessions, 0.5)
        with sessions() as session:
            session.execute(update(Job).where(Job.id == job_id).values(owner_id=self.ids["alice"], name=SECRET))
            session.commit()
        return job_id

    def alices_sweep(self) -> int:
        request = {"name": SECRET, "base": {"model": "numpy_mlp", "max_steps": 5}, "trials": 2, "method": "grid",
                   "search": {"learning_rate": {"choices": [0.01, 0.1]}}}  # fmt: skip
        answer = self.call("alice", "POST", "/sweeps", json=request)
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])


@pytest.fixture(params=["all", "own"])
def users(request: pytest.FixtureRequest, tmp_path: Path, database_url: str, data_dir: Path) -> Iterator[Users]:
    settings = ApiSettings(data_dir=data_dir, database_url=database_url, api_key=BOOTSTRAP, visibility=request.param,
                           quota_submissions_per_minute=100_000, quota_queued_jobs=100_000)  # fmt: skip
    with local_client(create_app(settings)) as client:
        yield Users(client)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_every_route_declares_what_it_needs(tmp_path: Path) -> None:
    app = create_app(ApiSettings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'jobs.db'}"))
    undeclared, others = [], []
    for route in (context.original_route for context in iter_route_contexts(app.routes)):  # included ones too
        if isinstance(route, APIRoute):
            if not declarations(route):
                undeclared.append(f"{sorted(route.methods or ())} {route.path}")
        elif getattr(route, "path", None) not in NOT_API_ROUTES:
            others.append(getattr(route, "path", repr(route)))
    assert undeclared == [] and others == []


def test_a_route_that_declares_nothing_is_refused_to_everyone(tmp_path: Path) -> None:
    app = create_app(ApiSettings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'jobs.db'}"))

    @app.get("/forgotten")
    def forgotten() -> dict[str, str]:
        return {"secret": "out"}

    with local_client(app) as client:  # the single-user mode: the caller is an admin
        answer = client.get("/forgotten")
    assert answer.status_code == 403 and "declares no permission" in answer.json()["message"], answer.text


def _operations(client: TestClient) -> list[tuple[str, str]]:
    """(method, path template) of every operation of the OpenAPI document that names a job or a sweep."""
    document = client.get("/openapi.json").json()
    found = []
    for template, operations in document["paths"].items():
        for method in operations:
            if "{job_id}" in template or "{sweep_id}" in template or template in QUERY_ID_ROUTES:
                found.append((method.upper(), template))
    return found


def _send(users: Users, who: str, method: str, template: str, spelled: str) -> Any:
    path = template.replace("{job_id}", spelled).replace("{sweep_id}", spelled).replace("{image_format}", "svg")
    if template == "/predict":
        return users.call(who, "POST", "/predict", params={"job_id": spelled}, files={"files": ("a.png", png())})
    if template in QUERY_ID_ROUTES:
        return users.call(who, method, path, params={"jobs": spelled})
    if method == "PATCH":
        return users.call(who, method, path, json={"notes": "checked"})
    if path.endswith("/events"):
        return users.call(who, method, path, headers={"Last-Event-ID": "999999"})  # ended: the stream is short
    return users.call(who, method, path)


def _stable(answer: Any) -> Any:
    """What two answers to the same read must share: the status, and a JSON body but for its moving parts."""
    if answer.headers.get("content-type", "").startswith("application/json") and answer.status_code < 300:
        body = answer.json()
        if isinstance(body, dict):
            body.pop("queue", None)
        return answer.status_code, body
    return answer.status_code, None


def test_every_route_answers_an_id_however_it_is_spelled(users: Users) -> None:
    if TEST_DATABASE == "postgresql":  # an id is parsed and checked before any SQL: one database shows it
        pytest.skip("the spellings are walked on SQLite; the checks' queries run on both in the other door tests")
    own = users.client.app.state.settings.visibility == "own"  # type: ignore[attr-defined]
    job, sweep = users.alices_job(), users.alices_sweep()
    mismatches: list[str] = []
    operations = _operations(users.client)
    assert len(operations) >= 20, operations  # every job and sweep route, /predict and the comparisons
    for method, template in operations:
        reads = method == "GET"
        # an admin's and the owner's answers are the same under both visibilities: walked once, under `all`
        for who in ("bob", "vic") if own else ROLES:
            if reads or template == "/predict":
                target: Callable[[], int] = (lambda: sweep) if "{sweep_id}" in template else (lambda: job)
            else:  # a change: a new target for each call, so that each call meets the same state
                target = users.alices_sweep if "{sweep_id}" in template else users.alices_job
            first = target()
            plain = _send(users, who, method, template, str(first))
            if own and who in ("bob", "vic"):
                if plain.status_code < 400 or SECRET in plain.text:
                    mismatches.append(f"{who} {method} {template}: {plain.status_code} (alice's, under own)")
            # every spelling wherever a check refuses (another's change; another's read under own); where the
            # caller may act anyway, two (a sign, a space): those answers differ from the plain one by no check,
            # and a plot drawn for each spelling would take most of the test's time
            refused = who in ("bob", "vic") and (own or not reads)
            for spelling in SPELLINGS if refused else SPELLINGS[:1] + SPELLINGS[4:5]:
                target_id = target()
                answer = _send(users, who, method, template, spelling.format(target_id))
                expected = _stable(plain)
                if not reads:  # a new target: the same answer about another id
                    expected = (plain.status_code, None)
                    got = (answer.status_code, None)
                else:
                    got = _stable(answer)
                if answer.status_code != 422 and got != expected:
                    mismatches.append(f"{who} {method} {template} as {spelling!r}: {got[0]}, plainly {expected[0]}")
                if own and who in ("bob", "vic") and (answer.status_code < 400 or SECRET in answer.text):
                    mismatches.append(f"{who} {method} {template} as {spelling!r}: {answer.status_code} (own)")
    assert mismatches == [], "\n".join(mismatches)


def test_under_own_no_list_or_page_shows_another_users_jobs_or_sweeps(users: Users) -> None:
    if users.client.app.state.settings.visibility != "own":  # type: ignore[attr-defined]
        pytest.skip("VISIBILITY=own only")
    users.alices_job(), users.alices_sweep()
    document = users.client.get("/openapi.json").json()
    leaks = []
    for template, operations in document["paths"].items():
        if "get" not in operations or "{" in template or template in ("/events",):  # /events: a stream, below
            continue
        for who in ("bob", "vic"):
            answer = users.call(who, "GET", template)
            if SECRET in answer.text:
                leaks.append(f"{who} GET {template}")
    assert leaks == []
    assert users.call("alice", "GET", "/jobs").text.count(SECRET) == 1  # the check sees what is there


@pytest.mark.parametrize(
    "search",
    [
        {"priority": {"choices": [1000]}},
        {"gpus": {"choices": [0, 8]}},
        {"cpus": {"uniform": [1, 64]}},
        {"max_attempts": {"choices": [1, 20]}},
        {"preemptible": {"choices": [False]}},  # `false` is for admins
    ],  # fmt: skip
)
def test_a_sweep_cannot_search_how_its_trials_run(users: Users, search: dict[str, Any]) -> None:
    """Finding 2: a member's sweep searching `priority: 1000` made trials at 1000 (POST /jobs with 1000: 403)."""
    request = {"base": {"model": "numpy_mlp", "max_steps": 5}, "trials": 2, "search": search}
    answer = users.call("alice", "POST", "/sweeps", json=request)
    field = next(iter(search))
    assert answer.status_code == 422, answer.text
    assert f"search.{field}: not searchable" in answer.json()["message"] and "base" in answer.json()["message"]
    assert users.call("alice", "GET", "/sweeps").json()["count"] == 0


def test_idempotency_keys_are_each_users_own(users: Users) -> None:
    """Finding 4: bob sending alice's key and spec got alice's job; with another spec, a 422 naming her job."""
    spec, key = {"model": "numpy_mlp", "max_steps": 5}, {"Idempotency-Key": "nightly-run"}
    alices = users.call("alice", "POST", "/jobs", json=spec, headers=key)
    assert alices.status_code == 201, alices.text
    bobs = users.call("bob", "POST", "/jobs", json=spec, headers=key)
    assert bobs.status_code == 201 and bobs.json()["id"] != alices.json()["id"], bobs.text  # his own job
    other = users.call("vic", "POST", "/jobs", json={**spec, "max_steps": 6}, headers=key)
    assert other.status_code == 403  # a viewer creates nothing, whatever the key
    ada = users.call("ada", "POST", "/jobs", json={**spec, "max_steps": 6}, headers=key)
    assert ada.status_code == 201 and ada.json()["id"] not in (alices.json()["id"], bobs.json()["id"]), ada.text
    again = users.call("alice", "POST", "/jobs", json=spec, headers=key)
    assert again.status_code == 200 and again.json()["id"] == alices.json()["id"]  # hers still answers her retry
    refused = users.call("bob", "POST", "/jobs", json={**spec, "max_steps": 7}, headers=key)
    assert refused.status_code == 422 and f"job {bobs.json()['id']}" in refused.json()["message"], refused.text


def test_where_conditions_are_bounded_and_numbers_past_the_databases_range_are_a_422(users: Users) -> None:
    """Finding 6: `where=name=x` + 32,000 spaces + `y` took 3.6 s (a backtracking pattern); `id>10**23` was a
    500 (OverflowError)."""
    long = users.call("bob", "GET", "/jobs", params={"where": "name=x" + " " * 32_000 + "y"})
    assert long.status_code == 422 and "at most 1000 characters" in long.json()["message"], long.text[:300]
    spaced = users.call("bob", "GET", "/jobs", params={"where": "  name  =  x" + " " * 900 + "y  "})
    assert spaced.status_code == 200, spaced.text[:300]  # within the limit: the value is `x ... y`
    for condition in ("id>100000000000000000000000", "id>2147483648", "test_accuracy<-1e400", "learning_rate>1e999",
                      "id=NaN", "train_loss>1e19"):  # fmt: skip
        answer = users.call("bob", "GET", "/jobs", params={"where": condition})
        assert answer.status_code == 422 and answer.json()["message"].startswith("where:"), (condition, answer.text)
    for condition in ("id<2147483647", f"learning_rate<{2**63 - 1}", "test_accuracy>-1e18"):
        assert users.call("bob", "GET", "/jobs", params={"where": condition}).status_code == 200, condition


def test_plans_count_against_a_per_user_rate(tmp_path: Path, database_url: str) -> None:
    """Finding 7: plans had no rate limit (six ResNet18 plans at once took 18 s each)."""
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, api_key=BOOTSTRAP, quota_plans_per_minute=3)
    with local_client(create_app(settings)) as client:
        users = Users(client)
        plans = [users.call("bob", "POST", "/jobs?dry_run=true&probe=false", json={"model": "numpy_mlp"})
                 for _ in range(3)]  # fmt: skip
        assert [plan.status_code for plan in plans] == [200, 200, 200]
        sweep = {"base": {"model": "numpy_mlp"}, "search": {"learning_rate": {"choices": [0.1, 0.01]}}, "trials": 2}
        for refused in (users.call("bob", "POST", "/jobs?dry_run=true", json={"model": "numpy_mlp"}),
                        users.call("bob", "POST", "/sweeps?dry_run=true", json=sweep)):  # fmt: skip
            assert refused.status_code == 429 and "quota plans_per_minute" in refused.json()["message"], refused.text
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert users.call("alice", "POST", "/jobs?dry_run=true", json={"model": "numpy_mlp"}).status_code == 200
        assert users.call("ada", "POST", "/jobs?dry_run=true", json={"model": "numpy_mlp"}).status_code == 200
        assert users.call("bob", "POST", "/jobs", json={"model": "numpy_mlp"}).status_code == 201  # jobs: their own


def test_the_comparison_csv_keeps_each_name_in_its_cell_and_runs_no_formula(users: Users) -> None:
    """Finding 8: the page wrote names with JSON.stringify: `x",=HYPERLINK("http://evil.example/"),"` became a
    formula cell of its own. The API writes the comparison with a CSV writer; a cell that starts like a formula
    gets a `'` first."""
    names = ['x",=HYPERLINK("http://evil.example/"),"', "=1+2", "-3", "plain, with a comma"]
    ids = []
    sessions = users.client.app.state.sessions  # type: ignore[attr-defined]
    for name in names:
        job = users.alices_job()
        assert users.call("ada", "PATCH", f"/jobs/{job}", json={"name": name}).status_code == 200
        with sessions() as session:
            session.execute(insert(MetricPoint).values(job_id=job, step=1, split="test", loss=1.0, accuracy=0.5))
            session.commit()
        ids.append(job)
    answer = users.call("alice", "GET", "/compare.csv", params={"jobs": ",".join(map(str, ids))})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv"), answer.text
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["job_id", "name", "step", "split", "loss", "accuracy"]
    named = {int(row[0]): row[1] for row in rows[1:]}
    assert all(len(row) == 6 for row in rows)
    assert [named.get(job) for job in ids] == [names[0], "'=1+2", "'-3", "plain, with a comma"]
