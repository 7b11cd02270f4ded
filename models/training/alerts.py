"""Alert rules on a job's curves: what they watch, and when they fire.

A rule fires at most once per job. `action: stop` ends the job as `stopped_early`, keeping its points and its
model, with the rule named. `loss_not_finite`, `no_improvement`, `above` and `below` are checked here, on each point as
the training process writes it; `stalled` (no progress written for `seconds`) by the store with the heartbeat of
whoever watches the process (the worker, the Ray dispatcher), since a stalled process checks nothing.
"""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ALERTS = 20

Action = Literal["notify", "stop"]
Metric = Literal["loss", "accuracy"]
SplitName = Literal["train", "test"]
ACTION_TEXT = "`notify`: an event and a note on the job; `stop`: that, and the job ends `stopped_early` (model kept)."


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Action = Field("notify", description=ACTION_TEXT)


class LossNotFinite(_Rule):
    when: Literal["loss_not_finite"] = Field(description="The training loss became NaN or infinite.")


class NoImprovement(_Rule):
    when: Literal["no_improvement"] = Field(description="A metric has not improved on its best for `evals` points.")
    metric: Metric = "accuracy"
    split: SplitName = "test"
    evals: int = Field(5, ge=1, le=10_000, description="Points in a row (evaluations, for `test`) without a new best.")


class Threshold(_Rule):
    when: Literal["above", "below"] = Field(description="A metric's point is above (below) `value`.")
    metric: Metric
    split: SplitName
    value: float = Field(allow_inf_nan=False)


class Stalled(_Rule):
    when: Literal["stalled"] = Field(description="No training progress written for `seconds` (a hung process).")
    seconds: float = Field(600, ge=1, le=7 * 86400)


AlertRule = Annotated[LossNotFinite | NoImprovement | Threshold | Stalled, Field(discriminator="when")]


@dataclass(frozen=True)
class Firing:
    """A rule that fired: its place in the spec's `alerts`, the step, and what was seen."""

    rule: int
    when: str
    action: Action
    step: int
    message: str

    def as_record(self) -> dict[str, object]:
        return {"rule": self.rule, "when": self.when, "action": self.action, "step": self.step,
                "message": self.message}  # fmt: skip


def _better(metric: Metric, value: float, best: float) -> bool:
    return value > best if metric == "accuracy" else value < best


class AlertWatch:
    """Checks each point against the point rules; each rule fires once (`fired` holds the rules that have, so a
    resumed attempt that was told which fired before stays quiet about them)."""

    def __init__(self, rules: list[LossNotFinite | NoImprovement | Threshold | Stalled], fired: set[int]) -> None:
        self.rules = list(enumerate(rules))
        self.fired = set(fired)
        self._best: dict[int, float] = {}
        self._since_best: dict[int, int] = {}

    def _fire(self, index: int, rule: _Rule, step: int, message: str) -> Firing:
        self.fired.add(index)
        when = getattr(rule, "when")  # noqa: B009  (every rule has one)
        return Firing(index, when, rule.action, step, message)

    def observe(self, step: int, split: SplitName, loss: float, accuracy: float) -> list[Firing]:
        firings = []
        for index, rule in self.rules:
            if index in self.fired or isinstance(rule, (Stalled, LossNotFinite)) or rule.split != split:
                continue
            value = loss if rule.metric == "loss" else accuracy
            if isinstance(rule, Threshold):
                if (value > rule.value) if rule.when == "above" else (value < rule.value):
                    message = f"{split} {rule.metric} {value:.4g} is {rule.when} {rule.value:g} at step {step}"
                    firings.append(self._fire(index, rule, step, message))
                continue
            best = self._best.get(index)
            if best is None or _better(rule.metric, value, best):
                self._best[index], self._since_best[index] = value, 0
                continue
            self._since_best[index] += 1
            if self._since_best[index] >= rule.evals:
                message = (f"{split} {rule.metric} has not improved on its best ({best:.4g}) for {rule.evals} "
                           f"points, at step {step}")  # fmt: skip
                firings.append(self._fire(index, rule, step, message))
        return firings

    def loss_not_finite(self, step: int, loss: float) -> list[Firing]:
        return [
            self._fire(index, rule, step, f"training loss became {loss} at step {step}")
            for index, rule in self.rules
            if isinstance(rule, LossNotFinite) and index not in self.fired
        ]
