"""`cifar-jobs report`: the assignment report's runs, submitted, and the report regenerated from them."""

from pathlib import Path
from typing import Annotated

import typer

from cli.output import console, service

app = typer.Typer(help="The assignment report regenerated from its runs.", no_args_is_help=True)


@app.command()
def submit(
    convnet_steps: Annotated[int | None, typer.Option(min=1, help="Cut the ConvNet run short.")] = None,
    resnet18_steps: Annotated[int | None, typer.Option(min=1, help="Cut the ResNet18 run short.")] = None,
) -> None:
    """Submit the report's runs with the report's settings (identical earlier jobs are reused)."""
    options = {key: value for key, value in (("convnet_max_steps", convnet_steps),
                                             ("resnet18_max_steps", resnet18_steps)) if value is not None}  # fmt: skip
    with service() as api:
        submitted = api.call("POST", "/reports/assignment", json=options)
    for run in submitted["runs"]:
        reused = " (reused)" if run["reused"] else ""
        console.print(f"figure {run['figure']}: job {run['job_id']} {run['status']}{reused}  {run['title']}",
                      markup=False)  # fmt: skip
    console.print(f"the report: {submitted['report_url']}")


@app.command()
def show(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the Markdown here.")] = None,
) -> None:
    """The report as Markdown (its figures stay on the service, linked by URL)."""
    with service() as api:
        text = api.response("GET", "/reports/assignment", params={"format": "md"}).text
        base = api.url
    text = text.replace("](/reports/", f"]({base}/reports/")
    if output is None:
        print(text, end="")
    else:
        output.write_text(text)
        console.print(f"{output} ({len(text):,} characters)")
