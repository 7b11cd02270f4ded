"""The Python client's pieces without a service: refusals as exceptions, retries, rows, uploads."""

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from cifar_jobs import Client, NotFound, QuotaExceeded, ServiceError, SpecRefused, Unavailable
from cifar_jobs.errors import error_of
from cifar_jobs.images import upload_files
from cifar_jobs.tables import Rows, run_row
from models.data.preprocessing import PreprocessingKind


def answer(status: int, body: object = None, text: str | None = None, **headers: str) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def test_each_status_is_its_class_carrying_the_services_message() -> None:
    refused = error_of(answer(422, {"message": "hidden_units[0]: Input should be greater than 0", "detail": []}))
    assert isinstance(refused, SpecRefused) and refused.field == "hidden_units[0]"
    assert str(refused) == "422: hidden_units[0]: Input should be greater than 0"
    assert error_of(answer(422, {"message": "give either jobs or a sweep", "detail": "x"})).field is None  # type: ignore[attr-defined]
    quota = error_of(
        answer(429, {"message": "2 plans a minute", "detail": "2 plans a minute"}, **{"Retry-After": "12"})
    )
    assert isinstance(quota, QuotaExceeded) and quota.retry_after == 12
    assert error_of(answer(429, {"message": "m"}, **{"Retry-After": "soon"})).retry_after is None  # type: ignore[attr-defined]
    assert isinstance(error_of(answer(404, {"message": "no job 7", "detail": "no job 7"})), NotFound)
    proxy = error_of(answer(502, text="<html>Bad Gateway</html>"))
    assert isinstance(proxy, Unavailable) and proxy.message == "<html>Bad Gateway</html>"
    teapot = error_of(answer(418, {"message": "short and stout"}))
    assert type(teapot) is ServiceError and teapot.status == 418


def test_a_connection_that_never_opened_is_tried_again_one_cut_after_a_post_is_not() -> None:
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        if request.method == "POST" and "Idempotency-Key" not in request.headers:
            raise httpx.ReadError("cut", request=request)
        return httpx.Response(201 if request.method == "POST" else 200, json={"id": 1, "status": "queued"})

    with Client("http://service.test", token="t", transport=httpx.MockTransport(flaky)) as client:
        with pytest.raises(httpx.ReadError):
            client.call("POST", "/jobs", json={})
        # the refused connection was tried again; the POST cut after it went out was not (it might have queued a job)
        assert calls == ["POST", "POST"]
        assert client.call("GET", "/jobs/1") == {"id": 1, "status": "queued"}
        assert calls == ["POST", "POST", "GET"]


def test_submit_is_retried_through_a_cut_connection_with_one_idempotency_key() -> None:
    keys: list[str] = []

    def cut_once(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            raise httpx.ReadError("cut", request=request)
        return httpx.Response(201, json={"id": 9, "status": "queued", "model": "numpy_mlp", "spec": {}})

    with Client("http://service.test", token="t", transport=httpx.MockTransport(cut_once)) as client:
        assert client.submit({"model": "numpy_mlp"}).id == 9
    assert len(keys) == 2 and keys[0] == keys[1]


class SilentService(BaseHTTPRequestHandler):
    """Job 5, whose first event stream opens and then says nothing (a hung server, a proxy holding a dead
    connection); the second carries its end. /backup opens and says nothing."""

    streams: list[str | None] = []
    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/jobs/5":
            self.answer("application/json", json.dumps({"id": 5, "status": "succeeded"}).encode())
        elif self.path == "/jobs/5/events":
            self.streams.append(self.headers.get("Last-Event-ID"))
            if len(self.streams) == 1:
                self.answer("text/event-stream", b'event: progress\nid: 40\ndata: {"step": 40}\n\n')
                self.release.wait(30)  # silent, with the connection open
            else:
                self.answer("text/event-stream", b'event: end\nid: 50\ndata: {"status": "succeeded"}\n\n')
        elif self.path == "/backup":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.release.wait(30)

    def answer(self, media_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        if media_type != "text/event-stream":  # a stream's length is not known
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def silent_service() -> Iterator[str]:
    SilentService.streams = []
    SilentService.release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), SilentService)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        SilentService.release.set()
        server.shutdown()
        server.server_close()


def test_a_silent_event_stream_is_reconnected_from_its_last_step(
    silent_service: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Client(silent_service, token="t", timeout=0.5) as client:
        assert client.job(5).wait(progress=False, timeout=20).status == "succeeded"
    assert SilentService.streams == [None, "40"]  # the second from where the first went silent
    assert "connection lost (nothing came for 0.5 s); reconnecting from step 40" in caplog.text


def test_a_backup_that_never_comes_gives_up_and_leaves_no_file(silent_service: str, tmp_path: Path) -> None:
    with Client(silent_service, token="t") as client, pytest.raises(httpx.ReadTimeout):
        client.backup(tmp_path / "copy.db", timeout=0.5)
    assert not (tmp_path / "copy.db").exists()


def test_rows_become_a_dataframe_and_say_what_to_install_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = Rows([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5, "accuracy": 0.5}])
    frame = rows.to_pandas()
    assert list(frame.columns) == ["step", "loss", "accuracy"] and frame.loss.tolist() == [2.0, 1.5]
    assert frame.accuracy.isna().tolist() == [True, False]  # the first row has none
    typed = Rows(rows, {"step": "int64", "loss": "float64", "accuracy": "float64"}).to_pandas()
    assert typed.equals(frame) and typed.step.dtype == "int64"
    a_step_missing = Rows(
        [{"step": None, "loss": 2.0}, {"step": 3, "loss": None}], {"step": "int64", "loss": "float64"}
    )
    missing = a_step_missing.to_pandas()  # a None where a type was promised: pandas decides, as without one
    assert missing.step.isna().tolist() == [True, False] and missing.step[1] == 3
    assert missing.loss.isna().tolist() == [False, True] and missing.loss[0] == 2.0
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'cifar-jobs\[notebook\]'"):
        rows.to_pandas()


def test_a_run_row_puts_spec_fields_and_final_metrics_beside_the_jobs_own_columns() -> None:
    job = {"id": 3, "name": "wide", "model": "torch_mlp", "status": "succeeded", "progress": {"step": 50},
           "sweep": {"id": 2, "trial": 5}, "spec": {"model": "torch_mlp", "name": "wide", "hidden_units": [8]},
           "final_metrics": {"test_accuracy": 0.5, "status": "clash"}}  # fmt: skip
    row = run_row(job)
    assert row["hidden_units"] == [8] and row["test_accuracy"] == 0.5 and row["step"] == 50
    assert (row["sweep"], row["trial"]) == (2, 5)
    assert row["spec.name"] == "wide" and row["final.status"] == "clash" and row["status"] == "succeeded"


def test_uploads_name_what_they_cannot_send() -> None:
    assert [name for _, (name, _) in upload_files(np.zeros((2, 8, 8, 3), np.uint8))] == ["image-0.png", "image-1.png"]
    with pytest.raises(TypeError, match="image 0: a path, bytes, a PIL image or a uint8 array, not int"):
        upload_files([7])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"uint8 \(height, width, 3\), not float64"):
        upload_files(np.zeros((8, 8, 3)))


KIND_SPECS: dict[str, tuple[dict[str, Any], PreprocessingKind]] = {
    "numpy_mlp": ({"model": "numpy_mlp", "hidden_units": [24, 12]}, "assignment"),
    "torch_mlp": ({"model": "torch_mlp", "hidden_units": [16], "norm": "layernorm_custom"}, "standardize"),
    "convnet": ({"model": "convnet", "mixed_precision": "off"}, "standardize"),
    "resnet18": ({"model": "resnet18", "mixed_precision": "off"}, "imagenet"),
    "speedrun": ({"model": "speedrun", "widths": [8, 16, 16], "mixed_precision": "off"}, "standardize"),
    # the example plugin (examples/vit_kind), installed into the test environment
    "vit": ({"model": "vit", "width": 32, "depth": 2, "heads": 2, "mixed_precision": "off"}, "standardize"),
}


@pytest.mark.parametrize("kind", list(KIND_SPECS))
def test_a_model_files_torch_module_computes_what_the_services_predictor_computes(kind: str) -> None:
    """Random weights in a model file: the client's module and the predictor /predict loads give the same
    probabilities."""
    import torch

    from cifar_jobs.torch_models import trained_model
    from models.artifacts import ModelArtifact, pack_model
    from models.data.preprocessing import fit_normalization
    from models.kinds import KINDS, load_predictor, parse_spec

    raw, preprocessing = KIND_SPECS[kind]
    spec = parse_spec({**raw, "preprocessing": preprocessing})
    rng = np.random.default_rng(5)
    torch.manual_seed(5)
    weights = {name: np.asarray(value).copy() for name, value in KINDS[kind].build(spec, 10).state_dict().items()}
    for name, value in weights.items():  # away from the initialisation, whose answers are close to uniform
        if value.dtype.kind == "f" and "running_" not in name:
            value += rng.normal(0, 0.05, value.shape).astype(value.dtype)
    images = rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    artifact = ModelArtifact(spec.model_dump(mode="json"), [f"c{i}" for i in range(10)],
                             fit_normalization(preprocessing, images), weights)  # fmt: skip
    expected = load_predictor(artifact).probabilities(images)
    model = trained_model(pack_model(artifact))
    ours = model.probabilities(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert ours.std(axis=1).mean() > 1e-3  # not a uniform answer that any network would give
