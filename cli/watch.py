"""Following a job to its end on a progress bar, and a job's state in one line."""

from typing import Any

from cifar_jobs import Client, Job
from cli.output import console


def summary(job: dict[str, Any]) -> str:
    metrics = job.get("final_metrics") or {}
    parts = [f"job {job['id']} {job['status']}", f"step {job['progress']['step']}/{job['progress']['max_steps']}"]
    for key in ("test_accuracy", "best_test_accuracy", "train_loss", "steps_per_second"):
        if isinstance(metrics.get(key), int | float):
            parts.append(f"{key} {metrics[key]:.4g}")
    if job.get("cancel_requested") and job["status"] == "running":
        parts.append("cancel requested: it stops within seconds")
    if job.get("waiting_reason"):
        parts.append(f"waiting: {job['waiting_reason']}")
    if job.get("preemptions"):
        times = "once" if job["preemptions"] == 1 else f"{job['preemptions']} times"
        parts.append(f"preempted {times} (GET /jobs/{job['id']}/attempts)")
    if job.get("error"):
        parts.append(f"error: {job['error']}")
    for alert in job.get("alerts_fired") or []:
        parts.append(f"alert {alert['rule']} ({alert['when']}, {alert['action']}): {alert['message']}")
    if record := job.get("reproducibility"):
        parts.append(f"record: {record_line(record)}")
    if job.get("reproduces"):
        parts.append(f"reproduces job {job['reproduces']} (GET /jobs/{job['id']}/reproduction)")
    return ", ".join(parts)


def record_line(record: dict[str, Any]) -> str:
    """The reproducibility record in one line: version and commit, packages, where, precision, data."""
    service, packages, runtime = record["service"], record["packages"], record.get("runtime") or {}
    commit = (service.get("git_commit") or "")[:10]
    where = record["gpu"]["name"] if record.get("gpu") else record["cpu"]
    return (f"cifar-jobs {service.get('version')}{f' {commit}' if commit else ''}"
            f"{' (dirty)' if service.get('git_dirty') else ''}; torch {packages['torch']}, numpy {packages['numpy']}; "
            f"{where}; {runtime.get('device')} {runtime.get('precision')}; data {record['data']['dataset']} "
            f"{record['data']['sha256'][:12]}")  # fmt: skip


def watch(api: Client, job_id: int) -> int:
    """Follow the job until it ends (a progress bar; a lost connection is said on stderr and picked up again);
    print its final numbers. The exit code: 0 when it succeeded."""
    job = Job(api.connection, {"id": job_id}).wait(progress=True, console=console)
    console.print(summary(job.data))
    return 0 if job.status == "succeeded" else 1
