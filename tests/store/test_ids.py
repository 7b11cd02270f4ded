"""Ids are never given again: a deleted job's (or sweep's) id would make bookmarks, CSV files, compare
links and notes point at another run. SQLite hands out the highest id + 1 unless the table says
AUTOINCREMENT (migration 0009); PostgreSQL's sequences never go back."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import ApiSettings
from store.sweeps import create_sweep
from store.tables import Sweep
from tests.conftest import local_client


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))) as client:
        yield client


def test_deleting_the_newest_job_does_not_give_its_id_again(client: TestClient) -> None:
    ids = []
    for _ in range(2):
        job = client.post("/jobs", json={"model": "torch_mlp"}).json()
        assert client.post(f"/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
        ids.append(job["id"])
    assert client.delete(f"/jobs/{ids[-1]}").status_code == 204
    again = client.post("/jobs", json={"model": "torch_mlp"})
    assert again.status_code == 201 and again.json()["id"] == ids[-1] + 1
    assert again.headers["location"] == f"/jobs/{ids[-1] + 1}"
    assert client.get(f"/jobs/{ids[-1]}").status_code == 404


def test_deleting_the_newest_sweep_does_not_give_its_id_again(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        first, second = (create_sweep(session, None, {}).id for _ in range(2))
        session.commit()
        session.execute(delete(Sweep).where(Sweep.id == second))
        session.commit()
        assert create_sweep(session, None, {}).id == second + 1 and first < second
        session.commit()
