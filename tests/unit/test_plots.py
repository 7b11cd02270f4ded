"""Plots drawn in process (no server): titles, legends and axes as a reader sees them, and names drawn as
the literal text they are."""

import io

import numpy as np
from PIL import Image

from app.curves.downsample import Curve
from app.curves.plots import Labelled, compare_plot, job_figure, job_plot
from app.curves.views import JobView
from app.sweeps.plot import SweepPlotData, sweep_figure, sweep_plot


def view(job_id: int = 1, status: str = "succeeded") -> JobView:
    steps = np.arange(10, 110, 10)
    curve = Curve(steps, np.zeros(10, dtype=bool), np.linspace(2, 1, 10), np.linspace(0.1, 0.5, 10))
    return JobView(job_id, status, 100, 100, 5.0, 1000.0, 1, None, {"test_accuracy": 0.5}, curve, 100)


def test_a_job_without_a_name_is_titled_by_its_id_and_kind() -> None:
    title = job_figure(Labelled(view(), None, "torch_mlp"), 800, 300)._suptitle  # type: ignore[attr-defined]
    assert title.get_text() == "job 1 (torch_mlp), final test accuracy 0.5000"
    named = job_figure(Labelled(view(), "wide", "torch_mlp"), 800, 300)._suptitle  # type: ignore[attr-defined]
    assert named.get_text().startswith("job 1: wide (torch_mlp), ")


def test_names_with_dollars_and_braces_are_drawn_as_text() -> None:
    """Between two `$` matplotlib reads mathtext: a name like these once made every plot of the job a 500."""
    for name in (r"a $\x$ b", "$" + "x^{" * 14 + "y" + "}" * 14 + "$", "$$", "cost $5 and $6", "long " * 40):
        png = job_plot(Labelled(view(), name, "torch_mlp"), 600, 300, "png")
        assert Image.open(io.BytesIO(png)).size == (600, 300)
        compared = compare_plot([Labelled(view(1), name, "torch_mlp"), Labelled(view(2), None, "convnet")],
                                "accuracy", "test", 600, 300, "svg")  # fmt: skip
        assert compared.startswith(b"<?xml")
        data = SweepPlotData(f"sweep 1: {name[:60]}", "test accuracy", [(0, 0.5, "succeeded")], [], [])
        assert Image.open(io.BytesIO(sweep_plot(data, 600, 300, "png"))).size == (600, 300)


def test_a_sweeps_trial_axis_has_whole_numbers_only() -> None:
    data = SweepPlotData("sweep 1", "test accuracy", [(0, 0.4, "succeeded"), (1, 0.5, "stopped_early")], [], [])
    trials_axis = sweep_figure(data, 800, 300).axes[0]
    ticks = [
        tick for tick in trials_axis.get_xticks() if trials_axis.get_xlim()[0] <= tick <= trials_axis.get_xlim()[1]
    ]
    assert ticks and all(float(tick).is_integer() for tick in ticks), ticks
