"""Artifacts in the database and the model cache."""

from typing import Any

import numpy as np
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.services.jobs import jobs_page
from app.services.model_cache import ModelCache
from models.artifacts import ModelArtifact, pack_model, read_metadata, unpack_model
from models.data.preprocessing import Normalization
from store.artifacts import put_artifact, read_artifact
from store.tables import ArtifactKind
from tests.test_job_states import new_job


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
            page = jobs_page(session, None, None, 10, 0)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert page.data[0].trained_model is not None and page.data[0].trained_model.size_bytes == 1_000_000
    assert statements and not any("artifacts.data" in s for s in statements)
    with sessions() as session:
        found = read_artifact(session, job_id, ArtifactKind.model)
    assert found is not None and len(found[1]) == 1_000_000


def test_model_cache_loads_once_and_drops_the_least_recently_used() -> None:
    cache = ModelCache(capacity=2)
    loads: list[int] = []

    def loader(job_id: int) -> Any:
        def load() -> tuple[str, Any]:
            loads.append(job_id)
            return "kind", object()

        return load

    first = cache.get((1, "a"), loader(1))
    assert cache.get((1, "a"), loader(1)) is first and loads == [1]
    cache.get((2, "b"), loader(2))
    cache.get((1, "a"), loader(1))  # 1 is now the most recent
    cache.get((3, "c"), loader(3))  # evicts 2
    cache.get((1, "a"), loader(1))
    cache.get((2, "b"), loader(2))
    assert loads == [1, 2, 3, 2]
