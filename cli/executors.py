"""`cifar-jobs admin executors`: the workers and dispatchers, where each runs, what it runs, whether it is alive."""

from datetime import UTC, datetime

from rich.table import Table

from cli.output import console, service
from cli.plans import duration


def _ago(stamp: str) -> str:
    return duration((datetime.now(UTC) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()) + " ago"


def executors() -> None:
    """(Admins) The workers and dispatchers: host, process, version, last heartbeat, CPUs and GPUs one job can
    get, the jobs they run, and whether each is alive (a killed one stays listed as dead)."""
    with service() as api:
        listed = api.call("GET", "/executors")
    table = Table("name", "role", "host", "pid", "version", "state", "last seen", "cpus", "gpus", "running")
    for executor in listed["data"]:
        running = ", ".join(str(job_id) for job_id in executor["running"]) or "idle"
        table.add_row(executor["name"], executor["role"] or "", executor["host"] or "", str(executor["pid"] or ""),
                      executor["version"] or "", "alive" if executor["alive"] else "dead", _ago(executor["seen_at"]),
                      f"{executor['cpus']:g}", f"{executor['gpus']:g}", running)  # fmt: skip
    console.print(table)
    console.print(f"{listed['alive']} alive of {len(listed['data'])}", markup=False)
