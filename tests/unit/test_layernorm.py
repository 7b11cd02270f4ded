"""The custom Layer Normalization against gradcheck, torch's layer_norm and each other."""

from typing import Any

import pytest
import torch

from models.networks.layernorm import (
    CustomLayerNormAutograd,
    CustomLayerNormManualFunction,
    CustomLayerNormManualModule,
)

MODULES = [CustomLayerNormAutograd, CustomLayerNormManualModule]


def test_manual_function_passes_gradcheck_in_float64() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 9, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(9, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(9, dtype=torch.float64, requires_grad=True)
    inputs: Any = (x, gamma, beta, 1e-5)  # gradcheck takes non-tensor arguments too; its stub says tensors
    assert torch.autograd.gradcheck(CustomLayerNormManualFunction.apply, inputs)


@pytest.mark.parametrize("module_class", MODULES)
def test_autograd_and_manual_modules_pass_gradcheck(module_class: type) -> None:
    torch.manual_seed(1)
    module = module_class(7).double()
    with torch.no_grad():
        module.gamma.normal_()
        module.beta.normal_()
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,))


@pytest.mark.parametrize("module_class", MODULES)
def test_output_equals_torch_layer_norm(module_class: type) -> None:
    torch.manual_seed(2)
    module = module_class(128)
    with torch.no_grad():
        module.gamma.uniform_(0.5, 1.5)
        module.beta.normal_()
    x = torch.randn(64, 128) * 3 + 1
    expected = torch.nn.functional.layer_norm(x, (128,), module.gamma, module.beta, eps=1e-5)
    torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("module_class", MODULES)
def test_rows_have_zero_mean_and_unit_variance_with_default_parameters(module_class: type) -> None:
    x = torch.randn(32, 50) * 10 + 4
    y = module_class(50)(x)
    torch.testing.assert_close(y.mean(dim=1), torch.zeros(32), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=1, unbiased=False), torch.ones(32), atol=1e-3, rtol=0)


@pytest.mark.parametrize("module_class", MODULES)
@pytest.mark.parametrize("shape", [(4, 9), (4, 10, 1), (10,)])
def test_wrong_shapes_name_expected_and_received(module_class: type, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as err:
        module_class(10)(torch.randn(*shape))
    assert "(batch, 10)" in str(err.value) and str(tuple(shape)) in str(err.value)


def test_manual_backward_matches_autograd() -> None:
    torch.manual_seed(3)
    auto, manual = CustomLayerNormAutograd(20), CustomLayerNormManualModule(20)
    with torch.no_grad():
        for module in (auto, manual):
            module.gamma.copy_(torch.linspace(0.5, 2, 20))
            module.beta.copy_(torch.linspace(-1, 1, 20))
    x1 = torch.randn(16, 20, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    upstream = torch.randn(16, 20)
    (auto(x1) * upstream).sum().backward()
    (manual(x2) * upstream).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(manual.gamma.grad, auto.gamma.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(manual.beta.grad, auto.beta.grad, rtol=1e-4, atol=1e-5)


def test_backward_computes_only_the_gradients_asked_for() -> None:
    x = torch.randn(3, 4)  # no grad wanted for the input
    gamma = torch.ones(4, requires_grad=True)
    beta = torch.zeros(4)
    out = CustomLayerNormManualFunction.apply(x, gamma, beta, 1e-5)
    out.sum().backward()
    assert gamma.grad is not None and x.grad is None and beta.grad is None
