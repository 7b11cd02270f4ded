"""Issue 46: artifacts in an S3 object store (a real SeaweedFS server on loopback), the database keeping each one's
key, size, SHA-256 and step."""

import hashlib
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bench.artifact_store import Workload, measure
from harness.net import free_port
from harness.s3_server import S3Server
from store.artifacts import model_chunks, model_info, put_artifact, read_artifact, verify_model
from store.attempts import claim_next, fail_attempt, succeed_attempt
from store.blobs import ObjectStore, object_store_for
from store.engine import make_session_factory
from store.errors import ArtifactCorrupt, ArtifactStoreUnavailable
from store.jobs import delete_job
from store.move_artifacts import delete_orphans, move_artifacts
from store.settings import StoreSettings
from store.tables import Artifact, ArtifactKind
from store.unit_of_work import unit_of_work
from tests.conftest import new_job

MODEL = bytes(range(256)) * 5000  # 1.28 MB: more than one download chunk


@pytest.fixture
def objects(s3: S3Server) -> ObjectStore:
    return ObjectStore(s3.bucket, f"t-{uuid.uuid4().hex[:12]}/", s3.client())


@pytest.fixture
def stored(engine: Engine, objects: ObjectStore) -> sessionmaker[Session]:
    return make_session_factory(engine, objects)


def _rows(sessions: sessionmaker[Session]) -> list[tuple[int, str, str | None, bool]]:
    with sessions() as session:
        found = session.execute(
            select(Artifact.job_id, Artifact.kind, Artifact.object_key, Artifact.data.is_(None)).order_by(Artifact.id)
        )
        return [(r[0], r[1], r[2], r[3]) for r in found]


def _succeeded(sessions: sessionmaker[Session], model: bytes) -> int:
    job_id = new_job(sessions)
    attempt = claim_next(sessions, "w")
    assert attempt is not None and attempt.job_id == job_id
    with unit_of_work(sessions) as session:
        assert succeed_attempt(session, attempt, {"test_accuracy": 0.5}, 10, model)
    return job_id


def test_a_model_goes_to_the_object_store_and_is_read_back_checked(
    stored: sessionmaker[Session], objects: ObjectStore, s3: S3Server
) -> None:
    job_id = _succeeded(stored, MODEL)
    key = f"{objects.prefix}jobs/{job_id}/model-{hashlib.sha256(MODEL).hexdigest()}"
    assert s3.keys(objects.prefix) == [key]
    assert _rows(stored) == [(job_id, "model", key, True)]  # the key in the row, no bytes
    with stored() as session:
        found = read_artifact(session, job_id, ArtifactKind.model)
        info = model_info(session, job_id)
        verify_model(session, info)
    assert found is not None and found[1] == MODEL and found[0].size_bytes == len(MODEL)
    assert b"".join(model_chunks(stored, info)) == MODEL  # a download: ranged reads, a chunk at a time

    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=MODEL[:-1] + b"\1")  # rewritten behind our back
    with stored() as session, pytest.raises(ArtifactCorrupt):
        read_artifact(session, job_id, ArtifactKind.model)
    with stored() as session, pytest.raises(ArtifactCorrupt):
        verify_model(session, info)
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=MODEL * 4)  # longer: read to one byte past, refused
    with stored() as session, pytest.raises(ArtifactCorrupt):
        read_artifact(session, job_id, ArtifactKind.model)
    with stored() as session, pytest.raises(ArtifactCorrupt):
        verify_model(session, info)
    s3.client().delete_object(Bucket=s3.bucket, Key=key)  # gone behind our back
    with stored() as session, pytest.raises(ArtifactCorrupt):
        read_artifact(session, job_id, ArtifactKind.model)


def test_a_replaced_checkpoint_is_deleted_at_the_commit_and_a_rolled_back_one_at_once(
    stored: sessionmaker[Session], objects: ObjectStore, s3: S3Server
) -> None:
    job_id = new_job(stored)
    with unit_of_work(stored) as session:
        put_artifact(session, job_id, ArtifactKind.checkpoint, b"step 100", 100)
    first = s3.keys(objects.prefix)
    with unit_of_work(stored) as session:
        put_artifact(session, job_id, ArtifactKind.checkpoint, b"step 200", 200)
        assert len(s3.keys(objects.prefix)) == 2  # the new one written, the old one still named until the commit
    second = s3.keys(objects.prefix)
    assert len(second) == 1 and second != first
    with pytest.raises(RuntimeError), unit_of_work(stored) as session:
        put_artifact(session, job_id, ArtifactKind.checkpoint, b"step 300", 300)
        raise RuntimeError("the transaction fails after the write")
    assert s3.keys(objects.prefix) == second  # the rolled-back write went; the committed one stays
    with stored() as session:
        found = read_artifact(session, job_id, ArtifactKind.checkpoint)
    assert found is not None and (found[0].step, found[1]) == (200, b"step 200")
    with unit_of_work(stored) as session:  # the same bytes again: one object, still named
        put_artifact(session, job_id, ArtifactKind.checkpoint, b"step 200", 200)
    assert s3.keys(objects.prefix) == second


def test_ending_a_job_deletes_its_checkpoint_and_deleting_it_its_model(
    stored: sessionmaker[Session], objects: ObjectStore, s3: S3Server
) -> None:
    failing, kept = new_job(stored), new_job(stored)
    attempt, running = claim_next(stored, "w"), claim_next(stored, "w")
    assert attempt is not None and running is not None and (attempt.job_id, running.job_id) == (failing, kept)
    with unit_of_work(stored) as session:
        put_artifact(session, failing, ArtifactKind.checkpoint, b"failing's", 50)
        put_artifact(session, kept, ArtifactKind.checkpoint, b"kept's", 50)
    with unit_of_work(stored) as session:
        assert fail_attempt(session, attempt, "diverged")
    assert [key.split("/")[-2:] for key in s3.keys(objects.prefix)] == [
        [str(kept), f"checkpoint-{hashlib.sha256(b'kept' + bytes([39]) + b's').hexdigest()}"]
    ]
    done = _succeeded(stored, MODEL)
    assert any(f"/jobs/{done}/model-" in key for key in s3.keys(objects.prefix))
    with unit_of_work(stored) as session:
        delete_job(session, done)
    assert not any(f"/jobs/{done}/" in key for key in s3.keys(objects.prefix))


def test_a_database_full_of_blobs_moves_into_the_store_and_orphans_are_deleted(
    sessions: sessionmaker[Session], stored: sessionmaker[Session], objects: ObjectStore, s3: S3Server
) -> None:
    first, second = _succeeded(sessions, MODEL), _succeeded(sessions, b"another model")  # no store: in the rows
    assert [row[2:] for row in _rows(sessions)] == [(None, False), (None, False)]
    with sessions() as session, pytest.raises(ArtifactStoreUnavailable):  # nothing to read it with: said so
        session.add(Artifact(job_id=first, kind="checkpoint", size_bytes=1, sha256="0" * 64, object_key="k"))
        session.flush()
        read_artifact(session, first, ArtifactKind.checkpoint)
    moved = move_artifacts(sessions, objects)
    assert (moved.artifacts, moved.bytes) == (2, len(MODEL) + len(b"another model"))
    assert [(row[0], row[3]) for row in _rows(sessions)] == [(first, True), (second, True)]
    with stored() as session:
        found = read_artifact(session, second, ArtifactKind.model)
    assert found is not None and found[1] == b"another model"
    assert move_artifacts(sessions, objects).artifacts == 0  # nothing left to move

    s3.client().put_object(Bucket=s3.bucket, Key=f"{objects.prefix}jobs/9/model-left-by-a-crash", Body=b"x")
    assert delete_orphans(stored, objects) == 1
    assert len(s3.keys(objects.prefix)) == 2  # the named ones stay


def test_the_settings_name_a_bucket_and_a_prefix(monkeypatch: pytest.MonkeyPatch, s3: S3Server) -> None:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    settings = StoreSettings(artifact_store=f"s3://{s3.bucket}/lab/runs/", artifact_store_endpoint=s3.endpoint)
    objects = object_store_for(settings)
    assert objects is not None and (objects.bucket, objects.prefix) == (s3.bucket, "lab/runs/")
    objects.put(objects.prefix + "probe", b"reached with the usual AWS_* variables")
    assert objects.get(objects.prefix + "probe", 39) == b"reached with the usual AWS_* variables"
    assert objects.get(objects.prefix + "probe", 4) == b"reach"  # bounded: one byte more than the row says
    objects.delete([objects.prefix + "probe"])
    assert object_store_for(StoreSettings(artifact_store=None)) is None
    for wrong in ("s3:/bucket", "https://bucket/x", "s3://B/x", "s3://bucket?x=1"):
        with pytest.raises(ValueError, match="artifact_store"):
            StoreSettings(artifact_store=wrong)


def test_the_benchmark_measures_both_ways_at_a_tiny_size(tmp_path: Path, s3: S3Server) -> None:
    """bench/artifact_store.py's own measurement, so it cannot rot (timing nothing)."""
    work = Workload(jobs=2, checkpoints=3, checkpoint_bytes=3000, model_bytes=200_000, resnet_bytes=4000, rounds=1)
    rows = measure("SQLite", lambda where: f"sqlite:///{tmp_path}/{where.replace(' ', '-')}.db", tmp_path, s3, work)
    assert [(row.where, row.store_bytes, row.live_bytes) for row in rows] == [
        ("database", 0, 400_000),
        ("object store", 400_000, 400_000),  # the two models: every checkpoint went with its job's ending
    ]
    assert rows[0].database_bytes - rows[1].database_bytes >= 390_000  # the models, in pages


def test_a_store_that_does_not_answer_is_said_so_and_nothing_is_recorded(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, s3: S3Server
) -> None:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    nobody = f"http://127.0.0.1:{free_port()}"
    objects = object_store_for(StoreSettings(artifact_store="s3://artifacts/x", artifact_store_endpoint=nobody))
    assert objects is not None
    job_id = new_job(sessions)
    unanswered = make_session_factory(sessions.kw["bind"], objects)
    with pytest.raises(ArtifactStoreUnavailable, match=r"s3://artifacts \(writing x/jobs/"):
        with unit_of_work(unanswered) as session:
            put_artifact(session, job_id, ArtifactKind.checkpoint, b"state", 10)
    assert _rows(sessions) == []
