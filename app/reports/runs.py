"""The assignment report's runs as jobs: which runs, submitted (or an identical earlier job reused),
and each run's job now.

A run's job is found by its spec: any job whose spec, every default filled in, equals the run's,
apart from the fields that do not change what is trained (its name, priority, timeout, attempts):
through the jobs' indexed training hashes (`store.jobs.training_identity`), never by reading every spec.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from models.data.weights_files import imagenet_weights_present
from specs import JobSpec, parse_job_spec
from store.jobs import OwnedBy, create_job, jobs_trained_as, training_identity
from store.tables import Job, JobStatus

# The report's two tuned runs, field for field (its section 2.1):
#   python train_mlp_pytorch.py --dnn_hidden_units 800,600,400 --optim adam --learn_rate 0.0001 --max_steps 5000
#   python train_mlp_pytorch.py --dnn_hidden_units 100,100,50,50,50,50 --optim adam --learn_rate 0.0001 --max_steps 5000
TUNED = {"model": "torch_mlp", "optimizer": "adam", "learning_rate": 1e-4, "max_steps": 5000}
WIDE, DEEP, TANH = [800, 600, 400], [100, 100, 50, 50, 50, 50], "tanh"
CONVNET_STEPS, RESNET_STEPS = 5000, 5000  # the kinds' defaults, which are the report's
# The deep runs start from PyTorch's initialisation: from the assignment's N(0, 1e-4) (torch_mlp's default, the
# report's figure 2), six narrow layers pass on almost no signal and the net stays at chance at the report's
# learning rate (docs/RESULTS.md has both runs).
DEEP_INIT = {"init": "default"}
DEEP_INIT_NOTE = ("PyTorch's default initialisation: from the assignment's N(0, 1e-4) this six-layer net stays "
                  "at chance at learning rate 1e-4")  # fmt: skip


@dataclass(frozen=True)
class ReportRun:
    figure: str  # the report's figure number, 1-6; for a run beyond its figures, a name (`tanh-wide`, ...)
    title: str
    spec: dict[str, Any]  # as submitted: the report's settings, the rest the kind's defaults
    report_accuracy: float | None  # the report's test accuracy, where its text gives one
    note: str | None = None  # how this run differs from the report's, when it does
    report_steps: int | None = None  # set for the runs that may be cut short on a CPU: the report's steps
    caption: str | None = None  # the report's caption of its figure
    section: str | None = None  # for a run beyond the report's figures: the report's section that discusses it

    @property
    def in_report(self) -> bool:
        return self.section is None

    @property
    def heading(self) -> str:
        if self.in_report:
            return f"Figure {self.figure}: {self.title}"
        return f"Beyond the report's figures ({self.section}): {self.title}"

    def steps_note(self, steps: int) -> str | None:
        if self.report_steps is None or steps == self.report_steps:
            return None
        return f"{steps:,} of the report's {self.report_steps:,} steps, for CPU time"


def report_runs(data_dir: Path, convnet_steps: int, resnet_steps: int) -> list[ReportRun]:
    """The report's six figures' runs, with the ConvNet and ResNet18 cut to the given steps (CPU time)
    and ResNet18 from ImageNet weights when the weights file is present, else from scratch; then four
    runs beyond its figures, for what its sections 2.2 (Tanh) and 3 (normalisation) discuss without one."""
    pretrained = imagenet_weights_present(data_dir)
    resnet = {"model": "resnet18", "stem": "imagenet", "pretrained": pretrained, "freeze_backbone": False}
    tanh, norms = "section 2.2, Tanh", "section 3, normalisation"
    runs = [
        ReportRun("1", "NumPy MLP, hand-written backprop, assignment defaults", {"model": "numpy_mlp"}, None,
                  caption="Test/train scores of the MLP Numpy model"),
        ReportRun("2", "PyTorch MLP, assignment defaults", {"model": "torch_mlp"}, 0.49,
                  caption="Test/train scores of the MLP PyTorch model"),
        ReportRun("3", "Wide MLP 800-600-400, Adam, learning rate 1e-4, 5000 steps", {**TUNED, "hidden_units": WIDE},
                  0.53, caption="Test/train scores of a wide MLP PyTorch model. Shallow and wide model with 3 hidden "
                  "layers 800,600,400 nodes respectively."),
        ReportRun("4", "Deep MLP 100-100-50-50-50-50, Adam, learning rate 1e-4, 5000 steps",
                  {**TUNED, "hidden_units": DEEP, **DEEP_INIT}, 0.53, DEEP_INIT_NOTE,
                  caption="Test/train scores of a deeper MLP PyTorch model. Deep and narrow model with 6 hidden "
                  "layers 100,100,50,50,50,50 nodes respectively."),
        ReportRun("5", "Pre-activation ConvNet, assignment defaults", {"model": "convnet", "max_steps": convnet_steps},
                  None, None, CONVNET_STEPS, caption="Test/train scores of the PyTorch CNN model."),
        ReportRun("6", "ResNet18 " + ("fine-tuned from ImageNet weights, last layer replaced, no layer frozen"
                                      if pretrained else "from scratch"),
                  {**resnet, "max_steps": resnet_steps}, None,
                  None if pretrained else "no ImageNet weights file here: trained from scratch, not fine-tuned",
                  RESNET_STEPS, caption="Test/train scores of ResNet18."),
        ReportRun("tanh-wide", "figure 3's run with Tanh", {**TUNED, "hidden_units": WIDE, "activation": TANH},
                  None, section=tanh),
        ReportRun("tanh-deep", "figure 4's run with Tanh",
                  {**TUNED, "hidden_units": DEEP, **DEEP_INIT, "activation": TANH}, None, DEEP_INIT_NOTE, section=tanh),
        ReportRun("batchnorm", "figure 3's run with batch normalisation",
                  {**TUNED, "hidden_units": WIDE, "norm": "batchnorm"}, None, section=norms),
        ReportRun("layernorm", "figure 3's run with the custom Layer Normalization (hand-written backward)",
                  {**TUNED, "hidden_units": WIDE, "norm": "layernorm_manual"}, None, section=norms),
    ]  # fmt: skip
    return runs


def with_todays_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with the defaults of today's fields filled in (a job stored before a field existed ran
    with its default); a spec of fields that no longer exist stays as it is (it matches no run of today's)."""
    try:
        return parse_job_spec(spec).stored_spec()
    except ValidationError:
        return spec


def full_spec(run: ReportRun) -> JobSpec:
    label = f"report figure {run.figure}" if run.in_report else f"report, beyond its figures ({run.section})"
    return parse_job_spec({**run.spec, "name": f"{label}: {run.title}"})


# a succeeded job first, then one still on its way, newest first among equals: the jobs a submission reuses
REUSABLE = {JobStatus.succeeded.value: 0, JobStatus.running.value: 1, JobStatus.queued.value: 1}
# what the report shows: those, else the newest that ended otherwise (a cancelled run is shown as cancelled)
SHOWN = {**REUSABLE, JobStatus.stopped_early.value: 2, JobStatus.failed.value: 3, JobStatus.cancelled.value: 3}


def find_run_jobs(
    session: Session,
    runs: list[ReportRun],
    exact_steps: bool = True,
    reusable_only: bool = True,
    owned_by: OwnedBy | None = None,
) -> dict[str, Job]:
    """Each run's job (by figure): the best matching job (among `owned_by`'s, when given), or none. Without
    `exact_steps`, a run that may be cut short matches a job of any length (the newest among equals). Without
    `reusable_only`, a run whose jobs all ended without succeeding gets the newest of them (the report shows its
    real state)."""
    preference = REUSABLE if reusable_only else SHOWN
    exact: dict[str, str] = {}
    any_length: dict[str, str] = {}
    for run in runs:
        same, any_steps = training_identity(full_spec(run).stored_spec())
        if run.report_steps is not None and not exact_steps:
            any_length[any_steps] = run.figure
        else:
            exact[same] = run.figure
    candidates = jobs_trained_as(session, list(exact), list(any_length), list(preference), owned_by)
    found: dict[str, Job] = {}
    for job in candidates:
        figure = exact.get(job.training_sha256 or "") or any_length.get(job.training_sha256_any_steps or "")
        if figure is None:
            continue
        current = found.get(figure)
        if current is None or preference[job.status] < preference[current.status]:
            found[figure] = job
    return found


@dataclass(frozen=True)
class Submitted:
    run: ReportRun
    job_id: int
    reused: bool
    status: str


def submit_report_runs(
    session: Session, runs: list[ReportRun], owner_id: int | None = None, owned_by: OwnedBy | None = None
) -> list[Submitted]:
    """Submit each run (owned by `owner_id`) that has no succeeded or unfinished identical job (among `owned_by`'s,
    when given); reuse those that have."""
    existing = find_run_jobs(session, runs, owned_by=owned_by)
    submitted = []
    for run in runs:
        job = existing.get(run.figure)
        reused = job is not None
        if job is None:
            job, _ = create_job(session, full_spec(run), owner_id=owner_id)
        submitted.append(Submitted(run, job.id, reused, job.status))
    return submitted
