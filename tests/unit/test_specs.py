"""A job's spec: one flat object for clients, two parts inside, what to train (`models.kinds`) and how to run it
(`specs.RunOptions`)."""

import pytest
from pydantic import ValidationError

from models.kinds import KINDS, parse_spec
from specs import ANNOTATIONS, RunOptions, default_job_spec, job_spec_adapter, parse_job_spec
from store.jobs import RUN_FIELDS, training_identity
from sweeps.spec import SweepSpec

QUEUE_FIELDS = set(RunOptions.model_fields) - ANNOTATIONS  # the annotations (tags, notes) are kept beside the spec


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_job_spec_is_its_kinds_spec_and_the_run_options_in_one_flat_object(kind: str) -> None:
    job_class = type(parse_job_spec({"model": kind}))
    kind_fields = set(KINDS[kind].spec.model_fields)
    assert QUEUE_FIELDS == {"priority", "timeout_s", "max_attempts", "gpus", "cpus", "preemptible"}
    assert not kind_fields & QUEUE_FIELDS  # what to train holds none of the queue's fields
    assert ANNOTATIONS == {"tags", "notes"} and not kind_fields & ANNOTATIONS
    assert set(job_class.model_fields) == kind_fields | QUEUE_FIELDS | ANNOTATIONS
    assert set(default_job_spec(kind)) == kind_fields | QUEUE_FIELDS  # stored flat, every default filled in


def test_training_code_reads_only_what_to_train_from_a_stored_spec() -> None:
    stored = parse_job_spec({"model": "torch_mlp", "priority": 7, "gpus": 0.5, "cpus": 2, "max_steps": 30})
    trained = parse_spec(stored.model_dump(mode="json"))
    assert type(trained) is KINDS["torch_mlp"].spec and trained.max_steps == 30
    assert not QUEUE_FIELDS & set(trained.model_dump())
    assert stored.priority == 7 and stored.gpus == 0.5 and stored.cpus == 2


def test_the_run_options_are_checked_like_every_field() -> None:
    with pytest.raises(ValidationError) as refused:
        job_spec_adapter.validate_python({"model": "numpy_mlp", "gpus": 1.5})
    assert refused.value.errors()[0]["loc"][-1] == "gpus"
    with pytest.raises(ValidationError) as unknown:
        parse_job_spec({"model": "numpy_mlp", "priorty": 1})
    assert unknown.value.errors()[0]["loc"][-1] == "priorty"


def test_how_a_job_runs_never_changes_what_it_trains_as_far_as_the_store_can_tell() -> None:
    """The store hashes a spec without its run fields to find earlier runs of the same training (the report
    reuses them): every queue field must be among them."""
    assert QUEUE_FIELDS <= RUN_FIELDS
    quiet = parse_job_spec({"model": "convnet", "max_steps": 10}).stored_spec()
    urgent = parse_job_spec({"model": "convnet", "max_steps": 10, "priority": 100, "timeout_s": 60,
                             "max_attempts": 1, "cpus": 2, "tags": ["x"], "notes": "y"}).stored_spec()  # fmt: skip
    assert training_identity(quiet) == training_identity(urgent)


def test_a_sweep_may_not_search_a_run_option() -> None:
    """How a trial runs is set in `base`, where the priority limit and the quotas check it (issue 40, finding 2)."""
    for option in RunOptions.model_fields:
        with pytest.raises(ValidationError, match=f"search.{option}: not searchable: {option} is how a trial runs"):
            SweepSpec.model_validate({"base": {"model": "numpy_mlp"}, "search": {option: {"choices": [1, 2]}}})
    sweep = SweepSpec.model_validate(
        {"base": {"model": "numpy_mlp", "priority": 5}, "search": {"batch_size": {"uniform": [10, 40]},
                                                                   "learning_rate": {"uniform": [0.01, 0.1]}}}
    )  # fmt: skip
    assert sweep.is_integer_field("batch_size") and not sweep.is_integer_field("learning_rate")
