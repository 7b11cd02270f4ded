"""/healthz: the service is up and its database answers."""

from fastapi import APIRouter
from sqlalchemy import text

from app.deps import SessionDep
from app.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(session: SessionDep) -> Health:
    session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok")
