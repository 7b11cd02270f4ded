"""Hardening of the API: bounded bodies and curves, only the documented image formats, browser-origin
attacks, loopback-only without a key, error texts without internals, no temporaries left behind."""

import asyncio
import base64
import gc
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.runtime.pools import WorkPool
from app.settings import ApiSettings
from models.data.arrays import DatasetError
from models.data.catalog import load_dataset
from specs import parse_job_spec
from store.engine import make_engine, make_session_factory
from store.jobs import create_job
from store.points import add_points
from tests.conftest import local_client, store_succeeded_job
from tests.datagen import CLASSES, write_image_folder
from workers.child import internal_error


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ApiSettings:
    return ApiSettings(data_dir=tmp_path, database_url=database_url)


@pytest.fixture
def client(settings: ApiSettings) -> Iterator[TestClient]:
    with local_client(create_app(settings)) as client:
        yield client


def test_a_job_spec_body_is_capped_at_a_few_kilobytes(client: TestClient) -> None:
    body = json.dumps({"model": "torch_mlp", "hidden_units": [[]] * 40_000})  # 160 KB: far more than any spec
    response = client.post("/jobs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_too_many_json_images_are_refused_by_the_schema(client: TestClient) -> None:
    response = client.post("/predict", json={"images": [""] * 300})
    assert response.status_code == 422 and response.json()["message"].startswith("images")


def test_a_json_body_of_millions_of_items_is_refused_before_it_is_parsed(client: TestClient) -> None:
    """The schema's cap applies only after the parser has built every item (1.3 GB for 24 MB of
    empty strings, bench/hostile_load.py); the count of separators refuses such a body first."""
    for items in (b'""', b"0", b"[]"):
        body = b'{"images": [' + b",".join([items] * 2_000_000) + b"]}"
        response = client.post("/predict", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, items
        assert response.json()["message"] == "images: at most 256 images (base64 strings) per request"


def test_only_the_documented_image_formats_are_decoded(client: TestClient, sessions: sessionmaker[Session]) -> None:
    store_succeeded_job(sessions, 0.5)
    tga, png = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tga, format="TGA")  # Pillow reads TGA; the API does not
    Image.new("RGB", (8, 8), (1, 2, 3)).save(png, format="PNG")
    alone = client.post("/predict", files=[("files", ("old.tga", tga.getvalue(), "image/x-tga"))])
    assert alone.status_code == 415
    assert "old.tga" in alone.json()["message"] and "PNG, JPEG, BMP, GIF, WebP" in alone.json()["message"]
    both = client.post("/predict", files=[("files", ("old.tga", tga.getvalue(), "image/x-tga")),
                                          ("files", ("new.png", png.getvalue(), "image/png"))])  # fmt: skip
    assert both.status_code == 200
    tga_answer, png_answer = both.json()["predictions"]
    assert tga_answer["error"]["status"] == 415 and png_answer["label"] in CLASSES


def test_a_job_may_not_write_unbounded_curves(client: TestClient) -> None:
    spec = {"model": "torch_mlp", "log_every": 1, "eval_every": 1, "max_steps": 1_000_000}
    response = client.post("/jobs", json=spec)
    assert response.status_code == 422
    message = response.json()["message"]
    assert "log_every" in message and "eval_every" in message and "over the limit" in message


def test_metrics_come_in_pages_cut_between_steps(client: TestClient, settings: ApiSettings) -> None:
    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        job, _ = create_job(session, parse_job_spec({"model": "torch_mlp"}))
        session.commit()
        points = [(s, "train", 1.0, 0.5) for s in range(1, 31)] + [(s, "test", 1.0, 0.5) for s in range(5, 31, 5)]
        add_points(session, job.id, points)
        session.commit()
    engine.dispose()
    seen: list[tuple[int, str]] = []
    since: int | None = None
    pages = 0
    while True:
        params = {"limit": 10, **({"since": since} if since is not None else {})}
        page = client.get(f"/jobs/{job.id}/metrics", params=params).json()
        pages += 1
        assert len(page["points"]) <= 10
        seen += [(p["step"], p["split"]) for p in page["points"]]
        since = page["next_since"]
        if since is None:
            break
    assert pages >= 4 and len(seen) == len(set(seen)) == len(points)


def test_browser_pages_elsewhere_cannot_change_state(client: TestClient) -> None:
    job = client.post("/jobs", json={"model": "numpy_mlp"}).json()
    evil = client.post(f"/jobs/{job['id']}/cancel", headers={"Origin": "https://attacker.example"})
    assert evil.status_code == 403 and "attacker.example" in evil.json()["detail"]
    own = client.post(f"/jobs/{job['id']}/cancel", headers={"Origin": "http://127.0.0.1"})
    assert own.status_code == 200  # the service's own web page
    assert client.get("/jobs", headers={"Host": "attacker.example"}).status_code == 400  # DNS rebinding


def test_without_a_key_only_this_machine_is_answered(settings: ApiSettings) -> None:
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1", client=("192.0.2.7", 40000)) as remote:
        refused = remote.get("/jobs")
        assert refused.status_code == 403 and "API_KEY" in refused.json()["detail"]
    keyed = create_app(settings.model_copy(update={"api_key": "k"}))
    with TestClient(keyed, base_url="http://127.0.0.1", client=("192.0.2.7", 40000)) as remote:
        assert remote.get("/jobs", headers={"Authorization": "Bearer k"}).status_code == 200


def test_job_errors_hold_no_absolute_paths_or_sql(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as missing:
        load_dataset("nowhere", tmp_path / "secret-place")
    assert "DATA_DIR/nowhere" in str(missing.value) and "secret-place" not in str(missing.value)
    broken = OperationalError("UPDATE jobs SET password = ? WHERE id = 1", ("hunter2",), Exception("locked"))
    message = internal_error(broken)
    assert "OperationalError" in message and "UPDATE" not in message and "hunter2" not in message


def test_a_failed_cache_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image_folder(tmp_path / "pets", ["cat", "dog"])

    def disk_full(file: io.BufferedWriter, **arrays: np.ndarray) -> None:
        file.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)  # what the cache writes with
    arrays = load_dataset("pets", tmp_path)  # trains on without the cache
    assert len(arrays.train_y) > 0
    assert list((tmp_path / "pets").rglob("*.tmp")) == []


def test_base64_images_still_decode(client: TestClient, sessions: sessionmaker[Session]) -> None:
    job_id = store_succeeded_job(sessions, 0.5)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    response = client.post("/predict", json={"images": [base64.b64encode(buffer.getvalue()).decode(), "bad!"]})
    assert response.status_code == 200 and response.json()["job_id"] == job_id
    decoded, refused = response.json()["predictions"]
    assert decoded["label"] in CLASSES and sum(decoded["probabilities"].values()) == pytest.approx(1.0)
    assert refused["error"] == {"status": 400, "message": "images[1]: not valid base64"}


def image_bytes(size: tuple[int, int], fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (size[1] // 100, size[0] // 100, 3), dtype=np.uint8)  # a smooth picture
    buffer = io.BytesIO()
    Image.fromarray(small).resize(size, Image.Resampling.BILINEAR).save(buffer, format=fmt)
    return buffer.getvalue()


def test_a_request_has_a_budget_of_decoded_pixels() -> None:
    from app.http.refusals import TooLarge
    from app.predict.images import PixelBudget, Upload, decode_upload

    budget = PixelBudget(5_000_000)
    png = image_bytes((1500, 1500), "PNG")  # 2.25 M pixels each: under the per-image cap of 4 M
    decode_upload(Upload("a.png", png), 10**8, 4_000_000, budget)
    decode_upload(Upload("b.png", png), 10**8, 4_000_000, budget)
    with pytest.raises(TooLarge) as refused:
        decode_upload(Upload("c.png", png), 10**8, 4_000_000, budget)
    assert "c.png" in str(refused.value) and "5,000,000 decoded pixels" in str(refused.value)


def test_a_large_jpeg_decodes_at_a_reduced_scale_and_a_large_png_is_refused() -> None:
    from app.http.refusals import TooLarge
    from app.predict.images import PixelBudget, Upload, decode_upload
    from models.data.images import image_to_array

    jpeg = image_bytes((4000, 3000), "JPEG")  # 12 M pixels in its header
    budget = PixelBudget(16_000_000)
    array = decode_upload(Upload("photo.jpg", jpeg), 10**8, 4_000_000, budget)
    assert array.shape == (3, 32, 32) and budget.total - budget.left == 500 * 375  # decoded at 1/8 scale
    with Image.open(io.BytesIO(jpeg)) as full:
        reference = image_to_array(full).astype(int)  # the whole 12 M pixels, resized
    assert np.abs(array.astype(int) - reference).mean() < 6  # the same picture
    with pytest.raises(TooLarge) as refused:
        decode_upload(Upload("photo.png", image_bytes((4000, 3000), "PNG")), 10**8, 4_000_000, PixelBudget(10**9))
    assert "photo.png" in str(refused.value) and "4000x3000" in str(refused.value)


def test_predictions_run_at_most_predict_concurrency_at_a_time(tmp_path: Path, database_url: str) -> None:
    """The application's own pool: a flood of calls runs PREDICT_CONCURRENCY at a time, the rest wait."""
    assert ApiSettings(data_dir=tmp_path).predict_concurrency == max(1, (os.cpu_count() or 2) // 2)  # the default
    release = threading.Event()
    lock = threading.Lock()
    running, most = 0, 0

    def held() -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(10)
        with lock:
            running -= 1
        return 1

    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, predict_concurrency=2)
    with local_client(create_app(settings)) as client:
        pool: WorkPool = client.app.state.predict_pool  # type: ignore[attr-defined]

        async def flood() -> list[int]:
            calls = [asyncio.ensure_future(pool.run(held)) for _ in range(8)]
            deadline = time.monotonic() + 10
            while pool.limiter.statistics().tasks_waiting < 6:  # two run, six wait for a token
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            assert running == 2 and pool.limiter.borrowed_tokens == 2
            release.set()
            return await asyncio.gather(*calls)

        assert client.portal.call(flood) == [1] * 8  # type: ignore[union-attr]  # on the application's event loop
        assert most == 2


def test_every_answer_sends_the_security_headers(client: TestClient) -> None:
    """The page, the report, /docs and every API answer: no framing, no sniffing, no referrer, and a CSP
    without inline script (but Swagger UI's one start-up script, allowed by its hash)."""
    for path in ("/", "/docs", "/reports/assignment", "/jobs", "/jobs/999", "/web/app.js", "/openapi.json"):
        response = client.get(path)
        headers = response.headers
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer", path
        policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
        assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'", path
        assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"], path
    docs_hash = policy["script-src"].split()[1]
    assert docs_hash.startswith("'sha256-")
    assert client.get("/", headers={"Host": "attacker.example"}).headers["x-frame-options"] == "DENY"


def test_a_started_api_keeps_its_start_up_objects_out_of_full_collections(settings: ApiSettings) -> None:
    """A full collection of the whole API process took 150 ms with every request waiting; with what
    start-up made frozen it scans only what came since. Given back when the application stops."""
    with local_client(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > len(gc.get_objects())  # most of the heap: a full collection skips it
    assert gc.get_freeze_count() == 0
