"""A chunked request body through a real server is capped before any route parses it."""

from collections.abc import Iterator

from tests.conftest import Service


def test_a_chunked_job_spec_over_the_cap_is_413(service_without_worker: Service) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "torch_mlp", "name": "'
        for _ in range(200):
            yield b"x" * 1000
        yield b'"}'

    with service_without_worker.client() as client:
        response = client.post("/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the limit" in response.json()["detail"]
