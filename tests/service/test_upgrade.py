"""Today's service on a database an older release wrote (tests/fixtures/make_release_database.py made it with the
service at commit 5dcd5d0): the migrations run at start, every row reads as that release answered it, models
predict as they did, tokens still open the door, and the job whose worker was lost resumes from its checkpoint."""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cifar_jobs import Client
from harness.waiting import wait_until
from tests.conftest import Service, running_service
from tests.fixtures.make_release_database import COMMIT, png_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEPT = ("id", "name", "model", "status", "tags", "notes", "final_metrics", "owner", "attempts")


@pytest.fixture
def release() -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"release-{COMMIT}.json").read_text()))


def test_a_database_from_an_older_release_reads_predicts_and_resumes(
    tmp_path: Path, data_dir: Path, release: dict[str, Any]
) -> None:
    database = tmp_path / "jobs.db"
    shutil.copyfile(FIXTURES / f"release-{COMMIT}.db", database)
    settings = {"API_KEY": release["admin_key"], "STALE_AFTER_SECONDS": "2"}
    with (
        running_service(tmp_path, data_dir, f"sqlite:///{database}", settings) as service,
        Client(service.url, release["admin_key"]) as admin,
    ):
        read_as_before(admin, release)
        with Client(service.url, release["alice"]["token"]) as alice:
            assert alice.call("GET", "/users/me")["name"] == "alice"  # her token, stored as a hash then, still works
        resumes(service, admin, release["running"])


def read_as_before(admin: Client, release: dict[str, Any]) -> None:
    for job_id, then in release["jobs"].items():
        job = admin.job(int(job_id))
        assert {key: job.data[key] for key in KEPT} == {key: then["job"][key] for key in KEPT}, job_id
        assert job.data["trained_model"]["sha256"] == then["job"]["trained_model"]["sha256"]
        assert job.curve() == then["points"]
        answer = admin.predict(png_of(release["image"]), job=job, top_k=10)[0]
        np.testing.assert_allclose([answer["probabilities"][k] for k in then["probabilities"]],
                                   list(then["probabilities"].values()), rtol=1e-6)  # fmt: skip
    sweep = admin.sweep(release["sweep"]["id"])
    assert sweep.status == "finished"
    assert [trial["job_id"] for trial in sweep.data["leaderboard"]] == [
        trial["job_id"] for trial in release["sweep"]["leaderboard"]
    ]
    tagged = admin.runs(tag="lab1")
    assert [row["id"] for row in tagged] == [
        int(i) for i, then in release["jobs"].items() if "lab1" in then["job"]["tags"]
    ]


def resumes(service: Service, admin: Client, then: dict[str, Any]) -> None:
    """Its worker was killed mid-run: a worker of today's takes it from its last checkpoint (the curve before it the
    same, no step twice)."""
    service.start_worker()
    job = admin.job(then["job"]["id"])
    killed_at = then["job"]["progress"]["step"]
    wait_until(lambda: job.refresh().data["attempts"] >= 2 and job.data["progress"]["step"] > killed_at, 120,
               lambda: f"job {job.id} resuming: {job.data}")  # fmt: skip
    job.cancel()
    steps = [point["step"] for point in job.curve() if point["split"] == "train"]
    assert steps == sorted(set(steps))  # no step twice
    before = [point for point in then["points"] if point["step"] <= 300]  # up to a checkpoint it surely had
    assert job.curve()[: len(before)] == before
