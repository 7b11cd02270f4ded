"""A job's plan, answered without queueing it (`POST /jobs?dry_run=true`): what it costs (parameters, FLOPs,
memory), how long it will take (from earlier jobs of the same shape, else from a probe of a few real steps, else
from its FLOPs at the speed this machine reached for the kind), its place in the queue with the expected wait, and
whether any running executor could take it."""

import json
import statistics
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.http.refusals import Busy, InvalidField
from app.jobs.schemas import PlanPublic
from models.cost import BYTES_PER_VALUE, CIFAR_TEST_IMAGES, OPTIMIZER_STATES, Cost, Probe, cost, probe
from models.training.curve import Cadence
from models.training.threads import threads_for
from specs import JobSpec, parse_job_spec
from store.executors import alive_since, count_executors_seen, waiting_reason
from store.jobs import RUN_FIELDS, new_job
from store.queue import count_queued_ahead, queued_ahead, running_jobs, succeeded_runs
from store.tables import Job

# what does not change a step's speed: a job of the same kind with the same rest is of the same shape
NOT_SHAPE = RUN_FIELDS | {"seed", "learning_rate", "max_steps", "eval_every", "log_every", "checkpoint_every",
                          "init_from_job", "weight_decay", "momentum", "label_smoothing", "warmup_steps",
                          "lr_schedule", "lr_step_every", "lr_step_gamma", "init", "dataset"}  # fmt: skip
HISTORY = 5  # the newest jobs of the same shape whose speed is used
COST_SECONDS = 120.0
MAX_COSTS_KEPT = 256
MAX_AHEAD_ESTIMATED = 500  # queued jobs ahead whose times a plan adds up; past it, the wait is unknown
RATE_SHAPES = 3  # the shapes of earlier jobs whose FLOPs an estimate counts (a cost count each, remembered)
RATES_KEPT = 20  # the newest probes' speeds remembered per kind and place


def shape(spec: dict[str, Any]) -> dict[str, Any]:
    """What decides a job's speed: its network and data (not its run options), and its threads (its `cpus`)."""
    threads = threads_for(float(spec.get("cpus") or 1))
    return {**{key: value for key, value in spec.items() if key not in NOT_SHAPE}, "threads": threads}


class ChildLost(Exception):
    """A child process that sent nothing back: it ran past `seconds` (and was killed), or ended with `exit_code`."""

    def __init__(self, seconds: float | None = None, exit_code: int | None = None) -> None:
        super().__init__(seconds, exit_code)
        self.seconds, self.exit_code = seconds, exit_code

    def of(self, work: str) -> str:
        """`the probe took over 8 s`, `the cost count's process ended with -9`."""
        if self.seconds is not None:
            return f"{work} took over {self.seconds:g} s"
        return f"{work}'s process ended with {self.exit_code}"


class Prober:
    """The work of a plan that builds the network, never in the API process (whose memory would keep what torch
    took): each in a fresh process forked from a server process that has torch imported already (started by the
    first), so the memory returns when it ends.

    - Probes: one at a time per API process, stopped after `timeout_seconds`; a plan asked for while another
      probes answers without one.
    - Cost counts (parameters, FLOPs, activations): one at a time per API process (others wait their turn), each
      within COST_SECONDS, remembered by the network's shape (the newest MAX_COSTS_KEPT): a count costs a network
      build and a forward pass (a ResNet18 at 256x256: seconds, and hundreds of MB)."""

    def __init__(self, data_dir: Path, timeout_seconds: float) -> None:
        self.data_dir, self.timeout = data_dir, timeout_seconds
        self._busy = threading.Lock()
        self._counting = threading.Lock()
        self._costs: OrderedDict[str, Cost] = OrderedDict()
        self._probe_rates: dict[str, list[tuple[float, float]]] = {}  # by kind and place: (FLOP/s, start-up)
        self._context = get_context("forkserver")
        self._context.set_forkserver_preload(["torch", "models.cost", "models.kinds"])

    def cost(self, spec: JobSpec) -> Cost:
        """The network's cost; a NumPy MLP's is counted here (arithmetic, no torch)."""
        if spec.model == "numpy_mlp":
            return cost(spec)
        key = json.dumps(shape(spec.model_dump(mode="json")), sort_keys=True)
        with self._counting:
            if key not in self._costs:
                self._costs[key] = self._count(spec)
                while len(self._costs) > MAX_COSTS_KEPT:
                    self._costs.popitem(last=False)
            self._costs.move_to_end(key)
            return self._costs[key]

    def remember_rate(self, stored: dict[str, Any], flops_per_second: float, overhead: float) -> None:
        """A probe's training speed in FLOP/s (and its start-up), for estimates of the kind's other shapes."""
        kept = self._probe_rates.setdefault(_place(stored), [])
        kept.append((flops_per_second, overhead))
        del kept[:-RATES_KEPT]

    def probe_rates(self, stored: dict[str, Any]) -> list[tuple[float, float]]:
        return list(self._probe_rates.get(_place(stored), []))

    def _in_a_child(self, target: Callable[..., None], args: tuple[Any, ...], seconds: float) -> Any:
        """What `target(sending, *args)` sends back from a fresh process, or ChildLost when it sends nothing within
        `seconds` (it is killed then) or ends without a word."""
        receiving, sending = self._context.Pipe(duplex=False)
        process = self._context.Process(target=target, args=(sending, *args), daemon=True)
        process.start()
        sending.close()
        try:
            if not receiving.poll(seconds):
                raise ChildLost(seconds=seconds)
            return receiving.recv()
        except EOFError:
            raise ChildLost(exit_code=process.exitcode) from None
        finally:
            process.kill()
            process.join()
            receiving.close()

    def _count(self, spec: JobSpec) -> Cost:
        try:
            outcome: Cost | str = self._in_a_child(_cost_into, (spec,), COST_SECONDS)
        except ChildLost as lost:
            raise Busy(f"{lost.of('the cost count')}: try again later", retry_after=30) from None
        if isinstance(outcome, str):
            raise InvalidField("body", f"the cost count failed: {outcome}")
        return outcome

    def run(self, spec: dict[str, Any]) -> tuple[Probe | None, str | None]:
        if self.timeout <= 0:
            return None, "probes are off (PLAN_PROBE_SECONDS=0)"
        if not self._busy.acquire(blocking=False):
            return None, "another plan is probing: no probe this time"
        try:
            return self._probe(spec)
        finally:
            self._busy.release()

    def _probe(self, spec: dict[str, Any]) -> tuple[Probe | None, str | None]:
        try:
            outcome: Probe | str = self._in_a_child(_probe_into, (spec, self.data_dir), self.timeout)
        except ChildLost as lost:
            stopped = " (PLAN_PROBE_SECONDS): stopped" if lost.seconds is not None else ""
            return None, lost.of("the probe") + stopped
        return (outcome, None) if isinstance(outcome, Probe) else (None, f"the probe failed: {outcome}")


def _cost_into(sending: Connection, spec: JobSpec) -> None:
    """A cost count's process: the cost, or what went wrong, sent back."""
    try:
        sending.send(cost(spec))
    except Exception as exc:
        sending.send(f"{type(exc).__name__}: {exc}")


def _probe_into(sending: Connection, spec: dict[str, Any], data_dir: Path) -> None:
    """The probe's process: its measurement, or what went wrong, sent back."""
    try:
        sending.send(probe(spec, data_dir))
    except Exception as exc:  # the job itself would fail the same way: say so
        sending.send(f"{type(exc).__name__}: {exc}")


def _place(stored: dict[str, Any]) -> str:
    """Where a job trains, as far as its speed goes: its kind, device, GPUs and threads."""
    threads = threads_for(float(stored.get("cpus") or 1))
    return json.dumps([stored["model"], stored.get("device"), float(stored.get("gpus") or 0), threads])


def _history(
    session: Session, spec: dict[str, Any], same: Callable[[dict[str, Any]], bool] | None = None
) -> list[dict[str, Any]]:
    """Per-step and per-evaluation seconds, and start-up overhead, of the newest succeeded jobs of the same shape
    (or those `same` accepts), each with its spec."""
    wanted, found = shape(spec), []
    rows = succeeded_runs(session, spec["model"], 200)
    for stored, metrics, running_seconds, attempts in rows:
        alike = same(stored) if same is not None else shape(stored) == wanted
        if not alike or not metrics or not metrics.get("steps_per_second"):
            continue
        evals = max(1, Cadence.of(stored).evaluations)
        # a step at the steady speed (after the first train point); the first steps' extra counts as start-up
        step = 1 / float(metrics.get("steady_steps_per_second") or metrics["steps_per_second"])
        steps = float(metrics.get("steps") or stored["max_steps"])
        busy = steps * step + float(metrics.get("eval_seconds", 0))
        # its attempts' running time (not the waits of a preempted job between them): one start-up each
        found.append({"step": step, "evaluation": float(metrics.get("eval_seconds", 0)) / evals,
                      "overhead": max(0.0, running_seconds - busy) / attempts, "spec": stored})  # fmt: skip
        if len(found) == HISTORY:
            break
    return found


def _expected(spec: dict[str, Any], step: float, evaluation: float, overhead: float) -> float:
    return int(spec["max_steps"]) * step + Cadence.of(spec).evaluations * evaluation + overhead


def _queue(session: Session, job: Job, live_executors: int) -> tuple[int, float | None, str | None]:
    """(jobs ahead of it, the expected wait, why the wait is unknown). Bounded: the running jobs and at most
    MAX_AHEAD_ESTIMATED queued ones are looked at, each shape's history read once."""
    count = count_queued_ahead(session, job.priority)
    if count > MAX_AHEAD_ESTIMATED:
        return count, None, f"over {MAX_AHEAD_ESTIMATED} jobs are ahead of it"
    ahead, running = queued_ahead(session, job.priority), running_jobs(session)
    seconds, unknown, speeds = 0.0, 0, dict[str, Speed | None]()
    for other in running:
        if other.steps_per_second:
            seconds += (other.max_steps - other.step) / other.steps_per_second
        else:
            unknown += 1
    for other in ahead:
        key = json.dumps(shape(other.spec), sort_keys=True)
        if key not in speeds:  # each shape's history read once, whatever its jobs' lengths
            speeds[key] = speed(session, other.spec, None)[0]
        found = speeds[key]
        seconds, unknown = (seconds + found.seconds(other.spec), unknown) if found else (seconds, unknown + 1)
    if unknown:
        return count, None, f"{unknown} of the jobs running or ahead of it have no speed to go by yet"
    return count, seconds / max(1, live_executors), None


@dataclass(frozen=True)
class Speed:
    """Where a job of this spec spends its time: per step, per evaluation, and once (start-up, loading data)."""

    step: float
    evaluation: float
    overhead: float
    source: str
    probe: Probe | None = None
    slowest: float = 1.0  # an estimate's range: its step and evaluation times at most this many times as long,
    fastest: float = 1.0  # at least this fraction of them

    def seconds(self, spec: dict[str, Any], steps: int | None = None, scale: float = 1.0) -> float:
        """Expected wall time of the spec run to `steps` (default: its max_steps), its steps `scale` times as long."""
        return _expected({**spec, "max_steps": steps if steps is not None else spec["max_steps"]},
                         self.step * scale, self.evaluation * scale, self.overhead)  # fmt: skip

    def range(self, spec: dict[str, Any]) -> list[float] | None:
        if self.slowest == self.fastest == 1.0:
            return None
        return [round(self.seconds(spec, scale=self.fastest), 1), round(self.seconds(spec, scale=self.slowest), 1)]


def speed(
    session: Session, stored: dict[str, Any], prober: Prober | None, counted: Cost | None = None
) -> tuple[Speed | None, str | None]:
    """The spec's speed from earlier jobs of its shape, else from a probe (unless `prober` is None), else (a probe
    asked for that gave none, and `counted`, the network's cost) from its FLOPs at the speed this machine reached
    for the kind; or why there is none."""
    history = _history(session, stored)
    if history:
        step, evaluation, overhead = (
            statistics.median(h[key] for h in history) for key in ("step", "evaluation", "overhead")
        )
        return Speed(step, evaluation, overhead, f"the median of {len(history)} earlier jobs of the same shape"), None
    if prober is None:
        return None, None
    if stored.get("device") == "cuda" or float(stored.get("gpus") or 0) > 0:
        on_a_gpu = ("no probe: the job trains on a GPU and plans probe on the API's CPU; its expected time comes "
                    "from earlier jobs of the kind on a GPU (of the same shape, once one has run)")  # fmt: skip
        return _estimated(session, stored, prober, counted), on_a_gpu
    measured, note = prober.run(stored)
    if measured is None:
        return _estimated(session, stored, prober, counted), note
    source = f"a probe of {measured.steps} steps on the CPU (an evaluation: a third of a step per image)"
    if measured.waited_share >= 0.05:
        source += (f"; its steps waited {measured.waited_share:.0%} of their time for a CPU (a busy machine), "
                   "left out")  # fmt: skip
    if counted is not None:
        prober.remember_rate(stored, _train_flops(stored, counted) / measured.step_seconds, measured.overhead_seconds)
    return Speed(measured.step_seconds, measured.evaluation_seconds, measured.overhead_seconds, source, measured), None


def _train_flops(stored: dict[str, Any], counted: Cost) -> float:
    return 3.0 * counted.forward_flops_per_image * int(stored["batch_size"])


def _rates(session: Session, stored: dict[str, Any], prober: Prober) -> tuple[list[float], list[float], str]:
    """The training speeds (FLOP/s) this machine reached for the spec's kind where it trains (earlier succeeded jobs
    of up to RATE_SHAPES shapes, then this process's probes), their start-ups, and where they come from."""
    place = _place(stored)
    runs = _history(session, stored, lambda other: _place(other) == place)
    rates, overheads, shapes = [], [], set[str]()
    for run in runs:
        key = json.dumps(shape(run["spec"]), sort_keys=True)
        if key not in shapes and len(shapes) == RATE_SHAPES:
            continue
        try:
            counted = prober.cost(parse_job_spec(run["spec"]))
        except Exception:  # noqa: BLE001  # a spec no longer valid, a count that failed: that run is left out
            continue
        shapes.add(key)
        rates.append(_train_flops(run["spec"], counted) / run["step"])
        overheads.append(run["overhead"])
    jobs = len(rates)
    probed = prober.probe_rates(stored)
    rates += [rate for rate, _ in probed]
    overheads += [overhead for _, overhead in probed]
    sources = ([f"{jobs} earlier jobs"] if jobs else []) + ([f"{len(probed)} probes"] if probed else [])
    return rates, overheads, " and ".join(sources)


def _estimated(session: Session, stored: dict[str, Any], prober: Prober, counted: Cost | None) -> Speed | None:
    """The spec's speed from its FLOPs at the median speed this machine reached for its kind where it trains, with
    the fastest and slowest of those speeds as its range; None when there is nothing to go by."""
    if counted is None:
        return None
    rates, overheads, sources = _rates(session, stored, prober)
    if not rates:
        return None
    typical = statistics.median(rates)
    flops = _train_flops(stored, counted)
    step = flops / typical
    evaluation = counted.forward_flops_per_image * CIFAR_TEST_IMAGES / typical
    source = (f"an estimate: the network's {flops / 1e9:.3g} GFLOP a step at {typical / 1e9:.3g} GFLOP/s, the "
              f"median speed of {sources} of {stored['model']} on this machine ({min(rates) / 1e9:.3g}-"
              f"{max(rates) / 1e9:.3g} GFLOP/s: the range)")  # fmt: skip
    return Speed(step, evaluation, statistics.median(overheads), source, None, typical / min(rates),
                 typical / max(rates))  # fmt: skip


def live_executors(session: Session, alive_seconds: float) -> int:
    return count_executors_seen(session, alive_since(alive_seconds))


def plan(session: Session, spec: JobSpec, prober: Prober, alive_seconds: float, use_probe: bool) -> PlanPublic:
    return plan_and_speed(session, spec, prober, alive_seconds, use_probe)[0]


def plan_and_speed(
    session: Session, spec: JobSpec, prober: Prober, alive_seconds: float, use_probe: bool
) -> tuple[PlanPublic, Speed | None]:
    """The plan, and the speed it used (for a sweep's plan, which adds up its trials)."""
    stored = spec.stored_spec()
    counted = prober.cost(spec)
    optimizer_states = OPTIMIZER_STATES.get(str(stored.get("optimizer", "sgd")), 0)
    parameter_mb = counted.parameters * BYTES_PER_VALUE * (2 + optimizer_states) / 2**20  # weights, gradients, state
    activation_mb = counted.activation_values_per_image * int(stored["batch_size"]) * BYTES_PER_VALUE / 2**20
    found, note = speed(session, stored, prober if use_probe else None, counted)
    measured = found.probe if found else None
    expected = found.seconds(stored) if found else None
    job = new_job(spec)
    ahead, wait, wait_unknown = _queue(session, job, live_executors(session, alive_seconds))
    public = PlanPublic(
        spec=stored,
        parameters=counted.parameters,
        flops_per_image_forward=counted.forward_flops_per_image,
        flops_per_train_step=3 * counted.forward_flops_per_image * int(stored["batch_size"]),
        flops_per_evaluation=counted.forward_flops_per_image * CIFAR_TEST_IMAGES,
        evaluations=Cadence.of(stored).evaluations,
        parameter_memory_mb=round(parameter_mb, 2),
        activation_memory_mb=round(activation_mb, 2),
        probe_step_seconds=measured.step_seconds if measured else None,
        probe_evaluation_seconds=measured.evaluation_seconds if measured else None,
        probe_peak_memory_mb=round(measured.peak_rss_mb, 1) if measured else None,
        expected_seconds=round(expected, 1) if expected is not None else None,
        expected_seconds_range=found.range(stored) if found else None,
        expected_from=found.source if found else None,
        note=note,
        queue_position=ahead,
        expected_wait_seconds=round(wait, 1) if wait is not None else None,
        expected_wait_unknown=wait_unknown,
        waiting_reason=waiting_reason(session, job, alive_since(alive_seconds)),
    )
    return public, found
