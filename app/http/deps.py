"""Typed dependencies shared by the routes."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from app.runtime.pools import WorkPool
from store.tables import MAX_INT32
from store.unit_of_work import unit_of_work

MAX_ID = MAX_INT32


def get_session(request: Request) -> Iterator[Session]:
    """A session for reading: what it might change is rolled back when it closes."""
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_unit_of_work(request: Request) -> Iterator[Session]:
    """The request's unit of work (store/unit_of_work.py): everything the route changes commits once, when it
    returns and before the answer is sent, or not at all, when it raises."""
    with unit_of_work(request.app.state.sessions) as session:
        yield session


UnitOfWorkDep = Annotated[Session, Depends(get_unit_of_work, scope="function")]


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    """For routes that open their session inside one service call (async: no thread hand-off)."""
    return request.app.state.sessions  # type: ignore[no-any-return]


SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]


async def get_bulk_pool(request: Request) -> WorkPool:
    """The pool for whole curves, catch-up pages and plots (app.runtime.pools)."""
    return request.app.state.bulk_pool  # type: ignore[no-any-return]


BulkDep = Annotated[WorkPool, Depends(get_bulk_pool)]
