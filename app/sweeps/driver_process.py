"""`python -m app.sweeps.driver_process`: the sweep driver, one process beside the API, the worker and the webhook
deliverer (`make serve` starts it; docker-compose's `sweeps` service). Every SWEEP_INTERVAL_SECONDS it moves every
running sweep on (`sweeps.driver`); a stop (SIGTERM, Ctrl-C) ends it after the pass in progress.

It works only while it holds the `sweep-driver` lease (`store.leases`), renewed at the start of each pass and as
the last statement of every unit of work it writes (a unit whose renewal finds another holder is undone), so two
drivers started by mistake never act on one sweep at once: the second waits and
takes over when the first stops (it gives the lease back) or is killed (after SWEEP_LEASE_SECONDS without a
renewal). The lease's count of passes is Prometheus's `cifar_sweep_driver_passes` (the API reads it at a scrape).
"""

import logging
import os
import signal
import socket
import sys
from functools import partial
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

from app.settings import ApiSettings, get_settings
from app.users.quotas import RecentHours, room_in_queue
from store.engine import session_factory_for
from store.leases import SWEEP_DRIVER, LeaseLost, hold_lease, release_lease
from store.migrate import upgrade
from store.unit_of_work import transact, unit_of_work
from supervision.stop_flag import StopFlag
from sweeps.driver import EvaluationNews, RoomInQueue, advance_all

log = logging.getLogger(__name__)


class SweepDriver:
    def __init__(
        self, sessions: sessionmaker[Session], settings: ApiSettings, holder: str, room: RoomInQueue | None = None
    ) -> None:
        self.sessions, self.holder = sessions, holder
        self.interval_seconds, self.lease_seconds = settings.sweep_interval_seconds, settings.sweep_lease_seconds
        # the owner's queued_jobs quota and CPU-hours hold trials back too
        self.room_in_queue = room or partial(room_in_queue, settings, RecentHours(settings.quota_hours_seconds))
        self.news = EvaluationNews()  # which sweeps evaluated since the last pass (the outbox, from an id)
        self.holding = False
        self.stop = StopFlag()  # set from a signal handler or another thread

    def _hold(self, session: Session, count: bool = False) -> None:
        if not hold_lease(session, SWEEP_DRIVER, self.holder, self.lease_seconds, count):
            raise LeaseLost(SWEEP_DRIVER)

    def run_once(self) -> bool:
        """One pass if this driver holds the lease (taking it when it is free); whether it did."""
        try:
            transact(self.sessions, partial(self._hold, count=True))
            if not self.holding:
                log.info("%s holds the sweep driver's lease: driving the sweeps", self.holder)
                self.holding, self.news = True, EvaluationNews()  # after a gap, every sweep's evaluations again
            advance_all(self.sessions, self.room_in_queue, self.news, self._hold)
        except LeaseLost:
            if self.holding:
                log.warning("%s lost the sweep driver's lease: another driver drives the sweeps", self.holder)
            else:
                log.debug("another driver holds the lease")
            self.holding = False
        return self.holding

    def run(self) -> None:
        """Passes until `stop` is set, then the lease given back (the next driver takes over at once)."""
        try:
            while not self.stop.is_set():
                try:
                    self.run_once()
                except Exception:  # the database away for a moment: try again next time
                    log.exception("the sweep driver's pass failed")
                self.stop.wait(self.interval_seconds)
        finally:
            if self.holding:
                with unit_of_work(self.sessions) as session:
                    release_lease(session, SWEEP_DRIVER, self.holder)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    engine, sessions = session_factory_for(settings)
    upgrade(engine)
    driver = SweepDriver(sessions, settings, f"{socket.gethostname()}:{os.getpid()}")

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        driver.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("the sweep driver %s starts (a pass every %s s)", driver.holder, driver.interval_seconds)
    driver.run()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
