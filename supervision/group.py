"""Processes started, signalled and awaited together: each child in its own process group, so a terminal's Ctrl-C
reaches the supervisor only, which forwards it to each child once (a worker that got it twice, from the terminal
and forwarded, would take it for the second Ctrl-C and kill its job instead of checkpointing it). A restartable
child that ends on its own is started again with backoff (1 s doubling to 60 s, and back to 1 s after a run of
`healthy_seconds`, 60 by default); when an essential child ends, the others are stopped."""

import logging
import signal
import subprocess
import time
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("supervision")
POLL_SECONDS = 0.2
FIRST_DELAY_SECONDS, MAX_DELAY_SECONDS = 1.0, 60.0
HEALTHY_SECONDS = 60.0  # a run this long was healthy: the next crash is a first one again


@dataclass
class Child:
    name: str
    command: list[str]
    env: dict[str, str] | None = None  # None: the supervisor's own
    restart: bool = False  # started again when it ends on its own (a crash, the OOM killer)
    essential: bool = False  # when it ends, the group stops
    healthy_seconds: float = HEALTHY_SECONDS
    process: "subprocess.Popen[bytes] | None" = field(default=None, init=False)
    _delay: float = field(default=FIRST_DELAY_SECONDS, init=False)
    _restart_at: float | None = field(default=None, init=False)
    _started_at: float = field(default=0.0, init=False)

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env, process_group=0)
        self._started_at = time.monotonic()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart_when_due(self) -> None:
        if self.running() or not self.restart or self.process is None:
            return
        if self._restart_at is None:
            if time.monotonic() - self._started_at >= self.healthy_seconds:
                self._delay = FIRST_DELAY_SECONDS  # it ran well a while: not one more crash of a series
            log.warning("the %s exited with %s; another starts in %.0f s", self.name, self.process.returncode,
                        self._delay)  # fmt: skip
            self._restart_at = time.monotonic() + self._delay
        elif time.monotonic() >= self._restart_at:
            self.start()
            log.info("%s restarted, pid %s", self.name, self.process.pid)
            self._delay, self._restart_at = min(MAX_DELAY_SECONDS, self._delay * 2), None


@dataclass
class Outcome:
    codes: list[int]  # each child's last exit code, in the group's order
    asked_to_stop: bool  # a SIGINT or SIGTERM reached the supervisor


class ProcessGroup:
    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.asked_to_stop = False
        signal.signal(signal.SIGINT, self._on_signal)  # before the first child starts: none is left behind
        signal.signal(signal.SIGTERM, self._on_signal)
        for child in children:
            child.start()

    def signal_all(self, signum: int) -> None:
        for child in self.children:
            if child.running():
                assert child.process is not None
                child.process.send_signal(signum)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.asked_to_stop = True
        self.signal_all(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    def run(self) -> Outcome:
        """Forward SIGINT and SIGTERM; restart what may be restarted until asked to stop; return when every child
        has ended (an essential child's end stops the others)."""
        while any(child.running() for child in self.children):
            if any(child.essential and not child.running() for child in self.children):
                self.signal_all(signal.SIGTERM)  # one ended: take the others down too
                break
            if self.asked_to_stop and not any(c.running() for c in self.children if not c.essential):
                self.signal_all(signal.SIGTERM)  # the helpers stopped: a second signal ends the API's wait for
                break  # its open connections (an event stream stays open)
            if not self.asked_to_stop:
                for child in self.children:
                    child.restart_when_due()
            time.sleep(POLL_SECONDS)
        codes = []
        for child in self.children:
            assert child.process is not None
            codes.append(child.process.wait())
        return Outcome(codes, self.asked_to_stop)
