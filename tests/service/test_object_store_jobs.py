"""Issue 46: with ARTIFACT_STORE, a real worker's checkpoints and model go to the S3 server (SeaweedFS on loopback)
and not into the database; a killed worker's job resumes from the stored checkpoint on another worker; the model
answers predictions and downloads from the store; deleting the job deletes its objects."""

import hashlib
import io
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from harness.s3_server import S3Server
from harness.waiting import wait_for_exit, wait_for_status, wait_for_step, wait_until
from store.engine import make_engine, make_session_factory
from store.tables import Artifact
from tests.conftest import LONG_JOB, Service, children_of, running_service


@pytest.fixture
def stored_service(tmp_path: Path, data_dir: Path, database_url: str, s3: S3Server) -> Iterator[Service]:
    prefix = f"svc-{uuid.uuid4().hex[:12]}"
    with running_service(tmp_path, data_dir, database_url, s3.env(prefix)) as service:
        service.start_worker()
        yield service


def _rows(sessions: sessionmaker[Session], job_id: int) -> dict[str, tuple[str | None, bool]]:
    """kind -> (its object key, whether its bytes are in the row)"""
    with sessions() as session:
        found = session.execute(
            select(Artifact.kind, Artifact.object_key, Artifact.data.is_not(None)).where(Artifact.job_id == job_id)
        )
        return {kind: (key, in_row) for kind, key, in_row in found}


def test_checkpoints_and_the_model_live_in_the_store_resume_predict_and_go_with_the_job(
    stored_service: Service, database_url: str, s3: S3Server
) -> None:
    service, prefix = stored_service, stored_service.env["ARTIFACT_STORE"].split("/", 3)[3] + "/"
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)  # no store here: the rows alone are read
    worker = service.processes[-1]
    with service.client() as client:
        job = client.post("/jobs", json=LONG_JOB).json()
        job_id = job["id"]
        wait_for_step(client, job_id, 250)
        wait_until(lambda: "checkpoint" in _rows(sessions, job_id), 30, "a checkpoint recorded")

        def named_and_stored() -> bool:
            """The row's key is in the bucket (read again: a newer checkpoint may replace it between the two reads)."""
            key, in_row = _rows(sessions, job_id)["checkpoint"]
            assert key is not None and not in_row  # the key in the row, no bytes
            return key in s3.keys(prefix)

        wait_until(named_and_stored, 10, "the checkpoint's row naming an object in the bucket")

        (child,) = children_of(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)  # its child hears of it, checkpoints (to the store) and the job requeues
        wait_for_status(client, job_id, {"queued"}, timeout=30)
        wait_for_exit(child, timeout=10)
        service.start_worker("second")
        done = wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=120)
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 2
        attempts = client.get(f"/jobs/{job_id}/attempts").json()["data"]
        assert attempts[1]["resumed_from_step"] >= 250  # from the stored checkpoint

        rows = _rows(sessions, job_id)
        assert list(rows) == ["model"]  # the checkpoint's row went with the ending, and its object after the commit
        model_key, in_row = rows["model"]
        assert not in_row and model_key is not None and s3.keys(prefix) == [model_key]

        png = io.BytesIO()
        Image.new("RGB", (32, 32), (200, 30, 30)).save(png, format="PNG")
        predicted = client.post(
            "/predict", params={"job_id": job_id}, files=[("files", ("red.png", png.getvalue(), "image/png"))]
        )
        assert predicted.status_code == 200, predicted.text
        downloaded = client.get(f"/jobs/{job_id}/model")
        assert downloaded.status_code == 200
        assert hashlib.sha256(downloaded.content).hexdigest() == model_key.rsplit("-", 1)[1]

        assert client.delete(f"/jobs/{job_id}").status_code == 204
        assert s3.keys(prefix) == []
    engine.dispose()
