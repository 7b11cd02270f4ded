"""`cifar-jobs`: the service from a terminal. Reads CIFAR_JOBS_URL (default http://127.0.0.1:8000) and API_KEY.

Without API_KEY it sends the token `cifar-jobs login` kept in CIFAR_JOBS_CONFIG_DIR (default ~/.config/cifar-jobs).

cifar-jobs submit '{"model": "convnet"}' --watch
cifar-jobs submit --model torch_mlp --set hidden_units=[800,600,400] --set optimizer=adam --watch
cifar-jobs list --status running
cifar-jobs list --tag lab1 --sort -test_accuracy --csv > leaderboard.csv
cifar-jobs edit 7 --name 'wide, Adam' --tag lab1 --notes 'as the report ran it'
cifar-jobs watch 7
cifar-jobs logs 7 --follow
cifar-jobs predict cat.png ship.jpg --job 7
cifar-jobs plot 7 -o job7.png
cifar-jobs download 7
cifar-jobs delete 7
cifar-jobs sweeps submit @sweep.json
cifar-jobs report submit
cifar-jobs webhooks add https://example.org/hook --events job.succeeded,job.failed
cifar-jobs export tensorboard 7 8 --to runs/
"""

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cifar_jobs import Job
from cifar_jobs.images import upload_files
from cli import executors, export, report, sweeps, users, webhooks
from cli.output import console, fail, read_json_argument, service
from cli.plans import plan_text
from cli.watch import summary
from cli.watch import watch as watch_job

HELP = "\n\n".join((__doc__ or "").split("\n\n")[:2])  # where the service and the token come from
app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)
app.add_typer(sweeps.app, name="sweeps")
app.add_typer(report.app, name="report")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(export.app, name="export")
app.add_typer(users.admin, name="admin")
users.admin.command("executors")(executors.executors)
app.command()(users.login)
app.command()(users.logout)
app.command()(users.whoami)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word: a string


def _spec(
    spec: str | None, model: str | None, settings: list[str], tags: list[str] | None = None, notes: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {} if spec is None else read_json_argument(spec, "SPEC")
    if model:
        body["model"] = model
    if tags:
        body["tags"] = tags
    if notes is not None:
        body["notes"] = notes
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: use key=value", param_hint="--set")
        body[key] = _value(value)
    return body


@app.command()
def submit(
    spec: Annotated[str | None, typer.Argument(help="JSON spec, @file.json, or - for standard input.")] = None,
    model: Annotated[str | None, typer.Option(help="The model kind (sets `model`).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="A field as key=JSON value; repeatable.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag to find it by; repeatable.")] = None,
    notes: Annotated[str | None, typer.Option(help="Notes on the run.")] = None,
    watch: Annotated[bool, typer.Option(help="Follow the job until it ends; exit 1 unless it succeeds.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Queue nothing: print the job's plan (cost, time, queue).")] = False,
) -> None:
    """Queue a training job (and follow it with --watch), or with --dry-run show its plan."""
    body = _spec(spec, model, set_ or [], tag, notes)
    with service() as api:
        if dry_run:
            console.print(plan_text(api.call("POST", "/jobs", params={"dry_run": "true"}, json=body)), markup=False)
            return
        job = api.call("POST", "/jobs", json=body)
        console.print(f"job {job['id']} {job['status']}: {json.dumps(job['spec'], separators=(',', ':'))}")
        if watch:
            raise typer.Exit(watch_job(api, job["id"]))


@app.command()
def watch(job_id: int) -> None:
    """Follow a job with a progress bar until it ends; exit 1 unless it succeeded."""
    with service() as api:
        raise typer.Exit(watch_job(api, job_id))


@app.command()
def status(job_id: int) -> None:
    """A job's status, progress and final numbers."""
    with service() as api:
        console.print(summary(api.call("GET", f"/jobs/{job_id}")))


@app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status.")] = None,
    model: Annotated[str | None, typer.Option(help="Only jobs of this model kind.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only jobs with this tag.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this user's jobs.")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only your own jobs.")] = False,
    where: Annotated[
        list[str] | None, typer.Option(help="A condition such as learning_rate<0.01 or optimizer=adam; repeatable.")
    ] = None,
    sort: Annotated[str | None, typer.Option(help="A key, - first for descending: -test_accuracy.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Every selected job as CSV (spec fields, final metrics), not a table.")
    ] = False,
) -> None:
    """Jobs, newest first (or by --sort): a leaderboard with --sort -test_accuracy."""
    params: list[tuple[str, Any]] = [(key, value) for key, value in (
        ("status", status), ("model", model), ("tag", tag), ("owner", owner), ("sort", sort)) if value]  # fmt: skip
    params += [("where", condition) for condition in where or []] + ([("mine", "true")] if mine else [])
    with service() as api:
        if as_csv:
            sys.stdout.write(api.response("GET", "/jobs.csv", params=params).text)
            return
        page = api.call("GET", "/jobs", params=[*params, ("limit", limit)])
    table = Table("id", "name", "model", "owner", "status", "step", "test accuracy")
    for job in page["data"]:
        accuracy = (job.get("final_metrics") or {}).get("test_accuracy")
        table.add_row(str(job["id"]), job["name"] or "", job["model"], job.get("owner") or "", job["status"],
                      f"{job['progress']['step']}/{job['progress']['max_steps']}",
                      f"{accuracy:.4f}" if isinstance(accuracy, float) else "")  # fmt: skip
    console.print(table)
    console.print(f"{len(page['data'])} of {page['count']}")


@app.command()
def edit(
    job_id: int,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag; repeatable; replaces the job's tags.")] = None,
    clear_tags: Annotated[bool, typer.Option("--clear-tags", help="Remove every tag.")] = False,
    notes: Annotated[str | None, typer.Option(help="Notes (replace the old ones).")] = None,
) -> None:
    """Rename, tag or annotate a job, whatever its status (what it trains does not change)."""
    if tag and clear_tags:
        raise fail("--tag or --clear-tags, not both")
    tags = [] if clear_tags else tag
    if name is None and tags is None and notes is None:
        raise fail("nothing to change: give --name, --tag, --clear-tags or --notes")
    with service() as api:
        job = Job(api.connection, {"id": job_id}).patch(name=name, tags=tags, notes=notes)
    console.print(f"job {job.id}: {job.data['name'] or ''} [{' '.join(job.data['tags'])}]", markup=False)


@app.command()
def cancel(job_id: int) -> None:
    """Cancel a queued job, or ask a running one to stop."""
    with service() as api:
        console.print(summary(api.call("POST", f"/jobs/{job_id}/cancel")))


@app.command()
def delete(
    job_id: int, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for a confirmation.")] = False
) -> None:
    """Delete a finished job with its points, logs and model (a queued or running one: cancel it first)."""
    if not yes:
        typer.confirm(f"Delete job {job_id} with its points, logs and model?", abort=True)
    with service() as api:
        api.call("DELETE", f"/jobs/{job_id}")
    console.print(f"job {job_id} deleted")


@app.command()
def logs(
    job_id: int,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Print new output until the job ends.")] = False,
    attempt: Annotated[int | None, typer.Option(min=1, help="Which attempt; default: the latest.")] = None,
    tail: Annotated[int | None, typer.Option(min=1, help="Only the last this many lines at first.")] = None,
) -> None:
    """What the job's training process printed: its data, device, one line per log interval, its outcome."""
    with service() as api:
        job = Job(api.connection, {"id": job_id})
        for text in job.follow_logs(attempt, tail) if follow else [job.logs(attempt, tail)]:
            sys.stdout.write(text)
            sys.stdout.flush()


@app.command()
def download(
    job_id: int,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Default: job-<id>.safetensors.")] = None,
) -> None:
    """Save the job's trained model (a safetensors file), checked against the service's SHA-256."""
    with service() as api:
        try:
            path = Job(api.connection, {"id": job_id}).download(output)
        except OSError as exc:
            raise fail(str(exc)) from None
    with path.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    console.print(f"{path} ({path.stat().st_size:,} bytes, sha256 {digest[:12]}...)")


@app.command()
def predict(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="Image files.")],
    job: Annotated[int | None, typer.Option(help="The model's job; default: the best succeeded job.")] = None,
    top_k: Annotated[int, typer.Option(min=1, max=100)] = 3,
) -> None:
    """The top classes of each image (a file that cannot be read gets its own error)."""
    params: dict[str, Any] = {"top_k": top_k, **({"job_id": job} if job else {})}
    with service() as api:
        result = api.call("POST", "/predict", params=params, files=upload_files(files))
    console.print(f"job {result['job_id']} ({result['model']})")
    failed = 0
    for item in result["predictions"]:
        if item.get("error"):
            failed += 1
            console.print(f"{item['filename']}: {item['error']['status']} {item['error']['message']}", markup=False)
            continue
        best = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in item["top_k"])
        console.print(f"{item['filename']}: {best}", markup=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def plot(
    job_id: int,
    output: Annotated[Path, typer.Option("-o", "--output", help="A .png or .svg file.")],
    width: int = 1000,
    height: int = 400,
) -> None:
    """Save the job's loss and accuracy plot."""
    image_format = "svg" if output.suffix.lower() == ".svg" else "png"
    with service() as api:
        response = api.response("GET", f"/jobs/{job_id}/plot.{image_format}", params={"width": width, "height": height})
    output.write_bytes(response.content)
    console.print(f"{output} ({len(response.content):,} bytes)")


def main() -> None:
    logging.basicConfig(format="%(message)s")  # the client's notices (a lost connection, a busy service) on stderr
    app()
