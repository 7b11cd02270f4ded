"""Issue 47: this service's side of bench/peers/tracking.py, run here so it cannot rot (MLflow, its peer, is not
installed by `make test`). Times nothing; checks that each measured read answers what the bench counts on."""

from pathlib import Path

from bench.peers.tracking import STEPS, TEST_EVERY, Ours, database_bytes


def test_the_tracking_benchmarks_side_of_this_service_answers_each_read(tmp_path: Path) -> None:
    ours = Ours(tmp_path)
    try:
        job_id = ours.log_curve()
        assert ours.whole_curve(job_id) == STEPS + STEPS // TEST_EVERY  # every train and test point, one request
        assert 0 < ours.plot_view(job_id) <= 2 * 500
        ours.store_runs(30)
        assert ours.runs_table() == 15  # the runs with optimizer=adam, best first
        assert database_bytes(ours.database_url) > 0 and ours.main_query_ms() > 0
    finally:
        ours.stop()
