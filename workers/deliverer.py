"""`python -m workers.deliverer`: the process that sends webhook deliveries from the outbox.

Each of WEBHOOK_CONCURRENCY threads claims a due delivery (leased), sends it, and records the attempt. It may be
killed at any moment: a delivery sent but not recorded is sent again once its lease ends (at least once; the
`webhook-id` header lets the receiver drop the copy), and one claimed but not sent is not lost.
Several delivery processes may run against one store.
"""

import logging
import signal
import sys
import threading
from types import FrameType

import httpx
from sqlalchemy.orm import Session, sessionmaker

from store.engine import engine_for, make_session_factory
from store.migrate import upgrade
from store.webhooks import claim_due_delivery, record_attempt
from webhooks.sending import retry_at, send
from webhooks.settings import WebhookSettings
from workers.retry import TRANSIENT
from workers.stop_flag import StopFlag

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(self, settings: WebhookSettings, sessions: sessionmaker[Session]) -> None:
        self.settings, self.sessions = settings, sessions
        self.stop = StopFlag()

    def deliver_one(self, client: httpx.Client) -> bool:
        """Claim, send and record one due delivery; False when none was due."""
        with self.sessions() as session:
            due = claim_due_delivery(session, self.settings.webhook_lease_seconds)
        if due is None:
            return False
        outcome = send(client, due, self.settings)
        with self.sessions() as session:
            recorded = record_attempt(
                session, due, outcome, None if outcome.delivered else retry_at(due, self.settings)
            )
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

    def loop(self) -> None:
        with httpx.Client(timeout=self.settings.webhook_timeout_seconds, follow_redirects=False) as client:
            while not self.stop.is_set():
                try:
                    busy = self.deliver_one(client)
                except TRANSIENT as exc:  # the store is briefly unreachable or locked: try again
                    log.warning("delivery pass failed (%s); retrying", exc)
                    busy = False
                if not busy:
                    self.stop.wait(self.settings.webhook_poll_seconds)

    def run(self) -> None:
        threads = [
            threading.Thread(target=self.loop, name=f"deliverer-{i}", daemon=True)
            for i in range(self.settings.webhook_concurrency)
        ]
        for thread in threads:
            thread.start()
        log.info("delivering webhooks with %s threads", len(threads))
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)


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
