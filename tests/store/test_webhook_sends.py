"""The delivery process against hostile receivers (issue 40, finding 5), in process on a real database: one
answering a gigabyte, one answering a byte at a time; a send has one deadline, reads only the start of an answer,
a slow webhook holds at most WEBHOOK_MAX_IN_FLIGHT sends, and a deleted webhook or a stop ends sends in flight."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from harness.net import free_port
from harness.waiting import wait_until
from store.tables import JobEvent, WebhookDelivery
from store.webhooks import create_webhook, delete_webhook, owe_test_event
from webhooks.settings import WebhookSettings
from workers.deliverer import Deliverer

GIGABYTE = 1 << 30


class Receiver:
    """A loopback HTTP receiver answering each request as `behaviour` says: `ok` (200 at once), `huge` (200 and a
    gigabyte of body, as fast as the client takes it) or `trickle` (a byte of the status line every 0.2 s)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self.bytes_written = 0
        self.open_connections = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with self.lock:
            self.requests += 1
            self.open_connections += 1
        try:
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                while len(body) < length:
                    body += connection.recv(65536)
                if self.behaviour == "ok":
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                elif self.behaviour == "huge":
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % GIGABYTE)
                    block = b"y" * 65536
                    while self.bytes_written < GIGABYTE:
                        connection.sendall(block)
                        self.bytes_written += len(block)
                else:
                    for byte in b"HTTP/1.1 200 OK\r\n" * 1000:
                        connection.sendall(bytes([byte]))
                        time.sleep(0.2)
        except OSError:
            pass  # the deliverer hung up
        finally:
            with self.lock:
                self.open_connections -= 1

    def close(self) -> None:
        self.listener.close()


@contextmanager
def delivering(sessions: sessionmaker[Session], **settings: Any) -> Iterator[Deliverer]:
    options = {"webhook_allow_private": True, "webhook_poll_seconds": 0.05, "webhook_retry_base_seconds": 30.0,
               **settings}  # fmt: skip
    deliverer = Deliverer(WebhookSettings(**options), sessions)
    thread = threading.Thread(target=deliverer.run, daemon=True)
    thread.start()
    try:
        yield deliverer
    finally:
        deliverer.stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the delivery process did not stop"


def _attempts(sessions: sessionmaker[Session], webhook_id: int) -> list[list[dict[str, Any]]]:
    with sessions() as session:
        rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
        return [row.attempt_log for row in rows]


def test_a_send_has_one_deadline_reads_the_start_of_an_answer_and_a_slow_webhook_leaves_room(
    sessions: sessionmaker[Session],
) -> None:
    """Before: a gigabyte answer was read whole (9.5 GB resident); a byte every 3 s held a thread past its lease
    (the event sent 3 times, no attempt recorded), took all four threads and delayed a healthy webhook by minutes."""
    receivers = {name: Receiver(name) for name in ("trickle", "huge", "ok")}
    hooks: dict[str, int] = {}
    with sessions() as session:
        for name, receiver in receivers.items():
            hooks[name] = create_webhook(session, receiver.url, ["job.succeeded"], "whsec_" + "QUJD" * 8).id
            session.commit()
        for name in ("trickle", "trickle", "trickle", "huge", "ok", "ok", "ok"):
            owe_test_event(session, hooks[name])
            session.commit()
    with delivering(sessions, webhook_timeout_seconds=1.0, webhook_lease_seconds=3.0, webhook_concurrency=3,
                    webhook_max_in_flight=1):  # fmt: skip
        wait_until(lambda: all(log for log in _attempts(sessions, hooks["ok"])), 20, "the healthy ones")
        wait_until(lambda: all(log for log in _attempts(sessions, hooks["trickle"])), 20, "each slow one tried")
        wait_until(lambda: _attempts(sessions, hooks["huge"])[0], 20, "the huge answer recorded")
    # the slow webhook's sends go one at a time (they took every thread before): the healthy ones do not wait
    assert [log[0]["attempt"] for log in _attempts(sessions, hooks["ok"])] == [1, 1, 1]  # none taken for deleted
    last_healthy = max(log[0]["at"] for log in _attempts(sessions, hooks["ok"]))
    assert last_healthy < max(log[0]["at"] for log in _attempts(sessions, hooks["trickle"]))
    for log in _attempts(sessions, hooks["trickle"]):
        assert log[0]["status_code"] is None and log[0]["error"] == "no whole answer within 1 s", log
        assert log[0]["seconds"] < 2.5  # within the deadline (and the lease): recorded, not sent again meanwhile
    assert receivers["trickle"].requests == 3  # each once: none sent again by a lease running out mid-send
    huge = _attempts(sessions, hooks["huge"])[0][0]
    assert huge["status_code"] == 200 and huge["answer"] == "y" * 500
    assert receivers["huge"].bytes_written < 64 << 20, receivers["huge"].bytes_written  # of the gigabyte offered
    for receiver in receivers.values():
        receiver.close()


def test_a_deleted_webhook_and_a_stop_end_the_sends_in_flight(sessions: sessionmaker[Session]) -> None:
    """Before: a send to a slow receiver went on after its webhook was deleted, and held the stop for over 35 s."""
    slow = Receiver("trickle")
    with sessions() as session:
        first = create_webhook(session, slow.url, ["job.succeeded"], "whsec_" + "QUJD" * 8).id
        session.commit()
        second = create_webhook(session, slow.url, ["job.succeeded"], "whsec_" + "QUJD" * 8).id
        session.commit()
        owe_test_event(session, first)
        session.commit()
        owe_test_event(session, second)
        session.commit()
    with delivering(sessions, webhook_timeout_seconds=60.0, webhook_lease_seconds=120.0) as deliverer:
        wait_until(lambda: slow.open_connections == 2, 10, "both sends under way")
        with sessions() as session:
            delete_webhook(session, first)
            session.commit()
        wait_until(lambda: slow.open_connections == 1, 5, "the deleted webhook's send ended")
        stopping = time.monotonic()
        deliverer.stop.set()
    assert time.monotonic() - stopping < 5  # `delivering` joined the thread: the stop ended the other send
    wait_until(lambda: slow.open_connections == 0, 5, "the other send ended")
    assert _attempts(sessions, second) == [[]]  # not recorded: it goes out again after its lease
    slow.close()


def _event_ids(sessions: sessionmaker[Session]) -> set[int]:
    with sessions() as session:
        return set(session.scalars(select(JobEvent.id)))


def test_old_events_and_ended_deliveries_are_deleted_past_the_retention(sessions: sessionmaker[Session]) -> None:
    """Issue 40, finding 8: `job_events` and delivered `webhook_deliveries` grew forever. Run past the housekeeping
    interval: what ended and is older than the retention goes; a pending delivery and its event stay."""
    ok, down = Receiver("ok"), f"http://127.0.0.1:{free_port()}/hook"  # nobody there: pending, retried in 30 s
    with sessions() as session:
        delivered_hook = create_webhook(session, ok.url, ["job.succeeded"], "whsec_" + "QUJD" * 8).id
        session.commit()
        pending_hook = create_webhook(session, down, ["job.succeeded"], "whsec_" + "QUJD" * 8).id
        session.commit()
        for _ in range(3):
            owe_test_event(session, delivered_hook)
            session.commit()
        kept_event = owe_test_event(session, pending_hook)
        session.commit()
    retention_days = 2 / 86400  # 2 s
    with delivering(sessions, outbox_retention_days=retention_days, outbox_housekeeping_seconds=0.2):
        wait_until(lambda: all(_attempts(sessions, delivered_hook)), 10, "the deliveries sent")
        wait_until(lambda: len(_attempts(sessions, delivered_hook)) == 0, 10, "the ended deliveries deleted")
        # the events go in the pass's next unit of work, after their deliveries': wait for it, not for a moment
        wait_until(lambda: _event_ids(sessions) <= {kept_event}, 10, "the ended deliveries' events deleted")
    assert _event_ids(sessions) == {kept_event}  # the pending one's event stays; the other four went
    with sessions() as session:
        pending = session.scalars(select(WebhookDelivery)).one()
    assert (pending.webhook_id, pending.status, pending.event_id) == (pending_hook, "pending", kept_event)
    ok.close()
