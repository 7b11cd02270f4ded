"""Prometheus at /metrics: parsed with prometheus_client's own parser, as Prometheus would read it."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.settings import ApiSettings
from store.attempts import claim_next
from tests.conftest import local_client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url, api_key="k"))) as client:
        yield client


def test_jobs_queue_and_requests_are_counted(client: TestClient) -> None:
    auth = {"Authorization": "Bearer k"}
    for _ in range(3):
        assert client.post("/jobs", json={"model": "numpy_mlp"}, headers=auth).status_code == 201
    assert client.get("/jobs/999", headers=auth).status_code == 404
    response = client.get("/metrics")  # no key needed: METRICS_REQUIRE_KEY is off
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("cifar_jobs", (("status", "queued"),))] == 3
    assert found[("cifar_jobs", (("status", "running"),))] == 0
    assert found[("cifar_queue_depth", ())] == 3
    assert found[("cifar_predictions_served_total", ())] == 0
    # the model cache of this API process: nothing predicted yet (tests/service/test_predict.py fills it)
    assert found[("cifar_model_cache_bytes", ())] == 0 and found[("cifar_model_loads_total", ())] == 0
    assert found[("cifar_model_load_waiters", ())] == 0
    posted = [v for (name, labels), v in found.items() if name == "cifar_api_http_requests_total"
              and dict(labels).get("handler") == "/jobs" and dict(labels).get("method") == "POST"]  # fmt: skip
    assert posted == [3]
    missing = [v for (name, labels), v in found.items() if name == "cifar_api_http_requests_total"
               and dict(labels).get("handler") == "/jobs/{job_id}" and dict(labels).get("status") == "404"]  # fmt: skip
    assert missing == [1]
    assert any(name == "cifar_api_http_request_duration_seconds_bucket" for name, _ in found)


def test_metrics_can_require_the_key(tmp_path: Path, database_url: str) -> None:
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, api_key="k", metrics_require_key=True)
    with local_client(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer k"}).status_code == 200


def test_running_jobs_ids_are_shown_to_an_admins_scrape_only(tmp_path: Path, database_url: str) -> None:
    """Issue 40, finding 8: an anonymous scrape named the running jobs' ids, which VISIBILITY=own hides."""
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, api_key="k", visibility="own")
    with local_client(create_app(settings)) as client:
        member = client.post("/users", json={"name": "mia", "role": "member"}, headers={"Authorization": "Bearer k"})
        job = client.post("/jobs", json={"model": "numpy_mlp"}, headers={"Authorization": "Bearer k"}).json()["id"]
        assert claim_next(client.app.state.sessions, "w") is not None  # type: ignore[attr-defined]
        scrapes = {who: client.get("/metrics", headers=headers).text for who, headers in (
            ("anonymous", {}), ("member", {"Authorization": f"Bearer {member.json()['token']}"}),
            ("key", {"Authorization": "Bearer k"}))}  # fmt: skip
    per_job = ("cifar_job_steps_per_second", (("job_id", str(job)), ("model", "numpy_mlp")))
    assert per_job in samples(scrapes["key"])
    for who in ("anonymous", "member"):
        assert per_job not in samples(scrapes[who]) and f'job_id="{job}"' not in scrapes[who], who
        assert samples(scrapes[who])[("cifar_jobs", (("status", "running"),))] == 1  # the counts stay
