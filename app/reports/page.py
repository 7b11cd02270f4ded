"""The assignment report regenerated from its jobs: a table (the report's accuracy beside this
service's, steps, wall time) and one figure per run, as an HTML page or as Markdown."""

import html
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.reports.runs import ReportRun, find_run_jobs
from store.jobs import OwnedBy
from store.points import latest_test_accuracy
from store.tables import Job, JobStatus, utcnow

INTRO = (
    "The University of Amsterdam's 2020 deep-learning assignment 1, its report's runs trained by this "
    "service on CIFAR-10, with the report's settings. Each figure is train and test loss and accuracy against "
    "step for one run, numbered as the report's six figures, under the report's caption. Four runs beyond "
    "its figures follow, marked so: what its sections 2.2 (Tanh) and 3 (normalisation) discuss in words only."
)

NUMBERS_NOTE = (
    "The report's accuracy is given where its text states one (\u201capproximately 0.49\u201d, "
    "\u201caround 0.53\u201d); \u2014 where it does not. "
    "Test accuracy is over the whole test set at the run's last step."
)


@dataclass(frozen=True)
class RunRow:
    run: ReportRun
    job: Job | None
    accuracy: float | None  # the final test accuracy, or the latest while it trains
    best: float | None

    @property
    def state(self) -> str:
        if self.job is None:
            return "not submitted"
        if self.job.status == JobStatus.succeeded:
            return "succeeded"
        return f"{self.job.status}, step {self.job.step:,} of {self.job.max_steps:,}"

    def wall_time(self, now: datetime) -> str:
        if self.job is None or self.job.started_at is None:
            return ""
        seconds = ((self.job.finished_at or now) - self.job.started_at).total_seconds()
        return f"{seconds / 60:.1f} min"

    @property
    def note(self) -> str | None:
        notes = [self.run.note, self.run.steps_note(self.job.max_steps) if self.job is not None else None]
        return "; ".join(n for n in notes if n) or None


def report_rows(session: Session, runs: list[ReportRun], owned_by: OwnedBy | None = None) -> list[RunRow]:
    """Each run's row, from the jobs `owned_by` holds (None: everyone's)."""
    jobs = find_run_jobs(session, runs, exact_steps=False, reusable_only=False, owned_by=owned_by)
    latest = latest_test_accuracy(session, [job.id for job in jobs.values()])
    rows = []
    for run in runs:
        job = jobs.get(run.figure)
        metrics = (job.final_metrics or {}) if job is not None else {}
        accuracy = metrics.get("test_accuracy", latest.get(job.id) if job is not None else None)
        rows.append(RunRow(run, job, accuracy, metrics.get("best_test_accuracy")))
    return rows


def _number(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "—"


def _cells(row: RunRow, now: datetime) -> list[str]:
    job = row.job
    return [
        row.run.figure if row.run.in_report else f"beyond ({row.run.section})",
        row.run.title + (f" ({row.note})" if row.note else ""),
        f"{row.run.report_accuracy:.2f}" if row.run.report_accuracy is not None else "—",
        _number(row.accuracy)
        + ("" if job is None or job.status == JobStatus.succeeded or row.accuracy is None else " so far"),
        _number(row.best),
        f"{job.step:,} / {job.max_steps:,}" if job is not None else "",
        row.wall_time(now),
        row.state,
        str(job.id) if job is not None else "",
    ]


HEADER = ["figure", "run", "report's accuracy", "test accuracy here", "best", "steps", "wall time", "status", "job"]


def markdown(rows: list[RunRow], figure_prefix: str) -> str:
    now = utcnow()
    lines = ["# Assignment 1, the report regenerated", "", INTRO, "", "| " + " | ".join(HEADER) + " |"]
    lines.append("|" + "---|" * len(HEADER))
    lines += ["| " + " | ".join(_cells(row, now)) + " |" for row in rows]
    lines += ["", NUMBERS_NOTE, ""]
    for row in rows:
        lines += [f"## {row.run.heading}", ""]
        if row.run.caption:
            lines += [f"The report's caption: \u201c{row.run.caption}\u201d", ""]
        if row.note:
            lines += [f"Differs from the report: {row.note}.", ""]
        if row.job is None:
            lines += ["Not submitted yet: `POST /reports/assignment`.", ""]
            continue
        if row.job.status != JobStatus.succeeded:
            lines += [f"Job {row.job.id} is {row.state}: the figure shows its curve so far.", ""]
        lines += [f"![Figure {row.run.figure}]({figure_prefix}figure-{row.run.figure}.png)", ""]
    return "\n".join(lines)


def _html_cells(row: RunRow, now: datetime) -> list[str]:
    """The row's cells, escaped; its job id a link to the job's page."""
    cells = [html.escape(cell) for cell in _cells(row, now)]
    if row.job is not None:
        cells[-1] = f'<a href="/#job/{row.job.id}">{row.job.id}</a>'
    return cells


def html_page(rows: list[RunRow]) -> str:
    now = utcnow()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join(
        f'<tr data-figure="{html.escape(row.run.figure)}">'
        + "".join(f"<td>{cell}</td>" for cell in _html_cells(row, now))
        + "</tr>"
        for row in rows
    )
    figures = []
    for row in rows:
        figure = html.escape(row.run.figure)
        heading = html.escape(row.run.heading)
        caption = f"<p>The report's caption: \u201c{html.escape(row.run.caption)}\u201d</p>" if row.run.caption else ""
        if row.job is None:
            figures.append(f"<section><h2>{heading}</h2>{caption}<p>Not submitted yet.</p></section>")
            continue
        note = f"<p>Differs from the report: {html.escape(row.note)}.</p>" if row.note else ""
        figures.append(
            f"<section><h2>{heading}</h2>{caption}{note}<p>{html.escape(row.state)}</p>"
            f'<img id="figure-{figure}" alt="Figure {figure}" src="/reports/assignment/figures/figure-{figure}.png" '
            'width="1000" height="400"></section>'
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Assignment 1, the report regenerated</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}}
img{{max-width:100%;height:auto}}</style></head>
<body><p><a href="/">The jobs</a></p><h1>Assignment 1, the report regenerated</h1><p>{html.escape(INTRO)}</p>
<table id="runs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<p>{NUMBERS_NOTE} <a href="/reports/assignment?format=md">Markdown</a></p>
{"".join(figures)}
</body></html>"""
