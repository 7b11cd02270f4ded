"""The workspace page, measured in headless Chromium: the runs table with 1,000 jobs, a sort or filter
change, and a comparison of 10 runs of 10,000 points each; and the size of the page's own files.

    .venv/bin/python bench/workspace_page.py [--rounds 5]

Starts the API (one process, uvicorn) on a fresh SQLite file holding 1,000 jobs (700 finished, with
final metrics; specs differing in learning rate, optimizer, hidden units and batch size) and 10 finished
jobs of 10,000 points each, written through the store. Times are the page's own clock (performance.now)
from the action to the table or charts drawn. The reference, timed in the same page in the same rounds:
the API's answer alone (fetch and JSON parse of the same GET /jobs, and of the 10 curves, every point). Targets: first
render < 1 s, a sort or filter < 300 ms, the comparison < 1 s, the page's files < 400 KB.
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Page
from sqlalchemy import update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hostile_load import cpu_model
from bench.watching import long_job, start_api
from harness.browser import browser_session
from specs import parse_job_spec
from store.engine import make_engine, make_session_factory
from store.jobs import create_job
from store.migrate import upgrade
from store.tables import Job, JobStatus, utcnow

JOBS = 1000
COMPARED = 10
POINTS = 10_000
RATES = (0.1, 0.01, 0.001, 0.0001)
SHAPES = ([100], [800, 600, 400], [100, 100, 50, 50, 50, 50])


def store_jobs(sessions: Any) -> None:
    """1,000 torch_mlp jobs; 7 of each 10 finished with final metrics that depend on their spec."""
    with sessions() as session:
        for i in range(JOBS):
            spec = {"model": "torch_mlp", "name": f"run {i}", "learning_rate": RATES[i % 4],
                    "optimizer": ("sgd", "adam")[i % 2], "hidden_units": SHAPES[i % 3],
                    "batch_size": (100, 200)[i % 2]}  # fmt: skip
            job, _ = create_job(session, parse_job_spec(spec))
            session.commit()
            if i % 10 < 7:
                metrics = {"test_accuracy": 0.3 + (i % 97) / 400, "best_test_accuracy": 0.35 + (i % 97) / 400,
                           "train_loss": 1.5 - (i % 89) / 100, "steps_per_second": 100 + i % 50}  # fmt: skip
                now = utcnow()
                session.execute(
                    update(Job)
                    .where(Job.id == job.id)
                    .values(status=JobStatus.succeeded.value, final_metrics=metrics, started_at=now, finished_at=now)
                )
        session.commit()


def clock(page: Page) -> float:
    return float(page.evaluate("() => performance.now()"))


def first_render(page: Page, url: str) -> float:
    """Milliseconds from navigation to the live table drawn with its 200 newest rows."""
    page.goto("about:blank")
    page.goto(url + "/#runs")
    page.wait_for_function("() => document.querySelectorAll('#jobs tbody tr').length === 200")
    return clock(page)


def change(page: Page, act: str, done: str) -> float:
    """Milliseconds from `act` (JavaScript run in the page) to `done` (a condition) holding."""
    start = clock(page)
    page.evaluate(act)
    page.wait_for_function(done)
    return clock(page) - start


def fetch_alone(page: Page, paths: list[str]) -> float:
    """Milliseconds to fetch and parse these API answers in the page, at once (the reference)."""
    return float(
        page.evaluate(
            """async (paths) => {
                const start = performance.now();
                await Promise.all(paths.map((path) => fetch(path).then((response) => response.json())));
                return performance.now() - start;
            }""",
            paths,
        )
    )


SORTED = "() => document.querySelector('#jobs thead th[aria-sort]')?.textContent.startsWith('{label}') && " \
         "/^1010 matching/.test(document.getElementById('connection').textContent)"  # fmt: skip


def measure(page: Page, url: str, compared: list[int], rounds: int) -> dict[str, list[float]]:
    keys = ("render", "render_ref", "sort", "sort_ref", "filter", "filter_ref", "compare", "compare_ref")
    found: dict[str, list[float]] = {key: [] for key in keys}
    ids = ",".join(map(str, compared))
    for _ in range(rounds):  # interleaved: each round times every view and its reference
        found["render"].append(first_render(page, url))
        found["render_ref"].append(fetch_alone(page, ["/jobs?limit=200"]))
        for key in ("learning_rate", "-test_accuracy"):
            page.evaluate("() => { location.hash = '#runs'; }")
            page.wait_for_function("() => document.getElementById('connection').textContent === 'live'")
            label = "learning_rate" if key == "learning_rate" else "test acc."
            act = f"() => document.querySelector('#jobs thead th button[title=\"sort by {key.lstrip('-')}\"]').click()"
            found["sort"].append(change(page, act, SORTED.replace("{label}", label)))
        found["sort_ref"].append(fetch_alone(page, ["/jobs?limit=200&sort=learning_rate"]))
        found["filter_ref"].append(
            fetch_alone(page, ["/jobs?limit=200&where=optimizer%3Dadam&where=test_accuracy%3E0.5"])
        )
        act = "() => { document.getElementById('filter-where').value = 'optimizer=adam test_accuracy>0.5'; " \
              "document.getElementById('filter-form').requestSubmit(); }"  # fmt: skip
        found["filter"].append(change(page, act, "() => /^\\d+ matching/.test(document.getElementById('connection')"
                                                 ".textContent) && location.hash.includes('where')"))  # fmt: skip
        page.evaluate("() => { document.getElementById('filter-where').value = ''; location.hash = '#runs'; }")
        act = f"() => {{ location.hash = '#compare/{ids}'; }}"
        done = (
            f"() => compareCharts.length === 2 && compareCharts[1].series.length === {1 + len(compared)}"  # train only
        )
        found["compare"].append(change(page, act, done))
        found["compare_ref"].append(fetch_alone(page, [f"/jobs/{i}/metrics?max_points=10000" for i in compared]))
    return found


def page_bytes(page: Page, url: str) -> int:
    """The page's own files as the browser decoded them: the HTML, scripts, styles (uPlot included)."""
    page.goto(url + "/#runs")
    page.wait_for_load_state("load")
    return int(
        page.evaluate(
            """() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
                .filter((entry) => !entry.name.includes('/jobs') && !entry.name.includes('/events')
                                   && !entry.name.includes('/models'))
                .reduce((sum, entry) => sum + entry.decodedBodySize, 0)"""
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        api, url, database = start_api(Path(tmp))
        engine = make_engine(database)
        upgrade(engine)
        sessions = make_session_factory(engine)
        try:
            compared = [long_job(sessions, POINTS) for _ in range(COMPARED)]
            store_jobs(sessions)  # the newest 1,000: the 10 long jobs are older than the table's 200 rows
            for browser in browser_session():
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                found = measure(page, url, compared, args.rounds)
                size = page_bytes(page, url)
        finally:
            os.killpg(api.pid, signal.SIGTERM)
            api.wait()
            engine.dispose()

    def row(what: str, key: str, ref: str, target: str) -> None:
        median, reference = statistics.median(found[key]), statistics.median(found[ref])
        print(f"| {what} | {median:.0f} ms (max {max(found[key]):.0f}) | {reference:.0f} ms | "
              f"{median / reference:.1f}x | {target} |")  # fmt: skip

    print(f"CPU: {cpu_model()}; {args.rounds} rounds, medians\n")
    print("| what | page | the API's answer alone | ratio | target |\n|---|---|---|---|---|")
    row(f"runs table, {JOBS} jobs: first render (200 newest rows, live)", "render", "render_ref", "< 1 s")
    row("sort by a column (learning rate, test accuracy)", "sort", "sort_ref", "< 300 ms")
    row("filter: optimizer=adam test_accuracy>0.5", "filter", "filter_ref", "< 300 ms")
    row(f"compare {COMPARED} runs of {POINTS:,} points", "compare", "compare_ref", "< 1 s")
    print(f"| the page's own files | {size / 1024:.0f} KB | - | - | < 400 KB |")


if __name__ == "__main__":
    main()
