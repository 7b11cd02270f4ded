"""The sweep as an Optuna study, rebuilt from the service's own tables whenever the driver needs it.

Optuna keeps its study in memory only (no second schema in the service's database): the trials'
parameters, their test evaluations (from the metric points) and the sampler's and pruner's state
(Optuna's system attributes, stored per trial) are enough to rebuild the same study after any
restart. Choices are handed to Optuna as JSON strings, since its categorical values must be scalars
and a choice may be a list (`hidden_units`).
"""

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from store.sweeps import TrialView
from store.tables import JobStatus
from sweeps.spec import Choices, SweepSpec, Uniform

optuna.logging.set_verbosity(optuna.logging.WARNING)

Evaluations = dict[int, list[tuple[int, float]]]  # job id -> (step, value) in step order


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    found: dict[str, BaseDistribution] = {}
    for field, dimension in spec.search.items():
        if isinstance(dimension, Choices):
            found[field] = CategoricalDistribution([json.dumps(choice) for choice in dimension.choices])
            continue
        log = not isinstance(dimension, Uniform)
        low, high = dimension.uniform if isinstance(dimension, Uniform) else dimension.log_uniform
        if spec.is_integer_field(field):
            found[field] = IntDistribution(round(low), round(high), log=log)
        else:
            found[field] = FloatDistribution(low, high, log=log)
    return found


def to_optuna(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    return {f: json.dumps(v) if isinstance(spec.search[f], Choices) else v for f, v in params.items()}


def from_optuna(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    return {f: json.loads(v) if isinstance(spec.search[f], Choices) else v for f, v in params.items()}


def _sampler(spec: SweepSpec, number: int) -> optuna.samplers.BaseSampler:
    """A sampler seeded by the sweep's seed and the trial number: the same history asks the same trial. The two are
    mixed (NumPy's SeedSequence), not added: with `seed + number`, seed 1's trial n drew what seed 0's trial n + 1
    did, so sweeps of neighbouring seeds tried mostly the same values."""
    seed = int(np.random.SeedSequence((spec.seed, number)).generate_state(1)[0])
    if spec.method == "grid":
        choices = {f: [json.dumps(c) for c in d.choices] for f, d in spec.search.items() if isinstance(d, Choices)}
        return optuna.samplers.GridSampler(choices, seed=spec.seed)
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    assert spec.trials is not None
    startup = max(3, min(10, spec.trials // 3))  # random trials before TPE models the results
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def _pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    stopping = spec.early_stopping
    if stopping is None:
        return optuna.pruners.NopPruner()
    if stopping.method == "hyperband":
        max_steps = int(spec.base_spec()["max_steps"])
        return optuna.pruners.HyperbandPruner(stopping.min_steps, max_steps, stopping.reduction_factor)
    return optuna.pruners.SuccessiveHalvingPruner(stopping.min_steps, stopping.reduction_factor)


def _frozen(
    spec: SweepSpec, dists: dict[str, BaseDistribution], view: TrialView, evals: Evaluations, replaying: bool
) -> FrozenTrial:
    shown = evals.get(view.job.id, []) if view.job is not None else []
    intermediate = dict(shown)
    state, value = TrialState.FAIL, None
    if replaying:  # running, with only the evaluations the pruner has seen so far
        state = TrialState.RUNNING
        intermediate = {s: v for s, v in shown if s <= view.trial.pruned_through_step}
    elif view.job is not None and view.job.status in (JobStatus.queued, JobStatus.running):
        state = TrialState.RUNNING
    elif view.job is not None and view.job.status == JobStatus.stopped_early:
        state = TrialState.PRUNED
    elif view.job is not None and view.job.status == JobStatus.succeeded and shown:
        state, value = TrialState.COMPLETE, shown[-1][1]
    params = to_optuna(spec, view.trial.params)
    return create_trial(
        state=state,
        value=value,
        params=params,
        distributions={f: dists[f] for f in params},
        system_attrs=dict(view.trial.search_state),
        intermediate_values=intermediate,
    )


@dataclass(frozen=True)
class Search:
    """A rebuilt study and the storage it lives in, held here: Optuna offers no public way back from a study to
    its storage or from a trial to its id, and a trial's intermediate values and system attributes are the
    storage's to read and write."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage

    def trial_id(self, number: int) -> int:
        study_id = self.storage.get_study_id_from_name(self.study.study_name)
        return self.storage.get_trial_id_from_study_id_trial_number(study_id, number)


def rebuild_study(
    spec: SweepSpec, sweep_id: int, views: list[TrialView], evals: Evaluations, replaying: set[int] | None = None
) -> Search:
    """The study with every trial so far; trials numbered in `replaying` are added as running with
    only the evaluations already shown to the pruner, so the rest can be shown one by one."""
    direction = "maximize" if spec.objective.mode == "max" else "minimize"
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(
        storage=storage,
        study_name=f"sweep-{sweep_id}",
        direction=direction,
        sampler=_sampler(spec, len(views)),
        pruner=_pruner(spec),
    )
    dists = distributions(spec)
    for view in views:  # in number order, so Optuna's trial numbers are ours
        study.add_trial(_frozen(spec, dists, view, evals, view.trial.number in (replaying or set())))
    return Search(study, storage)


def show_evaluations(
    search: Search, number: int, evaluations: list[tuple[int, float]], shown_through: int
) -> tuple[int, bool, dict[str, Any]]:
    """Report trial `number`'s evaluations after `shown_through` to the pruner, in step order, as a
    live trial would have; returns (the last step shown, whether the pruner stops the trial, the
    trial's search state to store)."""
    study, storage, trial_id = search.study, search.storage, search.trial_id(number)
    stop = False
    for step, value in evaluations:
        if step <= shown_through:
            continue
        storage.set_trial_intermediate_value(trial_id, step, value)
        shown_through = step
        if study.pruner.prune(study, storage.get_trial(trial_id)):
            stop = True
            break
    if stop and evaluations:  # a stopped trial's later evaluations (it ends within a second) count as shown
        shown_through = max(shown_through, evaluations[-1][0])
    return shown_through, stop, dict(storage.get_trial_system_attrs(trial_id))


def ask(search: Search, spec: SweepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """The next trial's parameters (as spec values) and its search state to store."""
    trial = search.study.ask(distributions(spec))
    params = from_optuna(spec, trial.params)
    return params, dict(search.storage.get_trial_system_attrs(search.trial_id(trial.number)))


def param_importances(spec: SweepSpec, finished: list[tuple[dict[str, Any], float]]) -> dict[str, float]:
    """How much of the objective's variance each searched field explains (Optuna's fANOVA, seeded: the same
    trials give the same answer), largest first, summing to 1, from the trials that ran to their end
    (`finished`: their parameters and objective). Empty with fewer than two of them or when no field varied."""
    varied = {field for field in spec.search if len({json.dumps(params.get(field)) for params, _ in finished}) > 1}
    if len(finished) < 2 or not varied:
        return {}
    dists = distributions(spec)
    study = optuna.create_study(direction="maximize" if spec.objective.mode == "max" else "minimize")
    for params, value in finished:
        chosen = to_optuna(spec, {field: params[field] for field in spec.search if field in params})
        dists_used = {field: dists[field] for field in chosen}
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=value, params=chosen, distributions=dists_used))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    found = optuna.importance.get_param_importances(study, evaluator=evaluator, params=sorted(varied))
    return {field: float(share) for field, share in found.items()}
