"""`cifar-jobs sweeps`: submit, list, show and cancel hyperparameter sweeps."""

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.output import console, read_json_argument, service
from cli.plans import sweep_plan_text

app = typer.Typer(help="Hyperparameter sweeps: their trials are ordinary jobs.", no_args_is_help=True)


def _line(sweep: dict[str, Any]) -> str:
    best = sweep.get("best")
    best_text = f", best trial {best['number']} (job {best['job_id']}) {best['objective']:.4f}" if best else ""
    return (f"sweep {sweep['id']} {sweep['status']}: {sweep['method']}, "
            f"{sweep['trials_created']} of {sweep['trials']} trials{best_text}")  # fmt: skip


@app.command()
def submit(
    spec: Annotated[str, typer.Argument(help="The sweep as JSON, @file.json, or - for standard input.")],
    dry_run: Annotated[bool, typer.Option(help="Store nothing: print the sweep's plan (trials, steps, time).")] = False,
) -> None:
    """Start a sweep (the request `POST /sweeps` takes), or with --dry-run show its plan."""
    body = read_json_argument(spec, "SPEC")
    with service() as api:
        if dry_run:
            console.print(sweep_plan_text(api.call("POST", "/sweeps", params={"dry_run": "true"}, json=body)),
                          markup=False)  # fmt: skip
            return
        console.print(_line(api.call("POST", "/sweeps", json=body)))


@app.command("list")
def list_sweeps(limit: Annotated[int, typer.Option(min=1, max=100)] = 20) -> None:
    """Sweeps, newest first, each with its best trial."""
    with service() as api:
        page = api.call("GET", "/sweeps", params={"limit": limit})
    for sweep in page["data"]:
        console.print(_line(sweep), markup=False)
    console.print(f"{len(page['data'])} of {page['count']}")


@app.command()
def show(sweep_id: int) -> None:
    """The leaderboard: every trial best first, with its job, status, objective, step and each searched value."""
    with service() as api:
        sweep = api.call("GET", f"/sweeps/{sweep_id}")
    console.print(_line(sweep), markup=False)
    searched = list(dict.fromkeys(key for trial in sweep["leaderboard"] for key in trial["params"]))
    table = Table("trial", "job", "status", "objective", "step", *searched)
    for trial in sweep["leaderboard"]:
        objective = trial["objective"]
        table.add_row(str(trial["number"]), str(trial["job_id"] or ""), trial["status"],
                      f"{objective:.4f}" if objective is not None else "",
                      f"{trial['step']}/{trial['max_steps'] or ''}",
                      *(_value(trial["params"].get(key)) for key in searched))  # fmt: skip
    console.print(table)
    console.print(f"{sweep['steps_spent']:,} steps trained; {sweep['steps_if_run_to_end']:,} had every trial run to "
                  "its end", markup=False)  # fmt: skip


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else value


@app.command()
def cancel(sweep_id: int) -> None:
    """Create no more trials, and cancel the queued and running ones."""
    with service() as api:
        console.print(_line(api.call("POST", f"/sweeps/{sweep_id}/cancel")), markup=False)
