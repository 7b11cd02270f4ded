"""The API key: refused without it, accepted with it, never needed for /healthz and the docs."""

from collections.abc import Iterator
from pathlib import Path

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
