"""Periodic checkpoints at most once per CHECKPOINT_MIN_SECONDS, in process."""

from pathlib import Path

from models.kinds import parse_spec
from models.run import run_job
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource
from store.attempts import Attempt
from workers.reporter import DatabaseReporter

LONG = {"model": "torch_mlp", "hidden_units": [32], "batch_size": 50, "preprocessing": "standardize",
        "max_steps": 1_000_000, "eval_every": 1000, "log_every": 100, "checkpoint_every": 1}  # fmt: skip


class SpacedCheckpoints(InMemoryReporter):
    def __init__(self, every_nth_ask: int) -> None:
        super().__init__()
        self.asks, self.every_nth_ask = 0, every_nth_ask

    def checkpoint_due(self) -> bool:
        self.asks += 1
        return self.asks % self.every_nth_ask == 0


def test_the_loop_writes_a_periodic_checkpoint_only_when_the_reporter_says_it_is_due(data_dir: Path) -> None:
    spec = parse_spec({**LONG, "max_steps": 40, "eval_every": 20, "log_every": 10, "checkpoint_every": 2})
    reporter = SpacedCheckpoints(every_nth_ask=5)
    run_job(spec, reporter, DataSource(data_dir))
    assert reporter.asks == 19  # steps 2, 4, ..., 38 (none after the last step)
    assert [step for step, _ in reporter.checkpoints] == [10, 20, 30]


def test_the_database_reporter_spaces_checkpoints_in_time() -> None:
    assert DatabaseReporter(None, Attempt(1, 1), 1.0, 3600).checkpoint_due() is False  # type: ignore[arg-type]
    assert DatabaseReporter(None, Attempt(1, 1), 1.0, 0).checkpoint_due() is True  # type: ignore[arg-type]
