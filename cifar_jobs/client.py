"""`Client`: the service from Python. It finds the service and the token as the CLI does (CIFAR_JOBS_URL, then
API_KEY, then the token `cifar-jobs login` kept), or takes them as arguments."""

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypedDict, Unpack

import httpx
from pydantic import BaseModel

from cifar_jobs.connection import Connection
from cifar_jobs.images import ImageInput, upload_files
from cifar_jobs.jobs import Job
from cifar_jobs.sweeps import Sweep
from cifar_jobs.tables import Rows, run_row

RUNS_PAGE = 500  # the service's largest page of jobs


class JobFilters(TypedDict, total=False):
    """What `Client.jobs` and `Client.runs` select by (the query of `GET /jobs`)."""

    where: str | Iterable[str]  # conditions on spec fields and final metrics, e.g. "learning_rate<0.01"
    sort: str  # a field, "-" first for descending: "-test_accuracy"
    tag: str
    status: str
    model: str
    owner: str  # a user's name: only their jobs (of those the caller may see)
    mine: bool  # only the caller's own jobs
    limit: int  # at most this many (default: every job selected)


def spec_body(spec: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """A spec as the service takes it: a dict as it is; a typed spec (`cifar_jobs.specs`) with the fields it was
    given, and its kind."""
    if isinstance(spec, BaseModel):
        body = spec.model_dump(mode="json", exclude_unset=True)
        if "model" in type(spec).model_fields:
            body["model"] = spec.model  # type: ignore[attr-defined]
        return body
    return dict(spec)


class Client:
    """The service at `url` (default CIFAR_JOBS_URL, else http://127.0.0.1:8000) with `token` (default API_KEY,
        else the saved login); `timeout`: seconds a request waits for an answer (and an event stream for its next byte;
    the service pings every 15 s); `transport`: httpx's, for a Unix socket or a mock. Use it as
        a context manager, or call `close()`."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 60,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.connection = Connection(url, token, timeout, transport)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    @property
    def url(self) -> str:
        return self.connection.url

    def call(self, method: str, path: str, **options: Any) -> Any:
        """Any route's JSON answer (`options` as httpx takes them: params, json, files, headers), or its refusal
        raised as the `cifar_jobs.errors` class for it."""
        return self.connection.call(method, path, **options)

    def response(self, method: str, path: str, **options: Any) -> httpx.Response:
        """Any route's answer as httpx gives it (images, CSV, text), or its refusal raised."""
        return self.connection.response(method, path, **options)

    # jobs
    def submit(self, spec: BaseModel | dict[str, Any], idempotency_key: str | None = None) -> Job:
        """Queue a training job. It is sent with an idempotency key (a new one unless given), so a retry after a
        dropped connection queues it once."""
        key = idempotency_key or uuid.uuid4().hex
        data = self.connection.call("POST", "/jobs", json=spec_body(spec), headers={"Idempotency-Key": key})
        return Job(self.connection, data)

    def plan(self, spec: BaseModel | dict[str, Any]) -> dict[str, Any]:
        """What the job would cost and when it would start, queueing nothing."""
        plan: dict[str, Any] = self.connection.call("POST", "/jobs", params={"dry_run": "true"}, json=spec_body(spec))
        return plan

    def job(self, job_id: int) -> Job:
        return Job(self.connection, self.connection.call("GET", f"/jobs/{job_id}"))

    def jobs(self, **filters: Unpack[JobFilters]) -> list[Job]:
        """Jobs newest first (or by `sort`, e.g. `-test_accuracy`), filtered as `GET /jobs` filters them (`where`:
        conditions such as `learning_rate<0.01`; `tag`, `status`, `model`, `owner`, `mine`), over all pages (or
        the first `limit`)."""
        return [Job(self.connection, data) for data in self._job_pages(filters)]

    def runs(self, **filters: Unpack[JobFilters]) -> Rows:
        """The runs table: one row per job (as `jobs` selects them), its spec fields and final metrics as columns."""
        return Rows(run_row(data) for data in self._job_pages(filters))

    def _job_pages(self, filters: JobFilters) -> list[dict[str, Any]]:
        where = filters.get("where")
        params: list[tuple[str, Any]] = [(key, filters[key]) for key in ("sort", "tag", "status", "model", "owner")
                                         if filters.get(key) is not None]  # fmt: skip
        params += [("where", condition) for condition in ([where] if isinstance(where, str) else where or [])]
        if filters.get("mine"):
            params.append(("mine", "true"))
        limit = filters.get("limit")
        found: list[dict[str, Any]] = []
        while limit is None or len(found) < limit:
            size = RUNS_PAGE if limit is None else min(RUNS_PAGE, limit - len(found))
            page = self.connection.call("GET", "/jobs", params=[*params, ("limit", size), ("offset", len(found))])
            found.extend(page["data"])
            if len(page["data"]) < size or len(found) >= page["count"]:
                break
        return found

    def predict(
        self, images: ImageInput | Iterable[ImageInput], job: int | Job | None = None, top_k: int = 1
    ) -> list[dict[str, Any]]:
        """The top classes of each image (paths, bytes, PIL images or uint8 arrays), by the model of `job` (default:
        the best succeeded job). Each answer has its `filename` and `top_k`, or an `error` of its own."""
        params: dict[str, Any] = {"top_k": top_k}
        if job is not None:
            params["job_id"] = job.id if isinstance(job, Job) else job
        result = self.connection.call("POST", "/predict", params=params, files=upload_files(images))
        return [{**item, "job_id": result["job_id"]} for item in result["predictions"]]

    def export_tensorboard(self, jobs: Iterable[int | Job], directory: str | Path) -> list[Path]:
        """Each job's curves, system metrics and spec (as hyperparameters) in a TensorBoard run folder
        `job-<id>` under `directory`; the folders. Needs the `tensorboard` package."""
        from cifar_jobs.tensorboard import export_tensorboard

        return export_tensorboard((job if isinstance(job, Job) else self.job(job) for job in jobs), directory)

    def backup(self, path: str | Path, timeout: float = 600) -> Path:
        """(Admins) The service's whole database as one consistent SQLite file at `path`, taken while jobs train;
        written beside it first and moved there once whole. The service copies the database before its first
        byte: `timeout` is how long to wait for it (and for each later read)."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        with (
            self.connection.stream("GET", "/backup", timeout=httpx.Timeout(30, read=timeout)) as response,
            partial.open("wb") as file,
        ):
            for chunk in response.iter_bytes():
                file.write(chunk)
        partial.replace(target)
        return target

    # sweeps
    def submit_sweep(self, request: dict[str, Any]) -> Sweep:
        """Start a sweep (what `POST /sweeps` takes: a base spec, the searched fields, a method, trials)."""
        return Sweep(self.connection, self.connection.call("POST", "/sweeps", json=request))

    def sweep(self, sweep_id: int) -> Sweep:
        return Sweep(self.connection, self.connection.call("GET", f"/sweeps/{sweep_id}"))
