"""A plan's parameter and FLOP counts against counts worked out by hand from the architectures."""

import time

import pytest

from models.cost import cost, mlp_cost
from models.kinds import parse_spec
from models.training.curve import Cadence


def test_an_mlps_counts_are_its_matrix_products() -> None:
    # 3072 -> 800 -> 600 -> 400 -> 10: weights and biases; 2 FLOPs per weight per image
    params = 3072 * 800 + 800 + 800 * 600 + 600 + 600 * 400 + 400 + 400 * 10 + 10
    flops = 2 * (3072 * 800 + 800 * 600 + 600 * 400 + 400 * 10)
    by_hand = mlp_cost([800, 600, 400])
    assert (by_hand.parameters, by_hand.forward_flops_per_image) == (params, flops)
    # the PyTorch MLP, counted by torch's FLOP counter on the network itself, agrees
    counted = cost(parse_spec({"model": "torch_mlp", "hidden_units": [800, 600, 400]}))
    assert (counted.parameters, counted.forward_flops_per_image) == (params, flops)
    assert cost(parse_spec({"model": "numpy_mlp", "hidden_units": [800, 600, 400]})) == by_hand


def _conv(c_in: int, c_out: int, kernel: int, size: int) -> tuple[int, int]:
    """(parameters, FLOPs per image) of a stride-1 'same' convolution on a size x size map."""
    return c_in * c_out * kernel * kernel + c_out, 2 * c_in * c_out * kernel * kernel * size * size


def test_the_convnets_counts_follow_its_layer_table() -> None:
    layers = [_conv(3, 64, 3, 32), _conv(64, 64, 3, 32), _conv(64, 128, 1, 32)]  # conv0, PreAct(64), conv1
    layers += [_conv(128, 128, 3, 16)] * 2 + [_conv(128, 256, 1, 16)]  # pool to 16: PreAct(128) x2, conv2
    layers += [_conv(256, 256, 3, 8)] * 2 + [_conv(256, 512, 1, 8)]  # pool to 8: PreAct(256) x2, conv3
    layers += [_conv(512, 512, 3, 4)] * 2 + [_conv(512, 512, 3, 2)] * 2  # pool to 4, then to 2: PreAct(512) x4
    batch_norms = 2 * (64 + 128 * 2 + 256 * 2 + 512 * 4 + 512)  # one per pre-activation block and the last
    linear = (512 * 10 + 10, 2 * 512 * 10)
    counted = cost(parse_spec({"model": "convnet"}))
    assert counted.parameters == sum(p for p, _ in layers) + batch_norms + linear[0]
    assert counted.forward_flops_per_image == sum(f for _, f in layers) + linear[1]


def test_the_steady_speed_leaves_out_the_first_train_points_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """10 slow first steps (kernels chosen, memory taken: 5 s), then 90 at 0.1 s: the job's speed counts both, the
    steady speed only the 90 (a plan counts the first steps' extra as start-up), and it survives a checkpoint."""
    from models.training.curve import Cadence, CurveRecorder
    from models.training.reporting import InMemoryReporter

    now = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])  # the recorder's clock
    recorder = CurveRecorder(Cadence(max_steps=100, log_every=10, eval_every=100), 50, InMemoryReporter())
    now[0] = 5.0
    recorder.train_point(10, 23.0, 5, 10, 500)
    resumed = CurveRecorder(Cadence(max_steps=100, log_every=10, eval_every=100), 50, InMemoryReporter())
    resumed.load_state(recorder.state())
    for step in range(20, 101, 10):
        now[0] += 1.0
        resumed.train_point(step, 23.0, 5, 10, 500)
    metrics = resumed.final_metrics(100)
    assert metrics["steps_per_second"] == pytest.approx(100 / 14)
    assert metrics["steady_steps_per_second"] == pytest.approx(90 / 9)


@pytest.mark.parametrize(("max_steps", "eval_every"), [(100, 30), (100, 100), (100, 7), (1400, 100), (5, 10)])
def test_a_plan_counts_the_evaluations_the_loop_makes(max_steps: int, eval_every: int) -> None:
    cadence = Cadence.of({"max_steps": max_steps, "log_every": 10, "eval_every": eval_every})
    assert cadence.evaluations == sum(cadence.is_eval_step(step) for step in range(1, max_steps + 1))
