"""Which running job gives its place to a queued one (workers/preemption.py): the rules, each past its bound."""

from datetime import UTC, datetime, timedelta

from store.attempts import PlacedJob, Waiting
from workers.preemption import PreemptionRules, choose_victim

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
RULES = PreemptionRules(enabled=True, priority_gap=10, min_run_seconds=60, max_times=3)
URGENT = Waiting(id=99, priority=100, gpus=0, cpus=1)


def running(job_id: int, priority: int = 0, ran_seconds: float = 600, **fields: object) -> PlacedJob:
    values: dict[str, object] = {
        "id": job_id, "status": "running", "attempts": 1, "worker": "w", "model": "torch_mlp", "gpus": 0.0,
        "cpus": 1.0, "timeout_s": None, "created_at": NOW - timedelta(hours=1),
        "started_at": NOW - timedelta(seconds=ran_seconds), "cancel_requested": False, "priority": priority,
        **fields,
    }  # fmt: skip
    return PlacedJob(**values)  # type: ignore[arg-type]


def test_the_lowest_priority_then_the_most_recently_started_job_gives_its_place() -> None:
    jobs = [running(1, priority=5, ran_seconds=900), running(2, priority=0, ran_seconds=900),
            running(3, priority=0, ran_seconds=300)]  # fmt: skip
    assert choose_victim(jobs, URGENT, 0, 0, RULES, NOW) == jobs[2]


def test_a_priority_gap_below_the_setting_and_equal_priorities_never_preempt() -> None:
    assert choose_victim([running(1, priority=91)], URGENT, 0, 0, RULES, NOW) is None
    assert choose_victim([running(1, priority=90)], URGENT, 0, 0, RULES, NOW) is not None  # the gap, exactly
    equal = PreemptionRules(enabled=True, priority_gap=1, min_run_seconds=0, max_times=3)
    assert choose_victim([running(1, priority=100)], URGENT, 0, 0, equal, NOW) is None


def test_a_job_within_its_minimum_run_past_its_maximum_preemptions_or_opted_out_keeps_its_place() -> None:
    assert choose_victim([running(1, ran_seconds=59)], URGENT, 0, 0, RULES, NOW) is None
    assert choose_victim([running(1, ran_seconds=61)], URGENT, 0, 0, RULES, NOW) is not None
    assert choose_victim([running(1, preemptions=3)], URGENT, 0, 0, RULES, NOW) is None
    assert choose_victim([running(1, preemptions=2)], URGENT, 0, 0, RULES, NOW) is not None
    assert choose_victim([running(1, preemptible=False)], URGENT, 0, 0, RULES, NOW) is None


def test_only_a_place_that_fits_the_waiting_job_is_taken_and_one_preemption_at_a_time() -> None:
    wide = Waiting(id=99, priority=100, gpus=0, cpus=4)
    assert choose_victim([running(1, cpus=1.0)], wide, 0, 2, RULES, NOW) is None  # 1 + 2 free < 4
    assert choose_victim([running(1, cpus=2.0)], wide, 0, 2, RULES, NOW) is not None
    asked = [running(1, preempt_requested=True), running(2)]
    assert choose_victim(asked, URGENT, 0, 0, RULES, NOW) is None
    off = PreemptionRules(enabled=False, priority_gap=10, min_run_seconds=60, max_times=3)
    assert choose_victim([running(1)], URGENT, 0, 0, off, NOW) is None
