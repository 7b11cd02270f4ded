"""/healthz: the service is up and its database can be read and written (503 with the reason when not)."""

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from app.access.permissions import PUBLIC
from app.http.deps import UnitOfWorkDep
from app.http.errors import error_responses
from store.health import check_readable_and_writable


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]


router = APIRouter(tags=["health"], dependencies=[PUBLIC])


@router.get(
    "/healthz",
    response_model=Health,
    responses=error_responses({503: "The database is read-only, full or unavailable: the message says which."}),
)
def healthz(session: UnitOfWorkDep) -> Health:
    """A read and a small write (one row): a read-only or full database is not healthy."""
    check_readable_and_writable(session)
    return Health(status="ok", database="ok")
