"""A model (or checkpoint) whose stored bytes were damaged is found by its SHA-256 wherever it is read:
/predict refuses it naming the job (and passes over it when choosing the best job), a download refuses
it instead of serving bytes under a hash that is not theirs, init_from_job refuses it, and a damaged
checkpoint is dropped so the attempt starts again. In process, on the real database."""

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import ApiSettings
from specs import parse_job_spec
from store.artifacts import put_artifact
from store.attempts import claim_next, start_attempt
from store.jobs import create_job
from store.tables import Artifact, ArtifactKind
from store.unit_of_work import transact
from tests.conftest import local_client, store_succeeded_job

SPEC = {"model": "numpy_mlp", "hidden_units": [8]}


def damage(sessions: sessionmaker[Session], job_id: int, kind: ArtifactKind) -> None:
    with sessions() as session:
        data = session.scalar(select(Artifact.data).where(Artifact.job_id == job_id, Artifact.kind == kind.value))
        assert data is not None
        session.execute(
            update(Artifact)
            .where(Artifact.job_id == job_id, Artifact.kind == kind.value)
            .values(data=b"\xff" * 8 + bytes(data)[8:])
        )
        session.commit()


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))) as client:
        yield client


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_damaged_model_is_refused_and_passed_over(client: TestClient, sessions: sessionmaker[Session]) -> None:
    intact, best = store_succeeded_job(sessions, 0.40), store_succeeded_job(sessions, 0.55)
    damage(sessions, best, ArtifactKind.model)
    files = [("files", ("red.png", png(), "image/png"))]

    chosen = client.post("/predict", files=files)  # the best job's model is damaged: the next one answers
    assert chosen.status_code == 200 and chosen.json()["job_id"] == intact
    for _ in range(2):  # asked for by id: refused, naming it (the second time from the cache's memory)
        refused = client.post("/predict", params={"job_id": best}, files=files)
        assert refused.status_code == 409 and refused.json()["message"].startswith(f"job {best}'s model is damaged")

    download = client.get(f"/jobs/{best}/model")
    assert download.status_code == 409 and "damaged" in download.json()["message"]
    good = client.get(f"/jobs/{intact}/model")
    assert good.status_code == 200 and good.headers["etag"] == f'"{hashlib.sha256(good.content).hexdigest()}"'

    seeded = client.post("/jobs", json={**SPEC, "init_from_job": best})
    assert seeded.status_code == 422
    assert seeded.json()["message"].startswith(f"init_from_job: job {best}'s model is damaged")
    assert client.post("/jobs", json={**SPEC, "init_from_job": intact}).status_code == 201


def test_a_damaged_checkpoint_is_dropped_and_the_attempt_starts_over(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        create_job(session, parse_job_spec(SPEC))
        session.commit()
        attempt = claim_next(sessions, "w")
        assert attempt is not None
        put_artifact(session, attempt.job_id, ArtifactKind.checkpoint, b"checkpoint bytes" * 100, 700)
        session.commit()
    damage(sessions, attempt.job_id, ArtifactKind.checkpoint)
    start = transact(sessions, lambda session: start_attempt(session, attempt))
    assert start.checkpoint is None and start.checkpoint_step == 0
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Artifact)) == 0
