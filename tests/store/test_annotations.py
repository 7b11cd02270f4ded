"""Names, tags and notes on jobs (PATCH /jobs/{id}) and the list's filters by tag and name, through HTTP."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import ApiSettings
from store.tables import JobTag
from tests.conftest import local_client, store_succeeded_job


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))) as client:
        yield client


def submit(client: TestClient, name: str) -> int:
    return int(client.post("/jobs", json={"model": "numpy_mlp", "name": name}).json()["id"])


def test_only_the_fields_sent_change_and_the_tags_filter_the_list(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    wide, deep, other = submit(client, "Wide Adam"), submit(client, "deep adam"), submit(client, "sgd")
    tagged = client.patch(f"/jobs/{wide}", json={"tags": ["wide", "adam", "wide"], "notes": "lr 1e-4\nas the report"})
    assert tagged.status_code == 200, tagged.text
    body = tagged.json()
    assert body["tags"] == ["wide", "adam"] and body["notes"] == "lr 1e-4\nas the report"  # each tag once
    assert body["name"] == "Wide Adam"  # not sent: unchanged
    renamed = client.patch(f"/jobs/{wide}", json={"name": "wide, Adam 1e-4"}).json()
    assert renamed["name"] == renamed["spec"]["name"] == "wide, Adam 1e-4" and renamed["tags"] == ["wide", "adam"]
    client.patch(f"/jobs/{deep}", json={"tags": ["adam"]})

    def ids(**filters: str) -> list[int]:
        page = client.get("/jobs", params=filters)
        assert page.status_code == 200, page.text
        return [job["id"] for job in page.json()["data"]]

    assert ids(tag="adam") == [deep, wide] and ids(tag="wide") == [wide] and ids(tag="none") == []
    assert ids(name_contains="ADAM") == [deep, wide]  # any case
    assert ids(name_contains="%") == [] and ids(name_contains="_") == []  # literal text, not a pattern
    assert ids(tag="adam", status="queued", model="numpy_mlp") == [deep, wide]
    assert client.get("/jobs", params={"tag": "adam"}).json()["count"] == 2
    cleared = client.patch(f"/jobs/{wide}", json={"tags": None, "notes": None}).json()
    assert cleared["tags"] == [] and cleared["notes"] is None and ids(tag="wide") == []
    with sessions() as session:  # the index rows follow the tags
        assert session.scalars(select(JobTag.job_id).where(JobTag.tag == "adam")).all() == [deep]
    assert other in ids()


def test_bad_annotations_and_filters_are_422s_naming_the_field(client: TestClient) -> None:
    job = submit(client, "x")
    for body, field in (
        ({"tags": ["Has Space"]}, "tags"),
        ({"tags": ["t"] * 21}, "tags"),
        ({"name": "a\x00b"}, "name"),
        ({"notes": "n" * 10_001}, "notes"),
        ({"spec": {"model": "torch_mlp"}}, "spec"),  # what it trains is not editable
    ):
        answer = client.patch(f"/jobs/{job}", json=body)
        assert answer.status_code == 422 and field in answer.json()["message"], (body, answer.text)
    assert client.patch("/jobs/999999", json={"notes": "x"}).status_code == 404
    assert client.get("/jobs", params={"tag": "Bad Tag"}).status_code == 422
    unknown = client.get("/jobs", params={"order_by": "name"})
    assert unknown.status_code == 422 and "order_by" in unknown.json()["message"]


def test_a_tagged_job_can_be_deleted_and_its_tags_go_with_it(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    job = submit(client, "to go")
    client.patch(f"/jobs/{job}", json={"tags": ["gone"]})
    assert client.post(f"/jobs/{job}/cancel").json()["status"] == "cancelled"
    assert client.delete(f"/jobs/{job}").status_code == 204
    with sessions() as session:
        assert session.scalars(select(JobTag).where(JobTag.job_id == job)).all() == []


def test_the_list_sorts_by_a_metric_a_spec_field_or_a_column(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    """Sorted in SQL (json fields of the stored spec and final metrics), unfinished jobs last either way."""
    low, high = store_succeeded_job(sessions, 0.31), store_succeeded_job(sessions, 0.52)
    queued = [
        client.post("/jobs", json={"model": "torch_mlp", "learning_rate": rate, "optimizer": optimizer}).json()["id"]
        for rate, optimizer in ((0.01, "sgd"), (0.0001, "adam"), (0.1, "adam"))
    ]

    def ids(sort: str, **filters: str) -> list[int]:
        page = client.get("/jobs", params={"sort": sort, **filters})
        assert page.status_code == 200, page.text
        return [job["id"] for job in page.json()["data"]]

    assert ids("-test_accuracy")[:2] == [high, low] and ids("test_accuracy")[:2] == [low, high]
    assert set(ids("-test_accuracy")[2:]) == set(queued)  # no metrics yet: after the finished ones
    assert ids("learning_rate", model="torch_mlp") == [queued[1], queued[0], queued[2]]
    assert ids("-learning_rate", model="torch_mlp") == [queued[2], queued[0], queued[1]]
    assert ids("optimizer", model="torch_mlp") == [queued[2], queued[1], queued[0]]  # adam (newest first), sgd
    assert ids("id") == sorted([low, high, *queued]) and ids("-id") == sorted([low, high, *queued], reverse=True)
    refused = client.get("/jobs", params={"sort": "hidden_units"})
    assert refused.status_code == 422 and "sort" in refused.json()["message"] and "learning_rate" in refused.text


def test_the_list_keeps_the_jobs_that_meet_every_condition(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """Conditions on spec fields (a number, a text, a flag, a list) and final metrics, compared in SQL."""
    low, high = store_succeeded_job(sessions, 0.31), store_succeeded_job(sessions, 0.52)
    specs = (
        {"hidden_units": [800, 600, 400], "optimizer": "adam", "learning_rate": 0.0001},
        {"hidden_units": [100, 100, 50, 50, 50, 50], "optimizer": "adam", "learning_rate": 0.0001},
        {"hidden_units": [800, 600, 400], "optimizer": "sgd", "learning_rate": 0.01, "augmentation": "crop_flip"},
    )
    wide, deep, wide_sgd = (client.post("/jobs", json={"model": "torch_mlp", **spec}).json()["id"] for spec in specs)

    def ids(*where: str, **filters: str) -> list[int]:
        page = client.get("/jobs", params={"where": list(where), **filters})
        assert page.status_code == 200, page.text
        return [job["id"] for job in page.json()["data"]]

    assert ids("optimizer=adam") == [deep, wide]
    assert ids("optimizer != adam", model="torch_mlp") == [wide_sgd]
    assert ids("hidden_units=[800,600,400]") == [wide_sgd, wide]
    assert ids("hidden_units=[800, 600, 400]", "optimizer=adam") == [wide]  # all must hold
    assert ids("hidden_units!=[800,600,400]", model="torch_mlp") == [deep]
    assert ids("learning_rate<0.001") == [deep, wide] and ids("learning_rate>=0.01") == [wide_sgd]
    assert ids("test_accuracy>0.5") == [high] and ids("test_accuracy<=0.52") == [high, low]
    assert ids("best_test_accuracy>0") == []  # these two stored no best: no value never matches
    assert ids("augmentation=crop_flip") == [wide_sgd] and ids("status=succeeded") == [high, low]
    assert ids("id>=" + str(wide_sgd)) == [wide_sgd]
    for bad, named in (
        ("colour=red", "colour"),  # no such field
        ("optimizer>adam", "="),  # a text has no order
        ("learning_rate=fast", "number"),
        ("test_accuracy", "operator"),
        ("hidden_units=800", "list"),
    ):
        answer = client.get("/jobs", params={"where": bad})
        assert answer.status_code == 422, (bad, answer.text)
        message = answer.json()["message"]
        assert message.startswith("where") and named in message, (bad, message)
    many = client.get("/jobs", params={"where": ["optimizer=adam"] * 11})
    assert many.status_code == 422 and "at most 10" in many.json()["message"]


def test_tags_and_notes_given_at_submission_are_the_jobs_not_its_specs(client: TestClient) -> None:
    body = {"model": "numpy_mlp", "name": "lab 1", "tags": ["lab1", "mlp", "lab1"], "notes": "first try"}
    created = client.post("/jobs", json=body, headers={"Idempotency-Key": "tagged-1"})
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["tags"] == ["lab1", "mlp"] and job["notes"] == "first try" and job["name"] == "lab 1"
    assert "tags" not in job["spec"] and "notes" not in job["spec"]  # kept beside the spec: PATCH changes them
    assert [found["id"] for found in client.get("/jobs", params={"tag": "mlp"}).json()["data"]] == [job["id"]]
    again = client.post("/jobs", json=body, headers={"Idempotency-Key": "tagged-1"})
    assert again.status_code == 200 and again.json()["id"] == job["id"]  # the same submission, retried
    plan = client.post("/jobs", params={"dry_run": "true"}, json=body)
    assert plan.status_code == 200 and "tags" not in plan.json()["spec"]
    for bad, field in ((["Lab 1"], "tags[0]"), (["ok"] * 21, "tags"), ("lab1", "tags")):
        refused = client.post("/jobs", json={"model": "numpy_mlp", "tags": bad})
        assert refused.status_code == 422 and refused.json()["message"].startswith(field), refused.text
    long_notes = client.post("/jobs", json={"model": "numpy_mlp", "notes": "x" * 10_001})
    assert long_notes.status_code == 422 and long_notes.json()["message"].startswith("notes")


def test_a_sweeps_trials_carry_the_tags_of_its_base(client: TestClient, sessions: sessionmaker[Session]) -> None:
    from app.sweeps.driver_process import SweepDriver

    sweep = client.post("/sweeps", json={
        "base": {"model": "numpy_mlp", "max_steps": 20, "eval_every": 10, "tags": ["sweep-a"], "notes": "grid"},
        "search": {"learning_rate": {"choices": [0.001, 0.0001]}},
        "method": "grid",
    })  # fmt: skip
    assert sweep.status_code == 201, sweep.text
    state = client.app.state  # type: ignore[attr-defined]
    assert SweepDriver(state.sessions, state.settings, "test").run_once()
    trials = client.get("/jobs", params={"tag": "sweep-a"}).json()["data"]
    assert len(trials) == 2 and {trial["notes"] for trial in trials} == {"grid"}
    searched = client.post("/sweeps", json={
        "base": {"model": "numpy_mlp"}, "search": {"tags": {"choices": [["a"], ["b"]]}}, "method": "grid"})  # fmt: skip
    assert searched.status_code == 422 and "tags is how a trial runs" in searched.json()["message"]
