"""Starting from an earlier job's model (`init_from_job`) and deleting jobs (`DELETE /jobs/{id}`)."""

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from harness.waiting import wait_for_status
from store.engine import make_engine, make_session_factory
from store.tables import Artifact, Job, MetricPoint, SweepTrial
from tests.conftest import TINY_TRAINING, Service


def test_init_from_job_through_the_service(service: Service) -> None:
    spec = {"model": "torch_mlp", **TINY_TRAINING, "optimizer": "adam", "learning_rate": 0.01}
    with service.client() as client:
        source_id = client.post("/jobs", json=spec).json()["id"]
        source = wait_for_status(client, source_id, {"succeeded", "failed"})
        assert source["status"] == "succeeded", source["error"]
        final_test = [p for p in client.get(f"/jobs/{source_id}/metrics").json()["points"] if p["split"] == "test"][-1]

        more = client.post("/jobs", json={**spec, "init_from_job": source_id, "max_steps": 60})
        assert more.status_code == 201, more.text
        done = wait_for_status(client, more.json()["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded", done["error"]
        first = client.get(f"/jobs/{done['id']}/metrics").json()["points"][0]
        assert (first["step"], first["split"], first["accuracy"]) == (0, "test", final_test["accuracy"])
        assert first["loss"] == pytest.approx(final_test["loss"], rel=1e-6)

        refused = {
            "hidden layer 1 has 32 units there and 16 here": {**spec, "hidden_units": [16]},
            "it has 1 hidden layers ([32]) and this spec 2 ([32, 8])": {**spec, "hidden_units": [32, 8]},
            "its norm is 'none' and this spec's 'batchnorm'": {**spec, "norm": "batchnorm"},
            "it trained a torch_mlp, not a numpy_mlp": {"model": "numpy_mlp", "hidden_units": [32]},
        }
        for expected, bad in refused.items():
            answer = client.post("/jobs", json={**bad, "init_from_job": source_id})
            assert answer.status_code == 422 and expected in answer.json()["message"], answer.text
            assert answer.json()["message"].startswith("init_from_job: ")
        missing = client.post("/jobs", json={**spec, "init_from_job": 9999})
        assert missing.status_code == 422 and missing.json()["message"] == "init_from_job: job 9999 not found"
        long_job = client.post("/jobs", json={**spec, "max_steps": 1_000_000, "eval_every": 1000, "log_every": 100})
        wait_for_status(client, long_job.json()["id"], {"running"})
        unfinished = client.post("/jobs", json={**spec, "init_from_job": long_job.json()["id"]})
        assert unfinished.status_code == 422 and "is running: only succeeded" in unfinished.json()["message"]
        client.post(f"/jobs/{long_job.json()['id']}/cancel")


def predict(client: httpx.Client, job_id: int) -> httpx.Response:
    png = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(png, format="PNG")
    return client.post(
        "/predict", params={"job_id": job_id}, files=[("files", ("red.png", png.getvalue(), "image/png"))]
    )


def count_rows(sessions: sessionmaker[Session], job_id: int) -> dict[str, int]:
    with sessions() as session:
        return {
            "jobs": session.scalar(select(func.count()).select_from(Job).where(Job.id == job_id)) or 0,
            "points": session.scalar(select(func.count()).where(MetricPoint.job_id == job_id)) or 0,
            "artifacts": session.scalar(select(func.count()).where(Artifact.job_id == job_id)) or 0,
            "trials": session.scalar(select(func.count()).where(SweepTrial.job_id == job_id)) or 0,
        }


def test_delete_removes_a_finished_job_and_everything_it_stored(service: Service, database_url: str) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    spec = {"model": "torch_mlp", **TINY_TRAINING}
    with service.client() as client:
        job_id = client.post("/jobs", json=spec).json()["id"]
        assert wait_for_status(client, job_id, {"succeeded", "failed"})["status"] == "succeeded"
        before = count_rows(sessions, job_id)
        assert before["jobs"] == 1 and before["points"] > 0 and before["artifacts"] == 1
        assert predict(client, job_id).status_code == 200  # its model is now in the API's cache
        long_job = client.post("/jobs", json={**spec, "max_steps": 1_000_000, "eval_every": 1000, "log_every": 100})
        running_id = long_job.json()["id"]
        wait_for_status(client, running_id, {"running"})

        refused = client.delete(f"/jobs/{running_id}")
        assert refused.status_code == 409 and "cancel it first" in refused.json()["detail"]
        gone = client.delete(f"/jobs/{job_id}")
        assert gone.status_code == 204 and gone.content == b""
        assert count_rows(sessions, job_id) == {"jobs": 0, "points": 0, "artifacts": 0, "trials": 0}
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/metrics", f"/jobs/{job_id}/model", f"/jobs/{job_id}/plot.png"):
            assert client.get(path).status_code == 404, path
        assert predict(client, job_id).status_code == 404  # not answered from the cache
        assert client.delete(f"/jobs/{job_id}").status_code == 404

        client.post(f"/jobs/{running_id}/cancel")
        wait_for_status(client, running_id, {"cancelled"})
        assert client.delete(f"/jobs/{running_id}").status_code == 204
        assert count_rows(sessions, running_id)["points"] == 0
    engine.dispose()


def test_checkpoints_are_replaced_then_dropped_and_the_database_does_not_grow_with_them(
    service: Service, database_url: str
) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    spec = {"model": "torch_mlp", **TINY_TRAINING, "hidden_units": [64], "optimizer": "adam", "max_steps": 600,
            "checkpoint_every": 10, "eval_every": 200}  # fmt: skip
    with service.client() as client:
        job_id = client.post("/jobs", json=spec).json()["id"]
        sizes: set[int] = set()
        most_at_once = 0
        while client.get(f"/jobs/{job_id}").json()["status"] in ("queued", "running"):
            with sessions() as session:
                rows = session.execute(
                    select(Artifact.size_bytes).where(Artifact.job_id == job_id, Artifact.kind == "checkpoint")
                ).all()
            most_at_once = max(most_at_once, len(rows))
            sizes.update(size for (size,) in rows)
        assert wait_for_status(client, job_id, {"succeeded", "failed"})["status"] == "succeeded"
    with sessions() as session:
        kinds = session.scalars(select(Artifact.kind).where(Artifact.job_id == job_id)).all()
    assert kinds == ["model"]  # the checkpoint went with the job's end; the model stays
    assert most_at_once == 1 and sizes  # 60 checkpoints written, one kept at a time
    if database_url.startswith("sqlite"):
        with engine.connect() as connection:  # the write-ahead log into the file, as SQLite does on its own
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        on_disk = Path(database_url.removeprefix("sqlite:///")).stat().st_size
        assert on_disk < 10 * max(sizes), (on_disk, max(sizes))  # 60 kept would be 60x
    engine.dispose()
