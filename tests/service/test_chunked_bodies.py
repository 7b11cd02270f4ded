"""Request bodies through a real server: capped before any route parses them, and a body refused before
its end is not read on (the answer closes the connection)."""

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import requests

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


def _answer_to_a_body_never_sent_in_full(url: str, path: str, declared: int, start: bytes) -> bytes:
    """Everything the server sends (until it closes) for a request that declares `declared` bytes of body
    and sends only `start`; a server that waits for the rest times the read out."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: {declared}\r\n\r\n".encode() + start)
        answer = b""
        while chunk := sock.recv(65536):  # b"": the server closed the connection
            answer += chunk
    return answer


def test_a_body_refused_before_its_end_is_not_read_on(service_without_worker: Service) -> None:
    """A 24 MB job spec (413 from its declared length) and 24 MB of empty base64 images (422 from the
    first 64 KB's count of separators), of which the client sends only the start: each declares more than
    DRAIN_MAX_BYTES, so each is answered at once with `Connection: close`, without the rest
    (bench/hostile_load.py: reading such bodies to the end made polling 3x slower at p99)."""
    url = service_without_worker.url
    spec = _answer_to_a_body_never_sent_in_full(url, "/jobs", 24_000_000, b'{"model": "torch_mlp", "hidden_units": [')
    assert spec.startswith(b"HTTP/1.1 413") and b"connection: close" in spec.lower(), spec[:300]
    images = b'{"images": [' + b'"",' * 20_000
    predict = _answer_to_a_body_never_sent_in_full(url, "/predict", 24_000_000, images)
    assert predict.startswith(b"HTTP/1.1 422") and b"connection: close" in predict.lower(), predict[:300]
    assert b"at most 256 images" in predict
    with service_without_worker.client() as client:  # and the server goes on answering
        assert client.get("/healthz").status_code == 200


def _send_with(client: str, url: str, body: bytes) -> tuple[int, str]:
    """POST the body as `client` would; (status, the answer's text)."""
    headers = {"Content-Type": "application/json"}
    if client == "urllib":
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode()
    if client == "requests":
        answer = requests.post(url, data=body, headers=headers, timeout=30)
        return answer.status_code, answer.text
    with httpx.Client(timeout=30) as http:
        reply = http.post(url, content=body, headers=headers)
        return reply.status_code, reply.text


@pytest.mark.parametrize("client", ["urllib", "requests", "httpx"])
def test_every_client_reads_the_answer_to_a_body_refused_early(service_without_worker: Service, client: str) -> None:
    """Issue 40, finding 10: a 12 MB JSON body to /predict is refused at its first chunks (422, at most 256
    images); urllib got `Connection reset by peer` while still sending (the server closed with unread bytes).
    The rest is read within bounds first; and a job spec over its 64 KB cap (413) the same."""
    images = b'{"images": [' + b'"AAAA",' * 1_700_000 + b'"AAAA"]}'  # 12 MB
    status, text = _send_with(client, f"{service_without_worker.url}/predict", images)
    assert status == 422 and "at most 256 images" in text, (status, text[:300])
    spec = b'{"model": "numpy_mlp", "name": "' + b"x" * 3_000_000 + b'"}'
    status, text = _send_with(client, f"{service_without_worker.url}/jobs", spec)
    assert status == 413 and "over the limit" in text, (status, text[:300])
