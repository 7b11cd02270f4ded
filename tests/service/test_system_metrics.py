"""System metrics of a real training process: sampled beside its points, served as JSON and CSV, streamed, and
drawn as the plot's second row."""

import csv
import io
from pathlib import Path
from xml.etree import ElementTree

from PIL import Image
from sqlalchemy import func, select

from harness.waiting import wait_for_status
from store.engine import make_engine
from store.tables import SystemPoint
from tests.conftest import running_service, stop_process

SPEC = {"model": "torch_mlp", "hidden_units": [64], "batch_size": 20, "max_steps": 1500, "log_every": 10,
        "eval_every": 500}  # fmt: skip
SVG = "{http://www.w3.org/2000/svg}"


def _axes(svg: str) -> int:
    """The plot's panels: matplotlib's SVG writes one `<g id="axes_N">` per panel."""
    return sum(1 for g in ElementTree.fromstring(svg).iter(f"{SVG}g") if g.get("id", "").startswith("axes_"))


def test_a_jobs_system_metrics_are_sampled_served_streamed_and_plotted(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    with running_service(tmp_path, data_dir, database_url, {"SYSTEM_METRICS_SECONDS": "0.2"}) as service:
        service.start_worker()
        with service.client() as client:
            job_id = client.post("/jobs", json=SPEC).json()["id"]
            assert wait_for_status(client, job_id, {"succeeded", "failed"}, 120)["status"] == "succeeded"
            samples = client.get(f"/jobs/{job_id}/system").json()["samples"]
            assert len(samples) >= 3, samples
            steps = [s["step"] for s in samples]
            assert steps == sorted(steps) and steps[-1] <= 1500
            assert all(s["attempt"] == 1 and s["gpu_util"] is None and s["gpu_mem_mb"] is None for s in samples)
            assert all(0 < s["cpu"] <= 1.5 for s in samples)  # one thread, `cpus: 1`: about one core's worth
            assert all(100 < s["rss_mb"] < 4000 for s in samples)  # torch is loaded: well above 100 MB
            assert all(s["data_wait"] is not None and 0 <= s["data_wait"] < 1 for s in samples[1:])
            seconds = [s["seconds"] for s in samples]
            # the period holds (seconds are stored to the millisecond: two roundings may take 0.001 off a gap)
            assert all(b - a >= 0.2 - 0.001 for a, b in zip(seconds, seconds[1:], strict=False))
            few = client.get(f"/jobs/{job_id}/system", params={"max_points": 2}).json()["samples"]
            assert few == [samples[0], samples[-1]]
            rows = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job_id}/system?format=csv").text)))
            assert len(rows) == len(samples) and float(rows[-1]["rss_mb"]) == samples[-1]["rss_mb"]
            assert rows[0]["gpu_util"] == ""
            events = client.get(f"/jobs/{job_id}/events").text
            assert "event: system" in events and f'"rss_mb":{samples[-1]["rss_mb"]}' in events.replace(" ", "")
            assert _axes(client.get(f"/jobs/{job_id}/plot.svg").text) == 4  # loss, accuracy, use, memory
            png = Image.open(io.BytesIO(client.get(f"/jobs/{job_id}/plot.png?width=800&height=600").content))
            assert png.size == (800, 600)
            # a worker that samples every hour: its job ends before its first sample
            stop_process(service.processes.pop())
            service.env = {**service.env, "SYSTEM_METRICS_SECONDS": "3600"}
            service.start_worker("hourly")
            plain = client.post("/jobs", json={**SPEC, "max_steps": 1}).json()["id"]
            wait_for_status(client, plain, {"succeeded", "failed"}, 60)
            assert client.get(f"/jobs/{plain}/system").json()["samples"] == []
            assert _axes(client.get(f"/jobs/{plain}/plot.svg").text) == 2
            assert client.delete(f"/jobs/{job_id}").status_code == 204  # its samples go with it
            assert client.get(f"/jobs/{job_id}/system").status_code == 404
    engine = make_engine(database_url)
    with engine.connect() as connection:
        left = connection.execute(select(func.count()).select_from(SystemPoint).where(SystemPoint.job_id == job_id))
        assert left.scalar_one() == 0
    engine.dispose()
