"""`cifar-jobs export`: jobs in another tool's format."""

from pathlib import Path
from typing import Annotated

import typer

from cli.output import console, fail, service

app = typer.Typer(help="Jobs in another tool's format.", no_args_is_help=True)


@app.command()
def tensorboard(
    job_ids: Annotated[list[int], typer.Argument(help="The jobs.")],
    to: Annotated[Path, typer.Option("--to", help="The folder (`tensorboard --logdir` it); a run folder a job.")],
) -> None:
    """Each job's curves, system metrics and spec (as hyperparameters) as a TensorBoard run, job-<id>."""
    with service() as api:
        try:
            runs = api.export_tensorboard(job_ids, to)
        except ModuleNotFoundError as exc:
            raise fail(str(exc)) from None
    for run in runs:
        console.print(f"{run}", markup=False)
    console.print(f"tensorboard --logdir {to}", markup=False)
