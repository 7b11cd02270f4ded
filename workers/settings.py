"""The worker's settings: the store's, plus how it trains, heartbeats and reports."""

from pydantic import Field

from store.settings import StoreSettings


class WorkerSettings(StoreSettings):
    cpu_bf16: bool | None = Field(
        None,
        description="Whether `mixed_precision: auto` uses bfloat16 for the conv nets on a CPU; unset, the worker "
        "uses the verdict kept for this CPU model (the first worker on it measures).",
    )
    download_datasets: bool = Field(True, description="Download CIFAR-10 when it is missing and the network allows.")
    worker_poll_seconds: float = Field(0.5, description="How long an idle worker waits before looking again.")
    heartbeat_seconds: float = Field(5.0, description="How often a worker refreshes the heartbeat of its job.")
    training_nice: int = Field(
        10, ge=0, le=19, description="Scheduling niceness of training processes, so the API stays responsive."
    )
    graceful_stop_seconds: float = Field(
        30.0, ge=0, description="After SIGTERM, how long a training process has to checkpoint before it is killed."
    )
    stop_grace_seconds: float = Field(
        15.0,
        ge=0,
        description="After a cancel, how long the job's training process has to act on it (it checks at every step) "
        "before its executor stops it: the local worker kills it, the Ray dispatcher stops its Ray job.",
    )
    stale_after_seconds: float = Field(
        30.0, description="A running job whose heartbeat is older than this lost its worker and is requeued."
    )
    flush_seconds: float = Field(1.0, description="How often a training job writes its points and progress.")
    system_metrics_seconds: float = Field(
        10.0,
        gt=0,
        description="How often a training process samples its CPU use, memory, data wait (and GPU): at most 10,000 "
        "samples an attempt, written with its points.",
    )
    checkpoint_min_seconds: float = Field(
        30.0,
        ge=0,
        description="At most one periodic checkpoint per this many seconds, whatever a spec's checkpoint_every "
        "(a stop always checkpoints).",
    )
    worker_cpus: float | None = Field(
        None,
        gt=0,
        le=4096,
        description="CPUs a local worker offers (`python -m workers --cpus N`): it takes only jobs whose `cpus` fit "
        "(default: every core of the machine).",
    )
    preemption: bool = Field(
        True,
        description="Whether a queued job may take the place of a running one of a priority lower by "
        "PREEMPT_PRIORITY_GAP (it checkpoints, goes back to the queue and resumes exactly where it stopped).",
    )
    preempt_priority_gap: int = Field(
        10, ge=1, description="How much higher a queued job's priority must be to preempt a running job."
    )
    preempt_min_run_seconds: float = Field(
        60.0, ge=0, description="A job is not preempted before it ran this long in its current attempt."
    )
    preempt_max_times: int = Field(3, ge=0, description="A job is preempted at most this many times.")
    training_memory_limit_mb: int = Field(
        -1,
        ge=-1,
        description="Address space a CPU training process may add to what it starts with (RLIMIT_AS), in MB; "
        "-1: three quarters of the machine's memory; 0: no limit. Not applied with a GPU (CUDA maps large "
        "virtual ranges).",
    )
