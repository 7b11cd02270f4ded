"""The API key: refused without it, accepted with it, never needed for /healthz and the docs."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import ApiSettings
from tests.conftest import local_client

KEY = "s3cret-key"


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, api_key=KEY)
    with local_client(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/1"), ("GET", "/jobs/1/metrics"), ("POST", "/jobs/1/cancel"),
     ("GET", "/jobs/1/model"), ("POST", "/predict")],
)  # fmt: skip
def test_every_job_and_model_route_needs_the_key(client: TestClient, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        response = client.request(method, path, headers=headers, json={"model": "torch_mlp"})
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_right_key_is_accepted(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    created = client.post("/jobs", json={"model": "torch_mlp"}, headers=auth)
    assert created.status_code == 201
    assert client.get(f"/jobs/{created.json()['id']}", headers=auth).status_code == 200


def test_health_and_docs_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_idempotency_key_returns_the_first_job_or_refuses_another_spec(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    first = client.post("/jobs", json={"model": "torch_mlp"}, headers={**auth, "Idempotency-Key": "abc"})
    again = client.post("/jobs", json={"model": "torch_mlp"}, headers={**auth, "Idempotency-Key": "abc"})
    other = client.post("/jobs", json={"model": "numpy_mlp"}, headers={**auth, "Idempotency-Key": "abc"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 422 and other.json()["message"].startswith("Idempotency-Key:")
    assert client.get("/jobs", headers=auth).json()["count"] == 1


def test_stopping_waits_for_a_token_lookup_refreshing_in_the_background(tmp_path: Path, database_url: str) -> None:
    """A cached token past half its age is looked up again in the background; the API disposes its engine when
    it stops, so it waits for that lookup first (a connection out then was never closed: a ResourceWarning on
    PostgreSQL, in whichever test the collector ran)."""
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, api_key=KEY, principal_cache_seconds=1)
    refreshing, finished = threading.Event(), []
    with local_client(create_app(settings)) as client:
        principals = client.app.state.principals  # type: ignore[attr-defined]
        admin = {"Authorization": f"Bearer {KEY}"}
        token = client.post("/users", json={"name": "ada", "role": "member"}, headers=admin)
        auth = {"Authorization": f"Bearer {token.json()['token']}"}
        assert client.get("/jobs", headers=auth).status_code == 200  # looked up, kept
        lookup = principals._lookup

        def slow_lookup(token: str) -> Any:
            refreshing.set()
            time.sleep(0.5)
            answer = lookup(token)
            finished.append(answer)
            return answer

        principals._lookup = slow_lookup
        ((_, principal),) = principals._tokens.values()
        principals._tokens = {token.json()["token"]: (time.monotonic() - 0.55, principal)}  # past half its age
        assert client.get("/jobs", headers=auth).status_code == 200  # answered from the cache; a refresh begins
        assert refreshing.wait(10)
    assert len(finished) == 1 and finished[0] is not None  # the stop waited for it, and it read the database
