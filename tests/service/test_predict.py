"""Trained models as artifacts and POST /predict, end to end on a real server and worker."""

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from cifar_jobs import Client, SpecRefused
from harness.postgres import PostgresServer
from harness.waiting import wait_for_status
from models.artifacts import unpack_model
from models.kinds import load_predictor
from models.training.precision import bf16_is_fast_on_cpu
from tests.conftest import Service, running_service
from tests.datagen import CLASSES, class_images, write_cifar_batches

TINY_JOBS = {
    "numpy_mlp": {"model": "numpy_mlp", "hidden_units": [32], "learning_rate": 0.05, "batch_size": 50,
                  "max_steps": 80, "eval_every": 40, "preprocessing": "standardize"},
    "torch_mlp": {"model": "torch_mlp", "hidden_units": [32], "optimizer": "adam", "learning_rate": 0.01,
                  "batch_size": 50, "max_steps": 80, "eval_every": 40, "norm": "batchnorm"},
    # the convolutional kinds train a few steps only: enough to store and serve a model
    "convnet": {"model": "convnet", "batch_size": 10, "max_steps": 4, "eval_every": 4},
    "resnet18": {"model": "resnet18", "batch_size": 10, "max_steps": 4, "eval_every": 4},
    "speedrun": {"model": "speedrun", "widths": [16, 32, 32], "batch_size": 10, "max_steps": 4, "eval_every": 4},
    # the example plugin (examples/vit_kind, installed into the test environment): one block, 16 tokens
    "vit": {"model": "vit", "width": 32, "depth": 1, "heads": 2, "patch_size": 8, "batch_size": 50, "max_steps": 80,
            "eval_every": 40, "learning_rate": 0.003, "warmup_steps": 10, "augmentation": "none",
            "preprocessing": "standardize"},
}  # fmt: skip
FITTED_KINDS = ["numpy_mlp", "torch_mlp", "vit"]  # trained long enough to give every training image its label back


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer | None
) -> Iterator[tuple[Service, dict[str, int]]]:
    """One server and worker for the module, with one succeeded tiny job of each kind."""
    folder = tmp_path_factory.mktemp("predict")
    write_cifar_batches(folder / "data" / "cifar10")
    url = postgres_server.new_database_url() if postgres_server else f"sqlite:///{folder / 'jobs.db'}"
    with running_service(folder, folder / "data", url) as service:
        service.start_worker()
        with service.client() as client:
            ids = {kind: client.post("/jobs", json=spec).json()["id"] for kind, spec in TINY_JOBS.items()}
            for kind, job_id in ids.items():
                job = wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=300)
                assert job["status"] == "succeeded", f"{kind}: {job['error']}"
        yield service, ids


def png(image: np.ndarray, size: tuple[int, int] | None = None, mode: str = "RGB") -> bytes:
    picture = Image.fromarray(image.transpose(1, 2, 0)).convert(mode)
    if size:
        picture = picture.resize(size, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def training_images(n_per_class: int = 2) -> tuple[np.ndarray, np.ndarray]:
    return class_images(n_per_class, seed=1)  # the generator the training batches came from


@pytest.mark.parametrize("kind", FITTED_KINDS)
def test_uploaded_training_images_get_their_labels_back(trained: tuple[Service, dict[str, int]], kind: str) -> None:
    service, ids = trained
    images, labels = training_images()
    files = [("files", (f"img{i}.png", png(img), "image/png")) for i, img in enumerate(images)]
    with service.client() as client:
        response = client.post("/predict", params={"job_id": ids[kind], "top_k": 2}, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["job_id"] == ids[kind] and body["model"] == kind
    predictions = body["predictions"]
    assert [p["filename"] for p in predictions] == [f"img{i}.png" for i in range(len(images))]
    assert [p["class_index"] for p in predictions] == labels.tolist()
    assert [p["label"] for p in predictions] == [CLASSES[i] for i in labels]
    for p in predictions:
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        assert len(p["top_k"]) == 2 and p["top_k"][0]["label"] == p["label"]
        assert p["top_k"][0]["probability"] >= p["top_k"][1]["probability"]


def model_cache_metrics(client: httpx.Client) -> dict[str, float]:
    """The model cache's samples in /metrics, parsed as Prometheus would."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.name.startswith(("cifar_model_cache", "cifar_model_load"))
    }


def test_base64_json_and_multipart_give_the_same_answer(trained: tuple[Service, dict[str, int]]) -> None:
    service, ids = trained
    images, _ = training_images(1)
    # other sizes and modes go through the same resize as training data
    blobs = [png(images[0]), png(images[1], size=(64, 48)), png(images[2], mode="RGBA")]
    with service.client() as client:
        multipart = client.post(
            "/predict",
            params={"job_id": ids["torch_mlp"]},
            files=[("files", (f"f{i}.png", b, "image/png")) for i, b in enumerate(blobs)],
        ).json()
        loads_after_the_first = model_cache_metrics(client)["cifar_model_loads_total"]
        as_json = client.post(
            "/predict", json={"job_id": ids["torch_mlp"], "images": [base64.b64encode(b).decode() for b in blobs]}
        ).json()
        cache = model_cache_metrics(client)
    # the second request found the model in the cache: no load, and the cache holds model bytes
    assert cache["cifar_model_loads_total"] == loads_after_the_first >= 1
    assert cache["cifar_model_cache_bytes"] > 0 and cache["cifar_model_load_waiters"] == 0
    assert [p["probabilities"] for p in multipart["predictions"]] == [
        p["probabilities"] for p in as_json["predictions"]
    ]
    assert [p["filename"] for p in as_json["predictions"]] == ["images[0]", "images[1]", "images[2]"]


def test_without_job_id_the_best_succeeded_job_answers(trained: tuple[Service, dict[str, int]]) -> None:
    service, ids = trained
    images, _ = training_images(1)
    with service.client() as client:
        jobs = {j["id"]: j for j in client.get("/jobs").json()["data"]}
        best = max(ids.values(), key=lambda i: (jobs[i]["final_metrics"]["test_accuracy"], i))
        response = client.post("/predict", files=[("files", ("a.png", png(images[0]), "image/png"))])
    assert response.status_code == 200
    assert response.json()["job_id"] == best


def test_model_download_reloads_into_an_identical_model(trained: tuple[Service, dict[str, int]]) -> None:
    service, ids = trained
    images, _ = training_images(1)
    with service.client() as client:
        for kind, job_id in ids.items():
            job = client.get(f"/jobs/{job_id}").json()
            info = job["trained_model"]
            download = client.get(info["download_url"])
            assert download.status_code == 200
            assert len(download.content) == info["size_bytes"]
            import hashlib

            assert hashlib.sha256(download.content).hexdigest() == info["sha256"]
            artifact = unpack_model(download.content)
            assert artifact.spec["model"] == kind and artifact.class_names == CLASSES
            local = load_predictor(artifact).probabilities(images)
            remote = client.post(
                "/predict",
                params={"job_id": job_id, "top_k": 10},
                files=[("files", (f"{i}.png", png(img), "image/png")) for i, img in enumerate(images)],
            )
            served = np.array([[p["probabilities"][c] for c in CLASSES] for p in remote.json()["predictions"]])
            np.testing.assert_allclose(local, served, rtol=1e-4, atol=1e-6)  # float32 convolution rounding


def test_each_kinds_torch_model_from_the_python_client_predicts_what_predict_answers(
    trained: tuple[Service, dict[str, int]],
) -> None:
    service, ids = trained
    images, labels = training_images(1)
    bf16_served = bf16_is_fast_on_cpu()  # /predict runs the convolutional kinds in bfloat16 on such a CPU
    with Client(url=service.url) as client:
        for kind, job_id in ids.items():
            model = client.job(job_id).torch_model()
            assert isinstance(model, torch.nn.Module) and not model.training and model.class_names == CLASSES
            ours = model.probabilities(torch.from_numpy(images)).numpy()
            served = client.predict([png(image) for image in images], job=job_id, top_k=10)
            theirs = np.array([[p["probabilities"][c] for c in CLASSES] for p in served])
            tolerance = 0.03 if bf16_served and kind in ("convnet", "resnet18", "speedrun", "vit") else 1e-4
            np.testing.assert_allclose(ours, theirs, atol=tolerance, err_msg=kind)
            if kind in FITTED_KINDS:
                assert ours.argmax(axis=1).tolist() == labels.tolist()
            # the module's own decoding: a file read as training images are
            assert torch.equal(
                model.to_inputs([Image.open(io.BytesIO(png(images[0])))])[0], torch.from_numpy(images[0])
            )


def test_the_python_client_sends_paths_bytes_pil_images_and_arrays_alike(
    trained: tuple[Service, dict[str, int]], tmp_path: Path
) -> None:
    service, ids = trained
    image = training_images(1)[0][3]
    path = tmp_path / "three.png"
    path.write_bytes(png(image))
    forms = [path, str(path), png(image), Image.open(path), image.transpose(1, 2, 0), image.transpose(1, 2, 0)[None]]
    with Client(url=service.url) as client:
        answers = [client.predict(form, job=ids["numpy_mlp"], top_k=3)[0] for form in forms]
    assert answers[0]["filename"] == "three.png"
    assert all(answer["top_k"] == answers[0]["top_k"] and answer["job_id"] == ids["numpy_mlp"] for answer in answers)


def test_prediction_errors_name_the_file_or_field(trained: tuple[Service, dict[str, int]]) -> None:
    service, ids = trained
    images, _ = training_images(1)
    good = ("files", ("good.png", png(images[0]), "image/png"))
    with service.client() as client:

        def post(**kwargs: object) -> httpx.Response:
            return client.post("/predict", **kwargs)  # type: ignore[arg-type]

        huge = io.BytesIO()
        Image.new("L", (6000, 5000)).save(huge, "PNG")  # 30 megapixels, a few KB compressed
        big = ("files", ("bomb.png", huge.getvalue(), "image/png"))
        # each file of a batch is answered on its own: the unreadable ones get their error, the rest their classes
        mixed = post(params={"job_id": ids["torch_mlp"]}, files=[good, ("files", ("notes.txt", b"hi", "text/plain")),
                                                                  big, good])  # fmt: skip
        assert mixed.status_code == 200
        answers = mixed.json()["predictions"]
        assert [a["filename"] for a in answers] == ["good.png", "notes.txt", "bomb.png", "good.png"]
        assert answers[0]["label"] and answers[0]["error"] is None and answers[3]["top_k"] == answers[0]["top_k"]
        assert answers[1]["label"] is None and answers[1]["error"]["status"] == 415
        assert "notes.txt" in answers[1]["error"]["message"]
        assert answers[2]["error"]["status"] == 413 and "over the limit of 4,000,000" in answers[2]["error"]["message"]
        assert "resize it to at most 2000x2000" in answers[2]["error"]["message"]

        not_image = post(params={"job_id": ids["torch_mlp"]}, files=[("files", ("notes.txt", b"hi", "text/plain"))])
        assert not_image.status_code == 415 and "notes.txt" in not_image.json()["message"]
        bomb = post(params={"job_id": ids["torch_mlp"]}, files=[big])  # the only file: the request's own error
        assert bomb.status_code == 413 and "bomb.png" in bomb.json()["message"]

        too_many = post(params={"job_id": ids["torch_mlp"]}, files=[good] * 257)
        assert too_many.status_code == 413 and "files" in too_many.json()["message"]

        unknown = post(params={"job_id": 999}, files=[good])
        assert unknown.status_code == 404 and "999" in unknown.json()["message"]

        queued = client.post("/jobs", json={"model": "torch_mlp", "dataset": "nowhere"}).json()
        not_done = post(params={"job_id": queued["id"]}, files=[good])
        assert not_done.status_code == 409 and str(queued["id"]) in not_done.json()["message"]
        assert client.get(f"/jobs/{queued['id']}/model").status_code == 409

        bad_b64 = post(json={"images": ["not base64!!"]})
        assert bad_b64.status_code == 400 and "images[0]" in bad_b64.json()["message"]
        no_files = post(files=[("other", ("x.png", b"x", "image/png"))])
        assert no_files.status_code == 422 and no_files.json()["message"].startswith("files:")
        wrong_type = post(content=b"raw", headers={"content-type": "text/plain"})
        assert wrong_type.status_code == 415
        bad_k = post(params={"top_k": 0}, files=[good])
        assert bad_k.status_code == 422


def test_the_plugins_model_seeds_a_fine_tuning_job_and_a_sweep_searches_its_fields(
    trained: tuple[Service, dict[str, int]],
) -> None:
    """The example plugin's kind (vit) as the built-in ones: `init_from_job` starts from its model (the first
    evaluation, before any step, is the source's), and a sweep searches its own fields."""
    service, ids = trained
    service.start_sweep_driver()
    tiny = {**TINY_JOBS["vit"], "max_steps": 10, "eval_every": 10}
    with Client(url=service.url) as client:
        source = client.job(ids["vit"])
        tuned = client.submit({**tiny, "init_from_job": source.id, "learning_rate": 1e-4}).wait(
            progress=False, timeout=120
        )
        assert tuned.status == "succeeded", tuned.data["error"]
        first = next(point for point in tuned.curve(split="test") if point["step"] == 0)
        assert first["accuracy"] == pytest.approx(source.data["final_metrics"]["test_accuracy"])
        with pytest.raises(SpecRefused) as other_shape:
            client.submit({**tiny, "depth": 2, "init_from_job": source.id})
        assert other_shape.value.field == "init_from_job" and "its depth is 1 and this spec's 2" in str(
            other_shape.value
        )
        sweep = client.submit_sweep({"name": "vit widths", "base": tiny, "method": "grid", "max_concurrent": 2,
                                     "search": {"width": {"choices": [16, 32]}}})  # fmt: skip
        assert sweep.wait(timeout=180, interval=0.2).status == "finished"
        board = sweep.leaderboard()
    assert sorted(trial["width"] for trial in board) == [16, 32] and {trial["status"] for trial in board} == {
        "succeeded"
    }
