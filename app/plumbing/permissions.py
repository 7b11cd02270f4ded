"""Who may do what, checked once for every route before it runs (docs/RELIABILITY.md has the table).

- admin: anything, on anyone's jobs and sweeps; the webhooks, users and the audit log are theirs alone.
- member: reads (what VISIBILITY lets them), creates jobs and sweeps, and changes (cancel, delete, PATCH,
  a sweep's cancel) only what they own.
- viewer: reads only.

With VISIBILITY=own a member's or viewer's request for someone else's job or sweep is answered as if it
did not exist (404), the lists hold only their own, and `init_from_job` reads only their own.
"""

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from app.plumbing.auth import Principal, principal_of
from app.plumbing.refusals import Forbidden
from store.errors import JobNotFound
from store.jobs import OwnedBy
from store.sweeps import SweepNotFound
from store.tables import Role
from store.users import owner_of_job, owner_of_sweep

# (method, route) that change an existing job or sweep: its owner's or an admin's to do
CHANGES = {
    ("PATCH", "/jobs/{job_id}"),
    ("DELETE", "/jobs/{job_id}"),
    ("POST", "/jobs/{job_id}/cancel"),
    ("POST", "/sweeps/{sweep_id}/cancel"),
}
# (method, route) that create jobs or sweeps (a reproduction reads the job it copies)
CREATES = {
    ("POST", "/jobs"),
    ("POST", "/sweeps"),
    ("POST", "/jobs/{job_id}/reproduce"),
    ("POST", "/reports/assignment"),
}
ADMIN_ONLY = ("/webhooks", "/audit", "/users")  # /users/me... is every user's own: app.users.routes
OWN_ROUTES = "/users/me"


def sees_only_own(request: Request, principal: Principal) -> bool:
    """Whether this caller's lists and reads hold only what they own."""
    return not principal.is_admin and request.app.state.settings.visibility == "own"


def _check_target(request: Request, principal: Principal, kind: str, target_id: int, changes: bool) -> None:
    lookup = owner_of_job if kind == "job" else owner_of_sweep
    with request.app.state.sessions() as session:
        exists, owner = lookup(session, target_id)
    if not exists or owner == principal.user_id:
        return  # the route answers 404 for one that does not exist
    if sees_only_own(request, principal):
        raise JobNotFound(target_id) if kind == "job" else SweepNotFound(target_id)
    if changes:
        raise Forbidden(f"{kind} {target_id} is not yours: only its owner or an admin may change it")


def _job_ids_read(request: Request) -> list[int]:
    """Jobs a route reads through its query (/predict?job_id=, /plots/compare.png?jobs=)."""
    ids = [request.query_params.get("job_id", "")] + request.query_params.get("jobs", "").split(",")
    return [int(part) for part in ids if part.strip().isdigit()]


def _check(request: Request, principal: Principal) -> None:
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    action = (request.method, template)
    if template.startswith(ADMIN_ONLY) and not template.startswith(OWN_ROUTES):
        raise Forbidden(f"{request.method} {template} is for admins (you are {principal.name}, a {principal.role})")
    if principal.role == Role.viewer and (action in CHANGES or action in CREATES):
        raise Forbidden(f"viewers read only: {principal.name} cannot {request.method} {template}")
    changes = action in CHANGES
    if not changes and not sees_only_own(request, principal):
        return  # a read (or a creation) of what everyone may read: no owner to look up
    for kind in ("job", "sweep"):
        value = str(request.path_params.get(f"{kind}_id", ""))
        if value.isdigit():  # else the route's own validation answers 422
            _check_target(request, principal, kind, int(value), changes)
    if sees_only_own(request, principal):
        for job_id in _job_ids_read(request):
            _check_target(request, principal, "job", job_id, False)


def _needs_owners(request: Request, principal: Principal) -> bool:
    route = getattr(request.scope.get("route"), "path", "")
    return (request.method, route) in CHANGES or sees_only_own(request, principal)


async def authorize(request: Request) -> None:
    """Refuse what the caller may not do (403), or may not see (404), before the route runs. Admins (and the
    single-user mode) pass without a database read, and so does a read with VISIBILITY=all."""
    principal = principal_of(request)
    if principal.is_admin:
        return
    if _needs_owners(request, principal):
        await run_in_threadpool(_check, request, principal)
    else:
        _check(request, principal)  # role checks only: no database, no thread


def owned_by(request: Request, mine: bool = False) -> OwnedBy | None:
    """Whose jobs and sweeps a list (or the choice of a best model) holds: the caller's own with VISIBILITY=own
    or when asked (`mine`); None: everyone's."""
    principal = principal_of(request)
    if mine or sees_only_own(request, principal):
        return OwnedBy(principal.user_id)
    return None


async def check_job_readable(request: Request, job_id: int) -> None:
    """For a job named in a body (/predict's `job_id`): 404 when the caller may not see it."""
    principal = principal_of(request)
    if sees_only_own(request, principal):
        await run_in_threadpool(_check_target, request, principal, "job", job_id, False)
