"""`python -m workers.deliverer`: the process that sends webhook deliveries from the outbox.

WEBHOOK_CONCURRENCY sends at once (tasks on one event loop), each claiming a due delivery (leased), sending it and
recording the attempt. It may be killed at any moment: a delivery sent but not recorded is sent again once its
lease ends (at least once; the `webhook-id` header lets the receiver drop the copy), and one claimed but not sent
is not lost. Several delivery processes may run against one store.

A receiver cannot hold this process: each send has one wall-clock deadline (WEBHOOK_TIMEOUT_SECONDS, and at most
0.8 of the lease) for everything, of the answer only its start is read, at most WEBHOOK_MAX_IN_FLIGHT sends go to
one webhook at once (a slow one leaves the others their turns), a send to a webhook deleted meanwhile ends within
WEBHOOK_POLL_SECONDS, and a stop (SIGTERM) ends the sends in flight (their deliveries go out again after the
lease). Every OUTBOX_HOUSEKEEPING_SECONDS it deletes the events and ended deliveries past OUTBOX_RETENTION_DAYS.
"""

import logging
import signal
import sys
from collections import defaultdict
from datetime import timedelta
from types import FrameType

import anyio
import anyio.abc
import anyio.to_thread
import httpx
from sqlalchemy.orm import Session, sessionmaker

from store.engine import engine_for, make_session_factory
from store.migrate import upgrade
from store.outbox import prune_outbox
from store.tables import utcnow
from store.unit_of_work import unit_of_work
from store.webhooks import AttemptOutcome, DueDelivery, claim_due_delivery, existing_webhooks, record_attempt
from supervision.stop_flag import StopFlag
from webhooks.sending import retry_at, send
from webhooks.settings import WebhookSettings
from workers.retry import TRANSIENT

log = logging.getLogger(__name__)
DEADLINE_SHARE_OF_LEASE = 0.8  # a send ends before its lease does: another deliverer never sends it meanwhile


class Deliverer:
    def __init__(self, settings: WebhookSettings, sessions: sessionmaker[Session]) -> None:
        self.settings, self.sessions = settings, sessions
        self.stop = StopFlag()  # set from a signal handler or another thread: the watch ends everything
        self.sending: dict[int, set[anyio.CancelScope]] = defaultdict(set)  # webhook id -> its sends in flight
        self.claiming = anyio.Lock()
        self.deadline = min(settings.webhook_timeout_seconds, DEADLINE_SHARE_OF_LEASE * settings.webhook_lease_seconds)

    def _claim(self, busy_webhooks: list[int]) -> DueDelivery | None:
        with unit_of_work(self.sessions) as session:
            return claim_due_delivery(session, self.settings.webhook_lease_seconds, busy_webhooks)

    def _record(self, due: DueDelivery, outcome: AttemptOutcome) -> bool:
        with unit_of_work(self.sessions) as session:
            return record_attempt(session, due, outcome, None if outcome.delivered else retry_at(due, self.settings))

    def _existing(self, webhook_ids: list[int]) -> set[int]:
        with self.sessions() as session:
            return existing_webhooks(session, webhook_ids)

    async def deliver_one(self, client: httpx.AsyncClient) -> bool:
        """Claim, send and record one due delivery; False when none was due."""
        scope = anyio.CancelScope()
        async with self.claiming:  # one claim at a time: each sees the sends the ones before it started
            limit = self.settings.webhook_max_in_flight
            busy = [webhook for webhook, sends in self.sending.items() if len(sends) >= limit]
            due = await anyio.to_thread.run_sync(self._claim, busy)
            if due is None:
                return False
            sends = self.sending[due.webhook_id]
            sends.add(scope)
        try:
            with scope:
                outcome = await send(client, due, self.settings, self.deadline)
        finally:
            sends.discard(scope)
            if not sends:
                del self.sending[due.webhook_id]
        if scope.cancelled_caught:
            log.info("event %s: webhook %s was deleted while it was sent", due.event_id, due.webhook_id)
            return True
        recorded = await anyio.to_thread.run_sync(self._record, due, outcome)
        if outcome.delivered:
            log.info("event %s delivered (attempt %s, %s)", due.event_id, due.attempt, outcome.status_code)
        else:  # the URL and the answer only: never the secret or the signature
            log.warning(
                "event %s not delivered to %s (attempt %s): %s",
                due.event_id, due.url, due.attempt, outcome.error or f"answered {outcome.status_code}",
            )  # fmt: skip
        if not recorded:
            log.warning("event %s: the lease ran out before the attempt was recorded", due.event_id)
        return True

    async def loop(self, client: httpx.AsyncClient, start_after: float = 0.0) -> None:
        await anyio.sleep(start_after)  # the loops' looks spread over the poll interval, not all at once
        while True:
            try:
                busy = await self.deliver_one(client)
            except TRANSIENT as exc:  # the store is briefly unreachable or locked: try again
                log.warning("delivery pass failed (%s); retrying", exc)
                busy = False
            if not busy:
                await anyio.sleep(self.settings.webhook_poll_seconds)

    async def watch(self, everything: anyio.abc.TaskGroup) -> None:
        """Every WEBHOOK_POLL_SECONDS: a stop ends everything, and a webhook deleted ends its sends in flight."""
        while not self.stop.is_set():
            await anyio.sleep(self.settings.webhook_poll_seconds)
            if self.sending:
                asked = list(self.sending)  # only these: a send to another may start while the question runs
                try:
                    existing = await anyio.to_thread.run_sync(self._existing, asked)
                except TRANSIENT:
                    continue
                for webhook in asked:
                    if webhook not in existing:
                        for scope in self.sending.get(webhook, ()):
                            scope.cancel()
        everything.cancel_scope.cancel()

    def _prune(self) -> tuple[int, int]:
        before = utcnow() - timedelta(days=self.settings.outbox_retention_days)
        return prune_outbox(self.sessions, before)

    async def housekeeping(self) -> None:
        """Every OUTBOX_HOUSEKEEPING_SECONDS (the first at start): what is past OUTBOX_RETENTION_DAYS goes."""
        while True:
            try:
                deliveries, events = await anyio.to_thread.run_sync(self._prune)
                if deliveries or events:
                    log.info("housekeeping: %s ended deliveries and %s events older than %g days deleted",
                             deliveries, events, self.settings.outbox_retention_days)  # fmt: skip
            except TRANSIENT as exc:
                log.warning("housekeeping failed (%s); again in %g s", exc, self.settings.outbox_housekeeping_seconds)
            await anyio.sleep(self.settings.outbox_housekeeping_seconds)

    async def serve(self) -> None:
        timeout = httpx.Timeout(self.deadline)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            async with anyio.create_task_group() as everything:
                concurrency, poll = self.settings.webhook_concurrency, self.settings.webhook_poll_seconds
                for i in range(concurrency):
                    everything.start_soon(self.loop, client, i * poll / concurrency)
                everything.start_soon(self.watch, everything)
                everything.start_soon(self.housekeeping)
                log.info("delivering webhooks, %s at a time", self.settings.webhook_concurrency)

    def run(self) -> None:
        anyio.run(self.serve)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request, with the URL: ours says more
    settings = WebhookSettings()
    engine = engine_for(settings)
    upgrade(engine)
    deliverer = Deliverer(settings, make_session_factory(engine))

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        deliverer.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    deliverer.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
