"""Artifacts in the database and the model cache."""

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.jobs.service import jobs_page
from app.predict.model_cache import LoadedModel, ModelCache
from harness.waiting import wait_until
from models.artifacts import ModelArtifact, pack_model, read_metadata, unpack_model
from models.data.preprocessing import Normalization
from store.artifacts import model_chunks, put_artifact, read_artifact
from store.errors import NoModel
from store.jobs import JobFilter
from store.tables import ArtifactKind
from tests.conftest import new_job


def test_pack_and_unpack_round_trip_without_pickle() -> None:
    norm = Normalization("standardize", np.ones((3, 1, 1), np.float32), np.full((3, 1, 1), 2, np.float32))
    weights: dict[str, np.ndarray] = {
        "layers.0.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "bn.count": np.array(3, np.int64),
    }
    data = pack_model(ModelArtifact({"model": "torch_mlp"}, ["a", "b"], norm, weights))
    assert read_metadata(data)["preprocessing"] == "standardize"
    back = unpack_model(data)
    assert back.spec == {"model": "torch_mlp"} and back.class_names == ["a", "b"]
    np.testing.assert_array_equal(back.weights["layers.0.weight"], weights["layers.0.weight"])
    np.testing.assert_array_equal(back.normalization.std, norm.std)
    assert b"pickle" not in data and data[8:9] == b"{"  # a safetensors JSON header, nothing else


def test_listing_jobs_never_selects_the_blob(engine: Engine, sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    with sessions() as session:
        put_artifact(session, job_id, ArtifactKind.model, b"\0" * 1_000_000)
        session.commit()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with sessions() as session:
            page = jobs_page(session, JobFilter(), 10, 0)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert page.data[0].trained_model is not None and page.data[0].trained_model.size_bytes == 1_000_000
    assert statements and not any("artifacts.data" in s for s in statements)
    with sessions() as session:
        found = read_artifact(session, job_id, ArtifactKind.model)
    assert found is not None and len(found[1]) == 1_000_000


def loader(loads: list[int], job_id: int, wait: threading.Event | None = None) -> Any:
    def load() -> Any:
        if wait is not None:
            wait.wait(10)
        loads.append(job_id)
        return LoadedModel("kind", object())  # type: ignore[arg-type]

    return load


def test_model_cache_keeps_a_byte_budget_dropping_the_least_recently_used() -> None:
    cache = ModelCache(capacity_bytes=250)
    loads: list[int] = []
    first = cache.get((1, "a"), 100, loader(loads, 1))
    assert cache.get((1, "a"), 100, loader(loads, 1)) is first and loads == [1]
    cache.get((2, "b"), 100, loader(loads, 2))
    cache.get((1, "a"), 100, loader(loads, 1))  # 1 is now the most recent
    cache.get((3, "c"), 100, loader(loads, 3))  # 300 bytes > 250: evicts 2
    assert cache.cached_bytes == 200
    cache.get((1, "a"), 100, loader(loads, 1))
    cache.get((2, "b"), 100, loader(loads, 2))
    assert loads == [1, 2, 3, 2]
    cache.get((4, "d"), 400, loader(loads, 4))  # larger than the budget: answered, not kept
    cache.get((4, "d"), 400, loader(loads, 4))
    assert loads == [1, 2, 3, 2, 4, 4] and cache.cached_bytes <= 250


def test_model_cache_loads_a_model_once_for_concurrent_misses() -> None:
    cache = ModelCache(capacity_bytes=1000)
    loads: list[int] = []
    release = threading.Event()
    with ThreadPoolExecutor(8) as pool:
        answers = [pool.submit(cache.get, (1, "a"), 10, loader(loads, 1, release)) for _ in range(8)]
        wait_until(lambda: cache.waiting >= 7, 10, "seven waiting", every=0.01)  # all missed: one loads, 7 wait
        release.set()
        models = {id(f.result()) for f in answers}
    assert loads == [1] and len(models) == 1


def test_model_downloads_stream_in_chunks_and_stop_if_the_model_goes(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    blob = bytes(range(256)) * 4000  # 1,024,000 bytes
    with sessions() as session:
        info = put_artifact(session, job_id, ArtifactKind.model, blob)
        session.commit()
    chunks = list(model_chunks(sessions, info, chunk_bytes=100_000))
    assert [len(c) for c in chunks] == [100_000] * 10 + [24_000] and b"".join(chunks) == blob
    stream = model_chunks(sessions, info, chunk_bytes=100_000)
    next(stream)
    with sessions() as session:
        put_artifact(session, job_id, ArtifactKind.model, b"another model")
        session.commit()
    with pytest.raises(NoModel, match="deleted during the download"):
        next(stream)
