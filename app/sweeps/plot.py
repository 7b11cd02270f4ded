"""A sweep's plot: the objective of each trial (early-stopped ones marked) and the test curves of
the best few over the rest in grey. matplotlib's object API, as the job plots."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.curves.plots import ImageFormat, literal, new_figure, render

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class SweepPlotData:
    title: str
    metric: str
    trials: list[tuple[int, float | None, str]]  # number, objective, status
    best_curves: list[tuple[int, list[tuple[int, float]]]]  # number, (step, value)
    other_curves: list[list[tuple[int, float]]]


STATUS_STYLE = {"succeeded": ("o", "tab:blue"), "stopped_early": ("x", "tab:red")}


def sweep_plot(data: SweepPlotData, width_px: int, height_px: int, image_format: ImageFormat) -> bytes:
    return render(sweep_figure(data, width_px, height_px), image_format)


def sweep_figure(data: SweepPlotData, width_px: int, height_px: int) -> "Figure":
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(width_px, height_px)
    trials_ax, curves_ax = figure.subplots(1, 2)
    for status in sorted({s for _, v, s in data.trials if v is not None}):
        marker, color = STATUS_STYLE.get(status, ("s", "tab:gray"))
        points = [(n, v) for n, v, s in data.trials if s == status and v is not None]
        trials_ax.scatter([n for n, _ in points], [v for _, v in points], marker=marker, color=color, label=status)
    trials_ax.set_xlabel("trial")
    trials_ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers: no tick at 0.25
    trials_ax.set_ylabel(f"{data.metric} (last evaluation)")
    trials_ax.grid(alpha=0.3)
    if any(v is not None for _, v, _ in data.trials):
        trials_ax.legend()
    else:
        trials_ax.text(0.5, 0.5, "no evaluations yet", ha="center", va="center", transform=trials_ax.transAxes)
    for curve in data.other_curves:
        if curve:
            curves_ax.plot([s for s, _ in curve], [v for _, v in curve], color="0.8", linewidth=0.8)
    for number, curve in data.best_curves:
        curves_ax.plot([s for s, _ in curve], [v for _, v in curve], "o-", markersize=3, label=f"trial {number}")
    curves_ax.set_xlabel("step")
    curves_ax.set_ylabel(data.metric)
    curves_ax.grid(alpha=0.3)
    if data.best_curves:
        curves_ax.legend()
    figure.suptitle(literal(data.title))
    return figure
