"""Who may do what: every route declares it, as a typed dependency (docs/RELIABILITY.md has the table).

- admin: anything, on anyone's jobs and sweeps; the webhooks, users and the audit log are theirs alone.
- member: reads (what VISIBILITY lets them), creates jobs and sweeps, and changes (cancel, delete, PATCH,
  a sweep's cancel) only what they own.
- viewer: reads only.

With VISIBILITY=own a member's or viewer's request for someone else's job or sweep is answered as if it
did not exist (404), the lists hold only their own, and `init_from_job` reads only their own.

A route says what it needs by the type of its parameters or by `dependencies=[...]`:

| declaration | for | the check |
|---|---|---|
| `ReadableJobId` / `ReadableJob` / `ReadableSweepId` | a route that reads one job or sweep | 404 when hidden |
| `ChangeableJobId` / `ChangeableJob` / `ChangeableSweepId` | a change of one (PATCH, DELETE, cancel) | owner or admin |
| `jobs: ReadableJobIds` | several jobs named in the query (`jobs=3,4`) | each as `ReadableJobId` |
| `principal: CreatorDep` | a route that creates jobs or sweeps | members and admins |
| `READS` | a list or a page of what the caller may see (filtered by `owned_by`) | any caller |
| `OWN_ACCOUNT` | `/users/me...`: the caller's own account | any caller |
| `ADMINS` | webhooks, users, the audit log | admins |
| `PUBLIC` | health, /metrics (its own key setting), the docs and the page | nobody needed |

Each check receives the id as FastAPI parsed it (so `+2`, `02`, `0_2` and `%202` are job 2 to the check as to
the route), and the app-wide `refuse_undeclared` refuses (403) any route that declares none of these.
"""

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from app.access.auth import Principal, PrincipalDep, principal_of
from app.http.deps import MAX_ID, SessionDep
from app.http.refusals import Forbidden, InvalidField
from store.errors import JobNotFound
from store.jobs import OwnedBy, find_job
from store.sweeps import SweepNotFound
from store.tables import Job, Role
from store.users import owner_of_job, owner_of_sweep

PERMISSION = "__permission__"  # the attribute that marks a dependency as a declaration
MAX_COMPARED = 20
Function = TypeVar("Function", bound=Callable[..., Any])


def declares(what: str) -> Callable[[Function], Function]:
    def mark(function: Function) -> Function:
        setattr(function, PERMISSION, what)
        return function

    return mark


def sees_only_own(request: Request, principal: Principal) -> bool:
    """Whether this caller's lists and reads hold only what they own."""
    return not principal.is_admin and request.app.state.settings.visibility == "own"


def _check_target(request: Request, principal: Principal, kind: str, target_id: int, changes: bool) -> None:
    lookup = owner_of_job if kind == "job" else owner_of_sweep
    with request.app.state.sessions() as session:
        exists, owner = lookup(session, target_id)
    if exists and owner == principal.user_id:
        return
    if not exists or sees_only_own(request, principal):  # fails closed: nothing passes on one to come
        raise JobNotFound(target_id) if kind == "job" else SweepNotFound(target_id)
    if changes:
        raise Forbidden(f"{kind} {target_id} is not yours: only its owner or an admin may change it")


async def _check(request: Request, principal: Principal, kind: str, target_id: int, changes: bool) -> int:
    """The id, once the caller may read (or change) what it names. Admins pass without a database read, and so
    does a read with VISIBILITY=all."""
    if principal.is_admin:
        return target_id
    if changes and principal.role == Role.viewer:
        raise Forbidden(f"viewers read only: {principal.name} cannot change {kind} {target_id}")
    if changes or sees_only_own(request, principal):
        await run_in_threadpool(_check_target, request, principal, kind, target_id, changes)
    return target_id


JobPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The job's id.")]
SweepPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The sweep's id.")]


@declares("read a job")
async def readable_job(request: Request, principal: PrincipalDep, job_id: JobPath) -> int:
    return await _check(request, principal, "job", job_id, changes=False)


@declares("change a job")
async def changeable_job(request: Request, principal: PrincipalDep, job_id: JobPath) -> int:
    return await _check(request, principal, "job", job_id, changes=True)


@declares("read a sweep")
async def readable_sweep(request: Request, principal: PrincipalDep, sweep_id: SweepPath) -> int:
    return await _check(request, principal, "sweep", sweep_id, changes=False)


@declares("change a sweep")
async def changeable_sweep(request: Request, principal: PrincipalDep, sweep_id: SweepPath) -> int:
    return await _check(request, principal, "sweep", sweep_id, changes=True)


def parse_job_ids(text: str) -> list[int]:
    """`3,4,5` -> [3, 4, 5], each read as a path id is (so `+3` is 3), at most MAX_COMPARED distinct."""
    try:
        ids = list(dict.fromkeys(int(part) for part in text.split(",") if part.strip()))
    except ValueError:
        raise InvalidField("jobs", "comma-separated job ids, e.g. 3,4,5", location="query") from None
    if not ids or len(ids) > MAX_COMPARED or not all(1 <= i <= MAX_ID for i in ids):
        raise InvalidField("jobs", f"between 1 and {MAX_COMPARED} job ids, each from 1 to {MAX_ID}", location="query")
    return ids


@declares("read jobs")
async def readable_jobs(
    request: Request,
    principal: PrincipalDep,
    jobs: Annotated[str, Query(max_length=400, description="Comma-separated job ids, e.g. `3,4,5`.")],
) -> list[int]:
    ids = parse_job_ids(jobs)
    for job_id in ids:
        await _check(request, principal, "job", job_id, changes=False)
    return ids


ReadableJobId = Annotated[int, Depends(readable_job)]
ChangeableJobId = Annotated[int, Depends(changeable_job)]
ReadableSweepId = Annotated[int, Depends(readable_sweep)]
ChangeableSweepId = Annotated[int, Depends(changeable_sweep)]
ReadableJobIds = Annotated[list[int], Depends(readable_jobs)]


def readable_job_row(job_id: ReadableJobId, session: SessionDep) -> Job:
    return find_job(session, job_id)  # raises JobNotFound -> 404


def changeable_job_row(job_id: ChangeableJobId, session: SessionDep) -> Job:
    return find_job(session, job_id)


ReadableJob = Annotated[Job, Depends(readable_job_row)]
ChangeableJob = Annotated[Job, Depends(changeable_job_row)]


async def check_job_readable(request: Request, job_id: int) -> None:
    """For a job named in a body (/predict's `job_id`), after the route parsed it: 404 when the caller may not
    see it. A route calling this declares `READS` too."""
    await _check(request, principal_of(request), "job", job_id, changes=False)


@declares("create")
async def creator(principal: PrincipalDep) -> Principal:
    if principal.role == Role.viewer:
        raise Forbidden(f"viewers read only: {principal.name} cannot create jobs or sweeps")
    return principal


@declares("read")
async def reader(principal: PrincipalDep) -> Principal:
    return principal


@declares("own account")
async def account_holder(principal: PrincipalDep) -> Principal:
    return principal


@declares("admin")
async def admin(request: Request, principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        route = getattr(request.scope.get("route"), "path", request.url.path)
        raise Forbidden(f"{request.method} {route} is for admins (you are {principal.name}, a {principal.role})")
    return principal


@declares("public")
async def public() -> None:
    """Anyone who reached the service (AccessMiddleware has let them in)."""


CreatorDep = Annotated[Principal, Depends(creator)]
READS = Depends(reader)
OWN_ACCOUNT = Depends(account_holder)
ADMINS = Depends(admin)
PUBLIC = Depends(public)


def _declarations(dependant: Dependant) -> set[str]:
    found: set[str] = set()
    for dependency in dependant.dependencies:
        if dependency.call is not None and hasattr(dependency.call, PERMISSION):
            found.add(getattr(dependency.call, PERMISSION))
        found |= _declarations(dependency)
    return found


def declarations(route: APIRoute) -> set[str]:
    """What the route declares it needs, by its own dependencies or its APIRouter's (empty: nothing, and
    `refuse_undeclared` refuses it; one given only to `include_router` does not count)."""
    return _declarations(route.dependant)


async def refuse_undeclared(request: Request) -> None:
    """App-wide: a route that declares no permission is refused, whoever asks (it fails closed)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        raise Forbidden("this route declares no permission: refused for everyone")
    declared: bool | None = getattr(route, "declares_permission", None)  # worked out at its first request
    if declared is None:
        declared = bool(declarations(route))
        route.declares_permission = declared  # type: ignore[attr-defined]
    if not declared:
        raise Forbidden(f"{request.method} {route.path} declares no permission: refused for everyone")


def owned_by(request: Request, mine: bool = False) -> OwnedBy | None:
    """Whose jobs and sweeps a list (or the choice of a best model) holds: the caller's own with VISIBILITY=own
    or when asked (`mine`); None: everyone's."""
    principal = principal_of(request)
    if mine or sees_only_own(request, principal):
        return OwnedBy(principal.user_id)
    return None
