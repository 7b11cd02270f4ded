"""The API's settings: the store's, plus access, serving and request limits."""

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from store.settings import read_secret
from webhooks.settings import WebhookSettings


class ApiSettings(WebhookSettings):
    api_key: str | None = Field(
        None, description="When set, every request but /healthz and the docs needs `Authorization: Bearer <key>`."
    )
    api_key_file: Path | None = Field(None, description="A file holding API_KEY (a container secret, say).")
    allowed_hosts: str = Field(
        "127.0.0.1,localhost,[::1],::1",
        description="Comma-separated Host header values the API answers (DNS rebinding); `*` for any.",
    )
    allowed_origins: str = Field(
        "", description="Comma-separated extra origins (scheme://host:port) allowed to POST from a browser."
    )
    executor: Literal["local", "ray"] = Field(
        "local", description="What `make serve` starts beside the API: a local worker, or the Ray dispatcher."
    )
    serve_roles: str = Field(
        "api,worker,sweeps,deliverer",
        description="What `make serve` starts, comma-separated: `api` (the API processes), `worker` (the executor: "
        "a local worker, or with EXECUTOR=ray the dispatcher), `sweeps` (the sweep driver), `deliverer` (webhook "
        "deliveries). An API machine: `api,sweeps,deliverer`; a worker machine: `worker`.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    # Routes read the database from a thread pool; in one process those threads queue for the GIL,
    # which tripled the p99 latency of polling under load on 2 cores (docs/BENCHMARKS.md).
    api_workers: int = Field(2, ge=1, le=64, description="API server processes `make serve` starts (uvicorn workers).")
    max_request_bytes: int = Field(64 * 1024 * 1024, description="Largest request body the API accepts.")
    max_image_bytes: int = Field(10 * 1024 * 1024, description="Largest single image file for /predict.")
    max_image_pixels: int = Field(
        4_000_000,
        description="Largest image (width x height) /predict decodes; a JPEG counts at the reduced scale it is "
        "decoded at (up to 1/8 per side).",
    )
    max_request_pixels: int = Field(
        16_000_000, description="Pixels one /predict request may decode in all (its images together)."
    )
    plan_probe_seconds: float = Field(
        8.0,
        ge=0,
        le=120,
        description="The longest a plan's probe (a few real training steps, in a fresh process) may run before it "
        "is stopped and the plan answers without it; 0: plans never probe.",
    )
    predict_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2),
        ge=1,
        le=64,
        description="/predict requests decoded and run at once per API process, more wait their turn; default: "
        "half the cores (on 2 cores, 2 at once took both from polling: bench/hostile_load.py).",
    )
    bulk_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2),
        ge=1,
        le=64,
        description="Whole curves (JSON pages, CSV), event-stream catch-up pages and plots built at once per API "
        "process, more wait their turn; default: half the cores (eight at once made polling 4x slower at p99: "
        "bench/hostile_load.py).",
    )
    max_images_per_request: int = Field(256, ge=1, le=256, description="Most images in one /predict request.")
    model_cache_mb: int = Field(
        1024,
        ge=0,
        description="Memory for the models /predict keeps loaded, by their file size (least recently used go).",
    )
    metrics_require_key: bool = Field(
        False, description="Whether Prometheus' /metrics needs the API key too (it does not by default)."
    )
    events_interval_seconds: float = Field(
        0.5, gt=0, le=10, description="How often a followed job is read for its event stream (once for all clients)."
    )
    events_max_streams: int = Field(
        256, ge=1, le=100_000, description="Event streams one API process keeps open at once; past it, 503."
    )
    events_idle_seconds: float = Field(
        300, gt=0, description="An event stream that had nothing to send this long ends (its client reconnects)."
    )
    events_ping_seconds: float = Field(
        15, gt=0, le=300, description="How often an event stream sends a keep-alive comment while nothing happens."
    )

    loop_stall_warn_seconds: float = Field(
        1.0,
        ge=0,
        description="An API process logs where its event loop is stuck when it has not run this long (0: off).",
    )

    sweep_interval_seconds: float = Field(
        1.0, gt=0, le=60, description="How often the sweep driver creates trials and stops hopeless ones."
    )
    sweep_lease_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="A sweep driver that has not renewed its lease this long (killed) gives way to another.",
    )

    visibility: Literal["all", "own"] = Field(
        "all",
        description="With users: what members and viewers may read of other people's: `all` (a shared "
        "leaderboard), or `own` (others' jobs, sweeps, curves, logs, models and predictions are hidden).",
    )
    admin_priority_above: int = Field(
        100, ge=-1000, le=1000, description="With users: only admins may submit jobs of a higher priority."
    )
    quota_queued_jobs: int = Field(50, ge=0, description="With users: a user's queued jobs at most (admins: no cap).")
    quota_submissions_per_minute: int = Field(
        30, ge=0, description="With users: jobs a user may submit in any 60 seconds (a sweep's trials do not count)."
    )
    quota_plans_per_minute: int = Field(
        20,
        ge=0,
        description="With users: dry-run plans (`POST /jobs` or `/sweeps` with `dry_run=true`, each of which may "
        "build the network in a child process) a user may ask one API process for in any 60 seconds.",
    )
    quota_cpu_hours: float = Field(
        1000.0, ge=0, description="With users: CPU-hours (cpus x running time) a user's jobs may use in 7 days."
    )
    quota_gpu_hours: float = Field(
        100.0, ge=0, description="With users: GPU-hours (gpus x running time) a user's jobs may use in 7 days."
    )
    quota_hours_seconds: float = Field(
        10.0,
        ge=0,
        description="With users: how long an API process reuses a user's CPU- and GPU-hours of the last 7 days "
        "for the hours quotas before reading them again.",
    )
    principal_cache_seconds: float = Field(
        1.0,
        ge=0,
        le=1,
        description="How long an API process trusts a token it looked up (a revocation waits this long at most).",
    )

    @model_validator(mode="after")
    def _known_roles(self) -> "ApiSettings":
        roles = split_list(self.serve_roles)
        unknown = sorted(set(roles) - set(SERVE_ROLES))
        if unknown or not roles:
            raise ValueError(f"SERVE_ROLES: {', '.join(unknown) or 'none given'}: choose from {', '.join(SERVE_ROLES)}")
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_pass(self) -> "ApiSettings":
        if self.sweep_lease_seconds < 3 * self.sweep_interval_seconds:
            raise ValueError(
                f"SWEEP_LEASE_SECONDS ({self.sweep_lease_seconds:g}) must be at least 3 times SWEEP_INTERVAL_SECONDS "
                f"({self.sweep_interval_seconds:g}): the driver renews its lease once a pass"
            )
        return self

    @model_validator(mode="after")
    def _read_api_key_file(self) -> "ApiSettings":
        if self.api_key is None and self.api_key_file is not None:
            self.api_key = read_secret(self.api_key_file, "API_KEY_FILE")
        return self


SERVE_ROLES = ("api", "worker", "sweeps", "deliverer")


def split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


@lru_cache
def get_settings() -> ApiSettings:
    return ApiSettings()
