"""Prometheus at /metrics: requests by route (count, latency), predictions served, and, read at each scrape,
from the store jobs by status, queue depth, running jobs' speed and workers' heartbeat age, and from the model
cache its bytes, loads and waiting requests. The running jobs' own series (`cifar_job_steps_per_second{job_id=...}`)
are shown to an admin's scrape only (their token or the API_KEY, or the single-user mode).

With several API processes (`make serve` starts API_WORKERS of them) the request metrics are shared
through PROMETHEUS_MULTIPROC_DIR, which `app.serve` sets; a single process keeps them in memory.
"""

import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy.orm import Session, sessionmaker

from app.access.auth import bearer, require_api_key
from app.access.permissions import PUBLIC
from store.executors import alive_since, list_executors
from store.leases import SWEEP_DRIVER, lease_of
from store.stats import attempts_by_outcome, jobs_by_status, running_jobs
from store.tables import utcnow

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class StoreCollector(Collector):
    """Gauges read from the job store when Prometheus scrapes."""

    def __init__(self, sessions: sessionmaker[Session], per_job: bool, alive_seconds: float = 30.0) -> None:
        self.sessions, self.per_job = sessions, per_job  # per_job: the running jobs' ids as labels
        self.alive_seconds = alive_seconds  # EXECUTOR_ALIVE_SECONDS

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.sessions() as session:
            counts = jobs_by_status(session)
            running = running_jobs(session)
            attempts = attempts_by_outcome(session)
            driver = lease_of(session, SWEEP_DRIVER)
            executors = list_executors(session, alive_since(self.alive_seconds))
        by_status = GaugeMetricFamily("cifar_jobs", "Jobs by status.", labels=["status"])
        for status, count in counts.items():
            by_status.add_metric([status], count)
        yield by_status
        yield GaugeMetricFamily("cifar_queue_depth", "Jobs waiting for a worker.", value=counts["queued"])
        live = [executor for executor in executors if executor.alive]
        yield GaugeMetricFamily("cifar_executors_alive", "Workers and dispatchers seen within EXECUTOR_ALIVE_SECONDS.",
                                value=len(live))  # fmt: skip
        yield GaugeMetricFamily("cifar_executors_idle", "Of the live executors, those running no job.",
                                value=sum(not executor.running for executor in live))  # fmt: skip
        by_outcome = GaugeMetricFamily(
            "cifar_attempts",
            "The kept jobs' attempts by how they ended (preempted, lost_heartbeat...).",
            labels=["outcome"],
        )
        for outcome, count in attempts.items():
            by_outcome.add_metric([outcome], count)
        yield by_outcome
        yield GaugeMetricFamily(
            "cifar_sweep_driver_passes",
            "Passes the sweep driver (whichever held the lease) has started, from the lease.",
            value=0 if driver is None else driver.renewals,
        )
        yield GaugeMetricFamily(
            "cifar_sweep_driver_lease_seconds_left",
            "Seconds until the sweep driver's lease runs out (negative: no driver holds it, or it was killed).",
            value=-1 if driver is None else (driver.expires_at - utcnow()).total_seconds(),
        )
        steps = GaugeMetricFamily("cifar_job_steps_per_second", "Running jobs' speed.", labels=["job_id", "model"])
        images = GaugeMetricFamily("cifar_job_images_per_second", "Running jobs' speed.", labels=["job_id", "model"])
        heartbeat = GaugeMetricFamily(
            "cifar_worker_heartbeat_age_seconds", "Seconds since each busy worker's last heartbeat.", labels=["worker"]
        )
        newest: dict[str, float] = {}
        now = utcnow()
        for job in running:
            labels = [str(job.id), job.model]
            if self.per_job:
                steps.add_metric(labels, job.steps_per_second or 0.0)
                images.add_metric(labels, job.images_per_second or 0.0)
            if job.heartbeat_at is not None and job.worker is not None:
                age = (now - job.heartbeat_at).total_seconds()
                newest[job.worker] = min(age, newest.get(job.worker, age))
        for worker, age in newest.items():
            heartbeat.add_metric([worker], age)
        yield from (steps, images, heartbeat) if self.per_job else (heartbeat,)


async def metrics_access(request: Request) -> bool:
    """The API key guards /metrics only when METRICS_REQUIRE_KEY is set. Whether the scraper may see the running
    jobs' ids (per-job series): an admin's token or the API_KEY, or the single-user mode; not an anonymous scrape
    nor a member's (VISIBILITY=own hides others' jobs everywhere else)."""
    credentials = await bearer(request)
    if request.app.state.settings.metrics_require_key:
        await require_api_key(request, credentials)
    principal = await request.app.state.principals.resolve(credentials.credentials if credentials else None)
    return principal is not None and principal.is_admin


def install_prometheus(app: FastAPI) -> None:
    """/metrics; a feature adds collectors read at each scrape to `app.state.scraped_collectors` (by name)."""
    app.state.scraped_collectors = {}
    registry = CollectorRegistry()  # one per app: the tests build several apps in one process
    Instrumentator(registry=registry, excluded_handlers=["/metrics"], should_group_status_codes=False).instrument(
        app, metric_namespace="cifar", metric_subsystem="api"
    )
    app.state.predictions_served = Counter(
        "cifar_predictions_served", "Images classified by /predict.", registry=registry
    )

    @app.get("/metrics", include_in_schema=False, dependencies=[PUBLIC])
    async def prometheus_metrics(request: Request, per_job: Annotated[bool, Depends(metrics_access)]) -> Response:
        def scrape() -> bytes:
            if MULTIPROC_ENV in os.environ:  # noqa: TID251  (prometheus_client's own variable)
                shared = CollectorRegistry()
                multiprocess.MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
                requests = generate_latest(shared)
            else:
                requests = generate_latest(registry)
            store = CollectorRegistry()
            store.register(StoreCollector(request.app.state.sessions, per_job,
                                          request.app.state.settings.executor_alive_seconds))  # fmt: skip
            for collector in request.app.state.scraped_collectors.values():  # the features' (the model cache)
                store.register(collector)
            return requests + generate_latest(store)

        return Response(await run_in_threadpool(scrape), media_type=CONTENT_TYPE_LATEST)
