"""Model kinds as the store and the API see them: an executor claims only jobs of the kinds it has installed, a
job of a kind no running executor has says so while it waits, and a stored job of a kind no longer installed (its
plugin uninstalled) still lists and shows its spec and curve while its model answers a 409 naming the kind. In
process, on the real database."""

import importlib.util
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydantic
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from PIL import Image
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import ApiSettings
from models.artifacts import ModelArtifact, pack_model
from models.data.preprocessing import fit_normalization
from models.kinds.numpy_mlp import build
from specs import parse_job_spec
from store.attempts import claim_next, succeed_attempt
from store.executors import alive_since, register_executor, waiting_reason
from store.jobs import create_job, find_job
from store.points import add_points
from store.tables import Job
from store.unit_of_work import transact, unit_of_work
from tests.conftest import local_client
from tests.datagen import CLASSES

pytestmark = pytest.mark.store


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))) as client:
        yield client


def test_an_executor_claims_only_the_kinds_it_has_and_a_job_no_executor_has_says_why(
    sessions: sessionmaker[Session],
) -> None:
    with unit_of_work(sessions) as session:
        vit = create_job(session, parse_job_spec({"model": "vit"}))[0].id
        register_executor(session, "mlp-only", 0, 4, 4, {"torch_mlp": "", "numpy_mlp": ""})
    with sessions() as session:
        reason = waiting_reason(session, find_job(session, vit), alive_since(60))
    assert reason is not None and "no running worker has the model kind 'vit' installed" in reason
    assert claim_next(sessions, "mlp-only", 0, 4, 4, None, {"torch_mlp", "numpy_mlp"}) is None  # not its kind

    with unit_of_work(sessions) as session:
        register_executor(session, "with-vit", 0, 4, 4, {"torch_mlp": "", "vit": "0.1.0"})
    with sessions() as session:
        assert waiting_reason(session, find_job(session, vit), alive_since(60)) is None
    claimed = claim_next(sessions, "with-vit", 0, 4, 4, None, {"torch_mlp", "vit"})
    assert claimed is not None and claimed.job_id == vit


def _job_of_an_uninstalled_kind(sessions: sessionmaker[Session]) -> int:
    """A succeeded job with a model and a curve, whose kind (as if its plugin had been uninstalled since) is
    `gone_kind`."""
    spec = parse_job_spec({"model": "numpy_mlp", "hidden_units": [8]})
    images = np.random.default_rng(0).integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    stored = {**spec.model_dump(mode="json"), "model": "gone_kind"}
    weights = dict(build(spec, 10).state_dict())  # type: ignore[arg-type]
    model = pack_model(ModelArtifact(stored, CLASSES, fit_normalization("assignment", images), weights))
    with unit_of_work(sessions) as session:
        job_id = create_job(session, spec)[0].id
    attempt = claim_next(sessions, "w")
    assert attempt is not None
    transact(sessions, lambda session: add_points(session, job_id, [(10, "train", 2.1, 0.2)]))
    assert transact(sessions, lambda session: succeed_attempt(session, attempt, {"test_accuracy": 0.3}, 10, model))
    with unit_of_work(sessions) as session:
        gone = {**spec.stored_spec(), "model": "gone_kind"}
        session.execute(update(Job).where(Job.id == job_id).values(model="gone_kind", spec=gone))
    return job_id


def test_a_job_of_an_uninstalled_kind_lists_and_its_model_answers_409(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    job_id = _job_of_an_uninstalled_kind(sessions)
    listed = client.get("/jobs")
    assert listed.status_code == 200 and [job["model"] for job in listed.json()["data"]] == ["gone_kind"]
    shown = client.get(f"/jobs/{job_id}")
    assert shown.status_code == 200 and shown.json()["spec"]["hidden_units"] == [8]
    assert client.get(f"/jobs/{job_id}/metrics").json()["points"][0]["loss"] == pytest.approx(2.1)

    picture = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(picture, "PNG")
    for params in ({"job_id": job_id}, {}):  # asked for by id, and as the best job
        refused = client.post("/predict", params=params, files=[("files", ("red.png", picture.getvalue()))])
        assert refused.status_code == 409, refused.text
        assert "the model kind 'gone_kind' is not installed" in refused.json()["message"]
    seeded = client.post("/jobs", json={"model": "numpy_mlp", "hidden_units": [8], "init_from_job": job_id})
    assert seeded.status_code == 409 and "'gone_kind' is not installed" in seeded.json()["message"]
    assert client.get(f"/jobs/{job_id}/model").status_code == 200  # the file itself can still be downloaded


def test_the_example_plugins_kind_is_in_models_and_in_the_openapi_document(client: TestClient) -> None:
    """examples/vit_kind, installed into the test environment: listed with its defaults, and a client made from
    the OpenAPI document (its schemas, as a generated client validates with them) takes and refuses its specs."""
    kinds = {kind["model"]: kind["defaults"] for kind in client.get("/models").json()["models"]}
    assert kinds["vit"]["depth"] == 6 and kinds["vit"]["optimizer"] == "adamw" and kinds["vit"]["priority"] == 0

    document = client.get("/openapi.json").json()
    body = document["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"]["mapping"]["vit"] == "#/components/schemas/ViTSpec"
    schemas = {**document["components"]["schemas"], "JobRequest": body}

    def validator(name: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}})

    validator("JobRequest").validate({"model": "vit", "depth": 2, "width": 64, "heads": 4, "tags": ["mine"]})
    assert not validator("JobRequest").is_valid({"model": "vit", "depth": 0})
    assert [list(error.absolute_path) for error in validator("ViTSpec").iter_errors({"model": "vit", "depth": 0})] == [
        ["depth"]
    ]
    accepted = client.post("/jobs", json={"model": "vit", "depth": 2})
    assert accepted.status_code == 201 and accepted.json()["spec"]["width"] == 192
    refused = client.post("/jobs", json={"model": "vit", "width": 100, "heads": 3})
    assert refused.status_code == 422 and "width 100 is not a multiple of heads 3" in refused.json()["message"]


def test_a_client_generated_from_the_openapi_document_validates_the_plugins_specs(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 43: the OpenAPI document describes the plugin's spec well enough for a generated client
    (datamodel-code-generator's pydantic models) to take and refuse its specs as the API does."""
    from datamodel_code_generator import DataModelType, InputFileType, generate

    generated = tmp_path / "generated_client.py"
    generate(json.dumps(client.get("/openapi.json").json()), input_file_type=InputFileType.OpenAPI, output=generated,
             output_model_type=DataModelType.PydanticV2BaseModel, formatters=[])  # fmt: skip
    loaded = importlib.util.spec_from_file_location("generated_client", generated)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    monkeypatch.setitem(sys.modules, "generated_client", module)  # pydantic resolves its annotations there
    loaded.loader.exec_module(module)
    vit = module.ViTSpec.model_validate({"model": "vit", "depth": 2, "width": 64, "heads": 4})
    assert (vit.depth, vit.width, vit.heads) == (2, 64, 4)
    with pytest.raises(pydantic.ValidationError) as refused:
        module.ViTSpec.model_validate({"model": "vit", "depth": 0})
    assert [error["loc"] for error in refused.value.errors()] == [("depth",)]
    sent = client.post("/jobs", json=vit.model_dump(mode="json", exclude_unset=True))
    assert sent.status_code == 201 and sent.json()["spec"]["depth"] == 2
