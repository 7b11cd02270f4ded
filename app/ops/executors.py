"""/executors (admins): every worker and dispatcher the store has seen, where it runs, what it offers and runs now,
and whether it is alive (seen within EXECUTOR_ALIVE_SECONDS)."""

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.access.permissions import ADMINS
from app.http.deps import SessionDep
from store.executors import alive_since, list_executors

router = APIRouter(tags=["admin"], dependencies=[ADMINS])


class ExecutorPublic(BaseModel):
    name: str = Field(description="Stored on the jobs it runs (`worker`): host:pid, or `ray:ADDRESS`.")
    role: str | None = Field(description="`worker` or `ray dispatcher` (null: an executor older than this field).")
    host: str | None
    pid: int | None
    version: str | None = Field(description="The service's version it runs.")
    started_at: datetime | None
    seen_at: datetime = Field(description="Its last heartbeat.")
    alive: bool = Field(description="Seen within EXECUTOR_ALIVE_SECONDS; false: stopped without saying so (killed).")
    gpus: float = Field(description="The most one job can get there.")
    cpus: float = Field(description="The most one job can get there.")
    spec_version: int = Field(description="The newest job spec version it understands.")
    kinds: dict[str, str] | None = Field(description="The model kinds it has installed, with their package's version.")
    running: list[int] = Field(description="The jobs it runs now.")


class ExecutorsPublic(BaseModel):
    data: list[ExecutorPublic]
    alive: int = Field(description="How many are alive.")


@router.get("/executors", response_model=ExecutorsPublic)
def get_executors(request: Request, session: SessionDep) -> ExecutorsPublic:
    """(Admins) The workers and dispatchers seen in the last 7 days, the newest heartbeat first: host, process,
    version, start, last heartbeat, what one job can get there, the kinds installed, the jobs running there, and
    whether each is alive. A worker that was killed stays listed, not alive, until forgotten."""
    since = alive_since(request.app.state.settings.executor_alive_seconds)
    views = [ExecutorPublic.model_validate(view, from_attributes=True) for view in list_executors(session, since)]
    return ExecutorsPublic(data=views, alive=sum(view.alive for view in views))
