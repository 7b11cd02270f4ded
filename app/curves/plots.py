"""Curve plots like the assignment report's figures: loss and accuracy against step, train and test.

matplotlib's object API with the Agg (PNG) and SVG canvases, no pyplot state, so plots render in
the route's worker thread. Long curves are downsampled to about two points per pixel first.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from app.curves.downsample import MIN_MAX_POINTS, Curve, downsample
from app.curves.views import JobView
from store.system_points import SystemRow

if TYPE_CHECKING:  # matplotlib itself comes with the first plot: an API process that draws none never pays for it
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ImageFormat = Literal["png", "svg"]
DPI = 100
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml"}


@dataclass(frozen=True)
class Labelled:
    """One job's view with its name (None when it has none) and model kind."""

    view: JobView
    name: str | None
    model: str
    system: Sequence[SystemRow] = ()  # drawn below the curves when given

    @property
    def label(self) -> str:
        """`job 3: wide (torch_mlp)`, or `job 3 (torch_mlp)` for a job without a name; drawn as literal text."""
        named = f": {shortened(self.name)}" if self.name else ""
        return literal(f"job {self.view.id}{named} ({self.model})")


NAME_CHARS = 60  # a longer name is cut (with an ellipsis) in titles and legends


def shortened(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def literal(text: str) -> str:
    """`text` drawn as it is: matplotlib reads what stands between two `$` as mathtext (a user's name such
    as `a $\\x$ b` would fail to render, or recurse), and `\\$` is its literal dollar sign."""
    return text.replace("$", r"\$")


def _thinned(curve: Curve, width_px: int) -> Curve:
    return curve.select(downsample(curve, max(MIN_MAX_POINTS, 2 * width_px)))


def new_figure(width_px: int, height_px: int) -> "Figure":
    """An empty figure of this size in pixels (importing matplotlib on the first call: a third of a second)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")


def render(figure: "Figure", image_format: ImageFormat) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buffer = io.BytesIO()
    canvas = FigureCanvasAgg(figure) if image_format == "png" else FigureCanvasSVG(figure)
    canvas.print_figure(buffer, format=image_format, dpi=DPI)
    return buffer.getvalue()


def _where(view: JobView) -> str:
    if view.status == "succeeded" and view.final_metrics and "test_accuracy" in view.final_metrics:
        return f"final test accuracy {view.final_metrics['test_accuracy']:.4f}"
    return f"{view.status}, step {view.step:,} of {view.max_steps:,}"


def job_plot(job: Labelled, width_px: int, height_px: int, image_format: ImageFormat) -> bytes:
    """Two panels, loss and accuracy against step, train and test, titled with the job."""
    return render(job_figure(job, width_px, height_px), image_format)


def job_figure(job: Labelled, width_px: int, height_px: int) -> "Figure":
    figure = new_figure(width_px, height_px)
    if job.system:
        (loss_ax, acc_ax), (use_ax, memory_ax) = figure.subplots(2, 2, sharex=True)
        _system_panel(job.system, use_ax, memory_ax)
    else:
        loss_ax, acc_ax = figure.subplots(1, 2)
    curve = _thinned(job.view.curve, width_px // 2)
    for is_test, label, style in ((False, "train", "-"), (True, "test", "o-")):
        mask = curve.is_test == is_test
        if mask.any():
            loss_ax.plot(curve.step[mask], curve.loss[mask], style, label=label, markersize=3, linewidth=1.2)
            acc_ax.plot(curve.step[mask], curve.accuracy[mask], style, label=label, markersize=3, linewidth=1.2)
    for ax, what in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.set_xlabel("step")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        if job.view.max_steps:
            ax.set_xlim(0, job.view.max_steps)
        if len(curve):
            ax.legend()
    if not len(curve):
        loss_ax.text(0.5, 0.5, "no points yet", ha="center", va="center", transform=loss_ax.transAxes)
    figure.suptitle(f"{job.label}, {_where(job.view)}")
    return figure


def _system_panel(rows: Sequence[SystemRow], use_ax: "Axes", memory_ax: "Axes") -> None:
    """CPU use and data wait (fractions), and memory in MB, against step; GPU lines when there are GPU values."""
    step = [row[1] for row in rows]
    use_ax.plot(step, [row[3] for row in rows], "-", label="CPU (of cpus)", linewidth=1.2)
    if any(row[5] is not None for row in rows):
        use_ax.plot(step, [row[5] if row[5] is not None else float("nan") for row in rows], "-", label="data wait",
                    linewidth=1.2)  # fmt: skip
    if any(row[6] is not None for row in rows):
        use_ax.plot(step, [row[6] if row[6] is not None else float("nan") for row in rows], "-", label="GPU busy")
    memory_ax.plot(step, [row[4] for row in rows], "-", label="resident memory", linewidth=1.2)
    if any(row[7] is not None for row in rows):
        memory_ax.plot(step, [row[7] if row[7] is not None else float("nan") for row in rows], "-", label="GPU memory")
    for ax, what in ((use_ax, "fraction"), (memory_ax, "MB")):
        ax.set_xlabel("step")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend()
    use_ax.set_ylim(bottom=0)
    memory_ax.set_ylim(bottom=0)


def compare_plot(
    jobs: Sequence[Labelled],
    metric: Literal["loss", "accuracy"],
    split: Literal["train", "test"],
    width_px: int,
    height_px: int,
    image_format: ImageFormat,
) -> bytes:
    """One panel: `metric` on `split` against step for each job, with a legend of their names."""
    figure = new_figure(width_px, height_px)
    ax = figure.subplots()
    for job in jobs:
        curve = _thinned(job.view.curve, width_px)
        mask = curve.is_test == (split == "test")
        values = curve.loss if metric == "loss" else curve.accuracy
        ax.plot(curve.step[mask], values[mask], label=job.label, linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{split} {metric}")
    ax.grid(alpha=0.3)
    ax.legend()
    figure.suptitle(f"{split} {metric}")
    return render(figure, image_format)
