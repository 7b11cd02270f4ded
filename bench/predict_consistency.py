"""Does /predict see images exactly as training did? A trained job's test images, sent as PNG uploads.

    .venv/bin/python bench/predict_consistency.py --url http://127.0.0.1:8000 --job 8 --data-dir data

Takes `--count` test images of the job's data set (every k-th, so every class is in), and measures
their accuracy three ways: (1) the job's own evaluation code (`models.train_torch.evaluate`, as at
the job's test points) with the job's stored model, (2) the loaded model called in this process,
(3) `POST /predict` with each image re-encoded as a PNG file. (1) and (3) must agree within one
image (the PNGs hold the decoded pixels, so they normally agree exactly). The stored model is also
evaluated on the whole test set, which must give the job's final test accuracy. Torch kinds only.

For a conv net, it also classifies the whole test set with the predictor in float32 and in bfloat16
autocast (what /predict uses on a CPU with fast bfloat16) and reports how many classes agree
(target: at least 99.5%).
"""

import argparse
import io
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.artifacts import ModelArtifact, unpack_model
from models.data.arrays import ImageArrays
from models.data.catalog import load_dataset
from models.kinds import load_predictor
from models.prediction.torch_predictor import TorchPredictor
from models.training.torch_backend import TorchStepPlan, evaluate
from models.training.torch_data import DeviceData


def job_evaluation(model: torch.nn.Module, arrays: ImageArrays, artifact_norm: object, job: dict[str, Any]) -> float:
    """Accuracy over arrays' test split through the training loop's own evaluation code, in the
    precision and memory format the job trained with."""
    data = DeviceData.build(arrays, artifact_norm, torch.device("cpu"))  # type: ignore[arg-type]
    unused_optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    metrics = job["final_metrics"]
    plan = TorchStepPlan(
        batch_size=1,
        seed=0,
        optimizer=unused_optimizer,
        autocast_dtype=torch.bfloat16 if metrics.get("precision") == "bf16" else None,
        channels_last=metrics.get("memory_format") == "channels_last",
    )
    return evaluate(model, data, plan)[1]


def png_bytes(image_chw: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image_chw.transpose(1, 2, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--job", type=int, required=True, help="a succeeded torch_mlp, convnet or resnet18 job")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()

    with httpx.Client(base_url=args.url, timeout=120) as client:
        job = client.get(f"/jobs/{args.job}").raise_for_status().json()
        artifact = unpack_model(client.get(f"/jobs/{args.job}/model").raise_for_status().content)
        arrays = load_dataset(job["spec"]["dataset"], args.data_dir)
        chosen = np.arange(0, len(arrays.test_y), len(arrays.test_y) // args.count)[: args.count]
        subset = replace(arrays, test_x=arrays.test_x[chosen], test_y=arrays.test_y[chosen])

        predictor = load_predictor(artifact)
        model: torch.nn.Module = predictor.model  # type: ignore[attr-defined]
        whole_test = job_evaluation(model, arrays, artifact.normalization, job)
        evaluated = job_evaluation(model, subset, artifact.normalization, job)
        in_process = float((predictor.probabilities(subset.test_x).argmax(1) == subset.test_y).mean())

        files = [("files", (f"test-{i}.png", png_bytes(arrays.test_x[i]), "image/png")) for i in chosen]
        answer = client.post("/predict", params={"job_id": args.job}, files=files).raise_for_status().json()
        predicted = np.array([p["class_index"] for p in answer["predictions"]])
        served = float((predicted == subset.test_y).mean())

    n = len(chosen)
    final = job["final_metrics"]["test_accuracy"]
    print(f"job {args.job} ({job['model']}, {job['name']!r}): final test accuracy {final}")
    print(f"stored model, whole test set, job's evaluation code: {whole_test:.4f}")
    print(f"| {n} test images | accuracy |\n|---|---|")
    print(f"| job's evaluation code | {evaluated:.4f} |")
    print(f"| stored model in this process | {in_process:.4f} |")
    print(f"| POST /predict, PNG uploads | {served:.4f} |")
    agree = abs(served - evaluated) * n <= 1
    verdict = "OK" if agree else "MISMATCH"
    print(f"/predict vs the job's evaluation: {abs(served - evaluated) * n:.0f} image(s) apart -> {verdict}")
    if isinstance(predictor, TorchPredictor) and predictor.memory_format == torch.channels_last:
        same = bf16_agreement(artifact, arrays.test_x)
        print(f"conv net, whole test set: float32 and bfloat16 predict the same class for {same:.2%} of images "
              f"(target >= 99.5%) -> {'OK' if same >= 0.995 else 'BELOW TARGET'}")  # fmt: skip
        agree = agree and same >= 0.995
    sys.exit(0 if agree else 1)


def bf16_agreement(artifact: ModelArtifact, images: np.ndarray) -> float:
    """The fraction of `images` the float32 and the bfloat16 predictor put in the same class."""
    classes = []
    for precision in ("off", "bf16"):
        predictor = load_predictor(replace(artifact, spec={**artifact.spec, "mixed_precision": precision}))
        assert isinstance(predictor, TorchPredictor) and predictor.bf16 == (precision == "bf16")
        classes.append(np.concatenate([predictor.probabilities(images[i : i + 500]).argmax(1)
                                       for i in range(0, len(images), 500)]))  # fmt: skip
    return float((classes[0] == classes[1]).mean())


if __name__ == "__main__":
    main()
