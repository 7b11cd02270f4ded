"""Sweeps as the API shows them: the leaderboard, the summaries, and the sweep's plot."""

from collections import Counter

from sqlalchemy.orm import Session

from app.curves.plots import ImageFormat, shortened
from app.sweeps.plot import SweepPlotData, sweep_plot
from app.sweeps.schemas import SweepImportancesPublic, SweepPublic, SweepsPublic, SweepSummary, TrialPublic
from store.jobs import OwnedBy
from store.sweeps import TrialView, evaluations, find_sweep, list_sweeps, sweep_trials
from store.tables import Sweep, SweepStatus
from sweeps.search import param_importances
from sweeps.spec import SweepSpec

PLOTTED_BEST = 3  # the curves of this many best trials stand out on the plot


def _trial(view: TrialView, curve: list[tuple[int, float]], maximize: bool) -> TrialPublic:
    values = [value for _, value in curve]
    return TrialPublic(
        number=view.trial.number,
        job_id=view.trial.job_id,
        status=view.status,
        params=view.trial.params,
        objective=values[-1] if values else None,
        best=(max(values) if maximize else min(values)) if values else None,
        step=view.job.step if view.job is not None else 0,
        max_steps=view.job.max_steps if view.job is not None else None,
        error=view.trial.error,
    )


def _ranked(spec: SweepSpec, views: list[TrialView], curves: dict[int, list[tuple[int, float]]]) -> list[TrialPublic]:
    maximize = spec.objective.mode == "max"
    trials = [_trial(v, curves.get(v.job.id, []) if v.job is not None else [], maximize) for v in views]
    scored = sorted(
        (t for t in trials if t.objective is not None),
        key=lambda t: (-(t.objective or 0.0) if maximize else (t.objective or 0.0), t.number),
    )
    return scored + [t for t in trials if t.objective is None]


def _summary_fields(
    sweep: Sweep, spec: SweepSpec, views: list[TrialView], ranked: list[TrialPublic]
) -> dict[str, object]:
    return {
        "id": sweep.id,
        "name": sweep.name,
        "status": SweepStatus(sweep.status),
        "method": spec.method,
        "trials": spec.trials,
        "trials_created": len(views),
        "created_at": sweep.created_at,
        "finished_at": sweep.finished_at,
        "best": next((t for t in ranked if t.objective is not None), None),
    }


def sweep_public(session: Session, sweep_id: int) -> SweepPublic:
    sweep = find_sweep(session, sweep_id)
    views = sweep_trials(session, sweep_id)
    spec = SweepSpec.model_validate(sweep.spec)  # once per request: its checks parse every choice
    curves = evaluations(session, [v.job.id for v in views if v.job is not None], spec.objective.metric)
    ranked = _ranked(spec, views, curves)
    jobs = [v.job for v in views if v.job is not None]
    return SweepPublic(
        **_summary_fields(sweep, spec, views, ranked),
        spec=sweep.spec,
        counts=dict(Counter(t.status for t in ranked)),
        steps_spent=sum(job.step for job in jobs),
        steps_if_run_to_end=sum(job.max_steps for job in jobs),
        leaderboard=ranked,
        error=sweep.error,
    )


def sweeps_page(session: Session, limit: int, offset: int, owned_by: OwnedBy | None = None) -> SweepsPublic:
    sweeps, count = list_sweeps(session, limit, offset, owned_by)
    data = []
    for sweep in sweeps:
        views = sweep_trials(session, sweep.id)
        spec = SweepSpec.model_validate(sweep.spec)
        curves = evaluations(session, [v.job.id for v in views if v.job is not None], spec.objective.metric)
        data.append(SweepSummary(**_summary_fields(sweep, spec, views, _ranked(spec, views, curves))))
    return SweepsPublic(data=data, count=count)


def sweep_plot_image(
    session: Session, sweep_id: int, width_px: int, height_px: int, image_format: ImageFormat
) -> bytes:
    sweep = find_sweep(session, sweep_id)
    views = sweep_trials(session, sweep_id)
    spec = SweepSpec.model_validate(sweep.spec)
    curves = evaluations(session, [v.job.id for v in views if v.job is not None], spec.objective.metric)
    ranked = _ranked(spec, views, curves)
    job_of = {v.trial.number: v.trial.job_id for v in views}
    data = SweepPlotData(
        title=f"sweep {sweep.id}: {shortened(sweep.name or spec.method)} ({sweep.status})",
        metric=f"test {spec.objective.metric}",
        trials=[(t.number, t.objective, t.status) for t in ranked],
        best_curves=[
            (t.number, curves.get(job_of[t.number] or -1, [])) for t in ranked[:PLOTTED_BEST] if t.objective is not None
        ],
        other_curves=[curves.get(job_of[t.number] or -1, []) for t in ranked[PLOTTED_BEST:]],
    )
    return sweep_plot(data, width_px, height_px, image_format)


def sweep_importances(session: Session, sweep_id: int) -> SweepImportancesPublic:
    """The searched fields' importances, from the trials that ran to their end (an early-stopped trial's
    objective is from fewer steps than the others', so it would blur them)."""
    sweep = find_sweep(session, sweep_id)
    views = sweep_trials(session, sweep_id)
    spec = SweepSpec.model_validate(sweep.spec)
    curves = evaluations(session, [v.job.id for v in views if v.job is not None], spec.objective.metric)
    finished = [
        (t.params, t.objective)
        for t in _ranked(spec, views, curves)
        if t.status == "succeeded" and t.objective is not None
    ]
    return SweepImportancesPublic(importances=param_importances(spec, finished), trials_used=len(finished))
