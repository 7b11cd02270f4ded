"""`cifar-jobs`: the service from a terminal. Reads CIFAR_JOBS_URL (default http://127.0.0.1:8000) and API_KEY.

cifar-jobs submit '{"model": "convnet"}' --watch
cifar-jobs submit --model torch_mlp --set hidden_units=[800,600,400] --set optimizer=adam --watch
cifar-jobs list --status running
cifar-jobs watch 7
cifar-jobs predict cat.png ship.jpg --job 7
cifar-jobs plot 7 -o job7.png
"""

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from httpx_sse import connect_sse
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(help=__doc__.splitlines()[0] if __doc__ else None, no_args_is_help=True, add_completion=False)
console = Console()
errors = Console(stderr=True)


def client() -> httpx.Client:
    url = os.environ.get("CIFAR_JOBS_URL", "http://127.0.0.1:8000")
    key = os.environ.get("API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def answer(response: httpx.Response) -> Any:
    """The JSON body, or the service's message and exit code 1."""
    if response.is_success:
        return response.json()
    try:
        body = response.json()
        message = body.get("message") or body.get("detail") or response.text
    except ValueError:
        message = response.text
    errors.print(f"[red]{response.status_code}[/red]: {message}")
    raise typer.Exit(1)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word: a string


def _spec(spec: str | None, model: str | None, settings: list[str]) -> dict[str, Any]:
    if spec is None:
        body: dict[str, Any] = {}
    elif spec == "-":
        body = json.loads(sys.stdin.read())
    elif spec.startswith("@"):
        body = json.loads(Path(spec[1:]).read_text())
    else:
        body = json.loads(spec)
    if model:
        body["model"] = model
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: use key=value", param_hint="--set")
        body[key] = _value(value)
    return body


def _summary(job: dict[str, Any]) -> str:
    metrics = job.get("final_metrics") or {}
    parts = [f"job {job['id']} {job['status']}", f"step {job['progress']['step']}/{job['progress']['max_steps']}"]
    for key in ("test_accuracy", "best_test_accuracy", "train_loss", "steps_per_second"):
        if isinstance(metrics.get(key), int | float):
            parts.append(f"{key} {metrics[key]:.4g}")
    if job.get("cancel_requested") and job["status"] == "running":
        parts.append("cancel requested: it stops within seconds")
    if job.get("error"):
        parts.append(f"error: {job['error']}")
    return ", ".join(parts)


def _watch(http: httpx.Client, job_id: int) -> int:
    """Follow the job's event stream with a progress bar; the exit code: 0 when it succeeded."""
    columns = (TextColumn("job {task.fields[job]} {task.fields[status]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[accuracy]}"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=None, job=job_id, status="", accuracy="")
        with connect_sse(http, "GET", f"/jobs/{job_id}/events", timeout=None) as source:
            if not source.response.is_success:
                source.response.read()
                answer(source.response)
            for event in source.iter_sse():
                data = event.json()
                if event.event == "status":
                    progress.update(task, status=data["status"])
                elif event.event == "progress":
                    progress.update(task, total=data["max_steps"], completed=data["step"])
                elif event.event == "points":
                    tests = [p for p in data["points"] if p["split"] == "test"]
                    if tests:
                        progress.update(task, accuracy=f"test accuracy {tests[-1]['accuracy']:.4f}")
                elif event.event == "end":
                    progress.update(task, status=data["status"])
                    break
    job = answer(http.get(f"/jobs/{job_id}"))
    console.print(_summary(job))
    return 0 if job["status"] == "succeeded" else 1


@app.command()
def submit(
    spec: Annotated[str | None, typer.Argument(help="JSON spec, @file.json, or - for standard input.")] = None,
    model: Annotated[str | None, typer.Option(help="The model kind (sets `model`).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="A field as key=JSON value; repeatable.")] = None,
    watch: Annotated[bool, typer.Option(help="Follow the job until it ends; exit 1 unless it succeeds.")] = False,
) -> None:
    """Queue a training job (and follow it with --watch)."""
    with client() as http:
        job = answer(http.post("/jobs", json=_spec(spec, model, set_ or [])))
        console.print(f"job {job['id']} {job['status']}: {json.dumps(job['spec'], separators=(',', ':'))}")
        if watch:
            raise typer.Exit(_watch(http, job["id"]))


@app.command()
def watch(job_id: int) -> None:
    """Follow a job with a progress bar until it ends; exit 1 unless it succeeded."""
    with client() as http:
        raise typer.Exit(_watch(http, job_id))


@app.command()
def status(job_id: int) -> None:
    """A job's status, progress and final numbers."""
    with client() as http:
        console.print(_summary(answer(http.get(f"/jobs/{job_id}"))))


@app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """Jobs, newest first."""
    params: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
    with client() as http:
        page = answer(http.get("/jobs", params=params))
    table = Table("id", "name", "model", "status", "step", "test accuracy")
    for job in page["data"]:
        accuracy = (job.get("final_metrics") or {}).get("test_accuracy")
        table.add_row(str(job["id"]), job["name"] or "", job["model"], job["status"],
                      f"{job['progress']['step']}/{job['progress']['max_steps']}",
                      f"{accuracy:.4f}" if isinstance(accuracy, float) else "")  # fmt: skip
    console.print(table)
    console.print(f"{len(page['data'])} of {page['count']}")


@app.command()
def cancel(job_id: int) -> None:
    """Cancel a queued job, or ask a running one to stop."""
    with client() as http:
        console.print(_summary(answer(http.post(f"/jobs/{job_id}/cancel"))))


@app.command()
def predict(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="Image files.")],
    job: Annotated[int | None, typer.Option(help="The model's job; default: the best succeeded job.")] = None,
    top_k: Annotated[int, typer.Option(min=1, max=100)] = 3,
) -> None:
    """The top classes of each image."""
    params: dict[str, Any] = {"top_k": top_k, **({"job_id": job} if job else {})}
    uploads = [("files", (path.name, path.read_bytes())) for path in files]
    with client() as http:
        result = answer(http.post("/predict", params=params, files=uploads))
    console.print(f"job {result['job_id']} ({result['model']})")
    for item in result["predictions"]:
        best = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in item["top_k"])
        console.print(f"{item['filename']}: {best}")


@app.command()
def plot(
    job_id: int,
    output: Annotated[Path, typer.Option("-o", "--output", help="A .png or .svg file.")],
    width: int = 1000,
    height: int = 400,
) -> None:
    """Save the job's loss and accuracy plot."""
    image_format = "svg" if output.suffix.lower() == ".svg" else "png"
    with client() as http:
        response = http.get(f"/jobs/{job_id}/plot.{image_format}", params={"width": width, "height": height})
        if not response.is_success:
            answer(response)
    output.write_bytes(response.content)
    console.print(f"{output} ({len(response.content):,} bytes)")


def main() -> None:
    app()
