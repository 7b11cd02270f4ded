"""Opening a PostgreSQL connection is bounded in time: a server that accepts and never answers (or a host that
drops packets) fails the attempt after the connect timeout, as an outage, instead of holding the caller."""

import socket
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from store.engine import engine_for, make_engine
from store.settings import StoreSettings


def test_a_server_that_never_answers_fails_the_connection_after_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel completes the handshake; nobody answers
        port = silent.getsockname()[1]
        url = f"postgresql+psycopg://user@127.0.0.1:{port}/jobs"
        engine = engine_for(StoreSettings(database_url=url, database_connect_timeout_seconds=1))  # the setting
        started = time.monotonic()
        with pytest.raises(OperationalError, match="timeout"), engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        assert time.monotonic() - started < 10
        engine.dispose()


def test_a_urls_own_connect_timeout_stands() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        engine = make_engine(f"postgresql+psycopg://user@127.0.0.1:{port}/jobs?connect_timeout=1",
                             connect_timeout_seconds=600)  # fmt: skip
        started = time.monotonic()
        with pytest.raises(OperationalError), engine.connect():
            pass
        assert time.monotonic() - started < 10
        engine.dispose()
