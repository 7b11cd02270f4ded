"""`cifar-jobs webhooks`: tell a URL when jobs end, alerts fire or sweeps finish; see each delivery."""

from typing import Annotated

import typer
from rich.table import Table

from cli.output import console, service

app = typer.Typer(help="Webhooks: signed deliveries when jobs end, alerts fire, sweeps finish.", no_args_is_help=True)

EVENTS = "job.succeeded,job.failed,job.cancelled,job.stopped_early,job.alert,sweep.finished"


@app.command()
def add(
    url: Annotated[str, typer.Argument(help="Where to POST each delivery (http or https).")],
    events: Annotated[str, typer.Option(help="Comma-separated events to deliver.")] = EVENTS,
    secret: Annotated[str | None, typer.Option(help="The signing secret (whsec_...); made when omitted.")] = None,
) -> None:
    """Subscribe URL; prints the signing secret, which is never shown again."""
    body: dict[str, object] = {"url": url, "events": [e.strip() for e in events.split(",") if e.strip()]}
    if secret is not None:
        body["secret"] = secret
    with service() as api:
        made = api.call("POST", "/webhooks", json=body)
    console.print(f"webhook {made['id']}: {made['url']} ({', '.join(made['events'])})", markup=False)
    console.print(f"secret {made['secret']} (shown once: keep it to verify the signatures)", markup=False)


@app.command("list")
def list_webhooks() -> None:
    """Every webhook, with its deliveries still pending."""
    with service() as api:
        hooks = api.call("GET", "/webhooks")
    for hook in hooks:
        console.print(f"webhook {hook['id']}: {hook['url']} ({', '.join(hook['events'])}), "
                      f"{hook['pending']} pending", markup=False)  # fmt: skip
    console.print(f"{len(hooks)} webhooks")


@app.command()
def deliveries(webhook_id: int, limit: Annotated[int, typer.Option(min=1, max=200)] = 20) -> None:
    """A webhook's deliveries, newest first: the event, status, attempts and the last answer."""
    with service() as api:
        page = api.call("GET", f"/webhooks/{webhook_id}/deliveries", params={"limit": limit})
    table = Table("event", "type", "job", "status", "attempts", "last answer")
    for delivery in page["deliveries"]:
        last = delivery["attempt_log"][-1] if delivery["attempt_log"] else None
        said = "" if last is None else (last["error"] or f"{last['status_code']} {last['answer'][:40]}")
        table.add_row(str(delivery["event_id"]), delivery["type"], str(delivery["job_id"] or ""),
                      delivery["status"], str(delivery["attempts"]), said)  # fmt: skip
    console.print(table)
    console.print(f"{len(page['deliveries'])} of {page['total']}")


@app.command()
def test(webhook_id: int) -> None:
    """Send the webhook a `webhook.test` event (see it with `deliveries`)."""
    with service() as api:
        queued = api.call("POST", f"/webhooks/{webhook_id}/test")
    console.print(f"test event {queued['event_id']} queued for webhook {webhook_id}")


@app.command()
def remove(webhook_id: int) -> None:
    """Remove a webhook and its pending deliveries."""
    with service() as api:
        api.call("DELETE", f"/webhooks/{webhook_id}")
    console.print(f"webhook {webhook_id} removed")
