"""Bad specs are refused with a 422 that names the field; good ones get the assignment's defaults."""

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from app.access.permissions import PUBLIC
from app.main import create_app
from app.settings import ApiSettings
from store.points import add_points
from tests.conftest import local_client


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url)
    with local_client(create_app(settings)) as client:
        yield client


BAD_SPECS = [
    ({"model": "torch_mlp", "hidden_units": []}, "hidden_units"),
    ({"model": "torch_mlp", "hidden_units": [0]}, "hidden_units[0]"),
    ({"model": "torch_mlp", "hidden_units": [16384, 16384, 16384]}, "hidden_units"),
    ({"model": "torch_mlp", "hidden_units": "100"}, "hidden_units"),
    ({"model": "torch_mlp", "learning_rate": -1}, "learning_rate"),
    ({"model": "torch_mlp", "learning_rate": "fast"}, "learning_rate"),
    ({"model": "torch_mlp", "batch_size": 0}, "batch_size"),
    ({"model": "torch_mlp", "batch_size": 10**6}, "batch_size"),
    ({"model": "torch_mlp", "max_steps": 10**9}, "max_steps"),
    ({"model": "torch_mlp", "eval_every": 0}, "eval_every"),
    ({"model": "torch_mlp", "optimizer": "rmsprop"}, "optimizer"),
    ({"model": "torch_mlp", "device": "tpu"}, "device"),
    ({"model": "torch_mlp", "dataset": "../etc"}, "dataset"),
    ({"model": "torch_mlp", "dataset": "/abs/path"}, "dataset"),
    ({"model": "torch_mlp", "dataset": ".hidden"}, "dataset"),
    ({"model": "torch_mlp", "name": "x" * 500}, "name"),
    ({"model": "torch_mlp", "name": "nul\x00inside"}, "name"),  # PostgreSQL text cannot hold NUL
    ({"model": "torch_mlp", "learn_rate": 0.1}, "learn_rate"),
    ({"model": "svm"}, "model"),
    ({"model": "numpy_mlp", "optimizer": "adam"}, "optimizer"),
    ({"model": "numpy_mlp", "device": "cuda"}, "device"),
    ({"model": "numpy_mlp", "dtype": "float16"}, "dtype"),
    ({"model": "numpy_mlp", "hidden_units": [-5]}, "hidden_units[0]"),
    ({"hidden_units": [100]}, "model"),
]


@pytest.mark.parametrize(("spec", "field"), BAD_SPECS)
def test_bad_spec_is_422_naming_the_field(client: TestClient, spec: dict[str, Any], field: str) -> None:
    response = client.post("/jobs", json=spec)
    assert response.status_code == 422
    body = response.json()
    assert body["message"].startswith(f"{field}:"), body["message"]
    assert body["detail"] and "input" not in body["detail"][0]


def test_body_that_is_not_json_is_422(client: TestClient) -> None:
    response = client.post("/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_defaults_are_the_assignments(client: TestClient) -> None:
    response = client.post("/jobs", json={"model": "torch_mlp"})
    assert response.status_code == 201
    spec = response.json()["spec"]
    assert spec["hidden_units"] == [100]
    assert spec["learning_rate"] == 1e-3
    assert spec["optimizer"] == "sgd"
    assert (spec["batch_size"], spec["max_steps"], spec["eval_every"], spec["seed"]) == (200, 1400, 100, 42)
    assert spec["preprocessing"] == "assignment" and spec["dataset"] == "cifar10" and spec["log_every"] == 10


def test_list_is_newest_first_and_paginated(client: TestClient) -> None:
    ids = [client.post("/jobs", json={"model": "torch_mlp", "name": f"j{i}"}).json()["id"] for i in range(5)]
    page = client.get("/jobs", params={"limit": 2, "offset": 1}).json()
    assert page["count"] == 5
    assert [j["id"] for j in page["data"]] == [ids[3], ids[2]]
    assert client.get("/jobs", params={"status": "running"}).json() == {"data": [], "count": 0}
    assert client.get("/jobs", params={"status": "bogus"}).status_code == 422
    assert client.get("/jobs", params={"limit": 0}).status_code == 422
    assert client.get("/jobs", params={"model": "torch\x00mlp"}).status_code == 422  # found by the fuzz run
    assert client.get("/jobs", params={"model": "torch_mlp"}).json()["count"] == 5
    assert client.get("/jobs", params={"offset": 2**62}).json() == {"data": [], "count": 5}
    assert client.get(f"/jobs/{ids[0]}/metrics", params={"since": 2**31 - 1}).json()["points"] == []
    assert client.get(f"/jobs/{ids[0]}/metrics", params={"since": 2**31}).status_code == 422


@pytest.mark.parametrize("path", ["/jobs/0", "/jobs/-1", f"/jobs/{2**70}", "/jobs/abc"])
def test_out_of_range_job_ids_are_422(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 422


def test_numpy_mlp_refusals_say_why(client: TestClient) -> None:
    adam = client.post("/jobs", json={"model": "numpy_mlp", "optimizer": "adam"}).json()["message"]
    assert "plain SGD only" in adam
    cuda = client.post("/jobs", json={"model": "numpy_mlp", "device": "cuda"}).json()["message"]
    assert "CPU only" in cuda
    ok = client.post("/jobs", json={"model": "numpy_mlp"})
    assert ok.status_code == 201
    assert ok.json()["spec"]["hidden_units"] == [100] and ok.json()["spec"]["learning_rate"] == 1e-3


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"model": "torch_mlp", "momentum": 0.5}, "momentum", 'only to "optimizer": "sgd_momentum"'),
        ({"model": "torch_mlp", "lr_schedule": "step"}, "lr_step_every", "required"),
        ({"model": "torch_mlp", "lr_step_every": 10}, "lr_step_every", 'only to "lr_schedule": "step"'),
        ({"model": "torch_mlp", "lr_step_gamma": 0.5}, "lr_step_gamma", "only to"),
        ({"model": "torch_mlp", "warmup_steps": 2000}, "warmup_steps", "more than max_steps"),
        ({"model": "torch_mlp", "dropout": 1.5}, "dropout", "less than or equal"),
        ({"model": "torch_mlp", "norm": "groupnorm"}, "norm", "layernorm_manual"),
        ({"model": "torch_mlp", "activation": "swish"}, "activation", "gelu"),
        ({"model": "torch_mlp", "label_smoothing": -0.1}, "label_smoothing", "greater than"),
        ({"model": "torch_mlp", "augmentation": "mixup"}, "augmentation", "crop_flip"),
    ],
)
def test_options_that_do_not_fit_are_named(client: TestClient, spec: dict[str, Any], field: str, words: str) -> None:
    response = client.post("/jobs", json=spec)
    assert response.status_code == 422
    message = response.json()["message"]
    assert message.startswith(f"{field}:") and words in message, message


def test_every_option_has_a_description_in_the_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    for kind in ("TorchMLPSpec", "NumpyMLPSpec"):
        for name, prop in schema[kind]["properties"].items():
            assert prop.get("description"), f"{kind}.{name} has no description"


def test_unexpected_error_is_a_500_with_an_id_and_no_trace(tmp_path: Path, database_url: str) -> None:
    app = create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))

    @app.get("/boom", dependencies=[PUBLIC])  # declared: a route that declares nothing never runs
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with local_client(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    detail = response.json()["message"]
    assert detail.startswith("internal error; quote id ") and response.json()["detail"] == detail
    assert "secret internal detail" not in response.text and "Traceback" not in response.text


def documented_examples(schema: dict[str, Any]) -> list[tuple[str, str, object]]:
    """(method, path, body) for every example request body the OpenAPI document shows in Swagger UI:
    each operation's `examples` per media type, and the `examples` of the schemas those bodies use."""
    components = schema["components"]["schemas"]
    found: list[tuple[str, str, object]] = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            for media in op.get("requestBody", {}).get("content", {}).values():
                found += [(method, path, example["value"]) for example in media.get("examples", {}).values()]
                ref_schema = media.get("schema", {})
                refs = [ref_schema, *ref_schema.get("oneOf", []), *ref_schema.get("anyOf", [])]
                for ref in refs:
                    if "$ref" in ref:
                        target = components[ref["$ref"].rsplit("/", 1)[-1]]
                        refs += target.get("oneOf", []) + target.get("anyOf", [])
                        found += [(method, path, value) for value in target.get("examples", [])]
    return found


def test_every_example_in_the_docs_is_accepted(client: TestClient) -> None:
    examples = documented_examples(client.get("/openapi.json").json())
    assert len(examples) >= 7  # the three POST /jobs examples and one per model kind's schema
    for method, path, body in examples:
        response = client.request(method.upper(), path, json=body)
        assert 200 <= response.status_code < 300, (method, path, body, response.text)


def test_every_error_answer_has_one_shape(client: TestClient) -> None:
    """`message` (naming the field, file or job) and `detail`, whatever refused the request."""
    job = client.post("/jobs", json={"model": "torch_mlp"}).json()
    client.post(f"/jobs/{job['id']}/cancel")
    answers = {
        "unknown job": client.get("/jobs/999"),
        "unknown route": client.get("/nowhere"),
        "wrong method": client.put("/jobs"),
        "finished job": client.post(f"/jobs/{job['id']}/cancel"),
        "no model": client.get(f"/jobs/{job['id']}/model"),
        "bad spec": client.post("/jobs", json={"model": "torch_mlp", "batch_size": 0}),
        "unknown parameter": client.get("/jobs", params={"satus": "running"}),
        "bad host": client.get("/jobs", headers={"Host": "attacker.example"}),
        "other origin": client.post("/jobs", json={}, headers={"Origin": "http://evil.example"}),
        "large body": client.post("/jobs", content=b"x" * 100_000, headers={"content-type": "application/json"}),
        "not an image": client.post("/predict", files=[("files", ("a.txt", b"hi", "text/plain"))]),
    }
    expected = {
        "unknown job": 404,
        "unknown route": 404,
        "wrong method": 405,
        "finished job": 409,
        "no model": 409,
        "bad spec": 422,
        "unknown parameter": 422,
        "bad host": 400,
        "other origin": 403,
        "large body": 413,
        "not an image": 409,
    }  # fmt: skip  (no job has a model: 409 before any file is read)
    for what, response in answers.items():
        assert response.status_code == expected[what], (what, response.text)
        body = response.json()
        assert isinstance(body["message"], str) and body["message"] and "detail" in body, (what, body)
    assert answers["unknown job"].json()["message"].startswith("job 999 not found")
    assert "/docs" in answers["unknown route"].json()["message"]
    assert answers["finished job"].json()["message"].startswith(f"job {job['id']} has already ended (cancelled)")
    assert "ALLOWED_HOSTS" in answers["bad host"].json()["message"]


def test_unknown_query_parameters_are_refused_naming_them(client: TestClient) -> None:
    for path, params in (("/jobs", {"satus": "queued"}), ("/jobs/1/metrics", {"since": 3, "step": 4}),
                         ("/healthz", {"verbose": 1}), ("/sweeps", {"limit": 5, "page": 2})):  # fmt: skip
        response = client.get(path, params=params)
        assert response.status_code == 422, (path, response.text)
        unknown = next(name for name in params if name not in ("since", "limit"))
        assert response.json()["message"].startswith(f"{unknown}: unknown query parameter"), response.text
    assert client.get("/jobs", params={"status": "queued", "limit": 5}).status_code == 200


def test_max_points_minimum_says_why(client: TestClient) -> None:
    job = client.post("/jobs", json={"model": "torch_mlp"}).json()
    response = client.get(f"/jobs/{job['id']}/metrics", params={"max_points": 5})
    assert response.status_code == 422
    message = response.json()["message"]
    assert message.startswith("max_points: Input should be greater than or equal to 14: ") and "extremes" in message


def test_metrics_filter_by_split(client: TestClient, sessions: sessionmaker[Session]) -> None:
    job = client.post("/jobs", json={"model": "torch_mlp"}).json()
    with sessions() as session:
        add_points(session, job["id"], [(s, "train", 1.0, 0.5) for s in range(10, 110, 10)] + [(100, "test", 2, 0.4)])
        session.commit()
    metrics = f"/jobs/{job['id']}/metrics"
    tests = client.get(metrics, params={"split": "test"}).json()["points"]
    assert [(p["step"], p["split"]) for p in tests] == [(100, "test")]
    assert {p["split"] for p in client.get(metrics, params={"split": "train"}).json()["points"]} == {"train"}
    assert len(client.get(metrics, params={"split": "train", "max_points": 14}).json()["points"]) <= 14
    assert client.get(f"{metrics}.csv", params={"split": "test"}).text.splitlines()[1:] == ["100,test,2.0,0.4"]
    assert client.get(metrics, params={"split": "validation"}).status_code == 422


def test_the_openapi_document_lists_each_routes_errors(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"422", "500"} <= set(responses), (method, path)
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith(("/ErrorMessage", "/ValidationErrorMessage")), (method, path, code)
            if "{job_id}" in path or "{sweep_id}" in path:
                assert "404" in responses, (method, path)


@pytest.mark.parametrize("path", ["/jobs/999/metrics.csv", "/jobs/999/plot.png", "/jobs/999/metrics?max_points=50"])
def test_unknown_jobs_are_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and response.json()["message"].startswith("job 999 not found")


def test_unknown_job_is_404_and_docs_are_served_locally(client: TestClient) -> None:
    for path in ("/jobs/999", "/jobs/999/metrics"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["message"] == "job 999 not found (GET /jobs lists the jobs there are)"
    assert client.post("/jobs/999/cancel").status_code == 404
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "/static/docs/swagger-ui-bundle.js" in docs.text
    bundle = client.get("/static/docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    hidden = client.get("/openapi.json").json()["components"]["schemas"]["TorchMLPSpec"]["properties"]["hidden_units"]
    assert hidden["description"]


def test_no_succeeded_job_at_all_is_409(client: TestClient) -> None:
    image = io.BytesIO()
    Image.new("RGB", (32, 32)).save(image, "PNG")
    response = client.post("/predict", files=[("files", ("a.png", image.getvalue(), "image/png"))])
    assert response.status_code == 409 and "no succeeded job" in response.json()["message"]


def test_request_body_over_the_cap_is_413(tmp_path: Path, database_url: str) -> None:
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, max_request_bytes=100_000)
    with local_client(create_app(settings)) as client:
        response = client.post("/predict", files=[("files", ("big.png", b"x" * 200_000, "image/png"))])
    assert response.status_code == 413 and "over the limit of 100,000 bytes" in response.json()["message"]
