"""Plans as the CLI prints them: `submit --dry-run` and `sweeps submit --dry-run`."""

from typing import Any


def duration(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def plan_text(plan: dict[str, Any]) -> str:
    """A job's plan (`POST /jobs?dry_run=true`), a line per question."""
    lines = [
        f"{plan['spec']['model']}: {plan['parameters']:,} parameters, {plan['flops_per_train_step'] / 1e9:.2f} GFLOP a "
        f"training step, {plan['flops_per_evaluation'] / 1e12:.2f} TFLOP an evaluation ({plan['evaluations']})",
        f"memory: {plan['parameter_memory_mb']:.0f} MB weights, gradients and optimizer state, "
        f"{plan['activation_memory_mb']:.0f} MB activations a batch"
        + (f"; the probe peaked at {plan['probe_peak_memory_mb']:.0f} MB" if plan["probe_peak_memory_mb"] else ""),
        f"expected: {duration(plan['expected_seconds'])}"
        + (f" (from {plan['expected_from']})" if plan["expected_from"] else f" ({plan['note'] or 'no history'})"),
        f"queue: {plan['queue_position']} ahead, wait {duration(plan['expected_wait_seconds'])}"
        + (f" ({plan['expected_wait_unknown']})" if plan["expected_wait_unknown"] else ""),
    ]
    if plan["waiting_reason"]:
        lines.append(f"it would wait: {plan['waiting_reason']}")
    return "\n".join(lines)


def sweep_plan_text(plan: dict[str, Any]) -> str:
    """A sweep's plan (`POST /sweeps?dry_run=true`): its trials and steps, its expected time, then a trial's plan."""
    stopping = plan["spec"]["early_stopping"]
    steps = f"{plan['steps_without_early_stopping']:,} steps"
    if stopping:
        steps += f", about {plan['expected_steps']:,} with early stopping ({stopping['method']})"
    expected = f"expected: {duration(plan['expected_seconds'])} with {plan['max_concurrent']} at a time"
    if stopping:
        expected += f" ({duration(plan['expected_seconds_without_early_stopping'])} without early stopping)"
    if plan["live_executors"] < plan["max_concurrent"]:
        expected += f"; executors running now: {plan['live_executors']}"
    return "\n".join([f"{plan['trials']} trials, {steps}", expected, "a trial with the base spec:",
                      plan_text(plan["trial_plan"])])  # fmt: skip
