"""Custom Layer Normalization (assignment part 3): an autograd module, a torch.autograd.Function
with a hand-written backward, and the module that applies the Function.

Per sample, over its features: mu and the biased variance sigma^2,
x_hat = (x - mu) / sqrt(sigma^2 + eps), y = gamma * x_hat + beta.
"""

from typing import Any

import torch
from torch import nn


def _check_input(x: torch.Tensor, n_neurons: int) -> None:
    if x.dim() != 2 or x.shape[1] != n_neurons:
        raise ValueError(f"expected input of shape (batch, {n_neurons}), got {tuple(x.shape)}")


class CustomLayerNormAutograd(nn.Module):
    """Layer normalization from differentiable torch operations; autograd finds the backward."""

    def __init__(self, n_neurons: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.n_neurons, self.eps = n_neurons, eps
        self.gamma = nn.Parameter(torch.ones(n_neurons))
        self.beta = nn.Parameter(torch.zeros(n_neurons))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.n_neurons)
        mean = x.mean(dim=1, keepdim=True)  # (N, 1)
        var = ((x - mean) ** 2).mean(dim=1, keepdim=True)  # biased, (N, 1)
        x_hat = (x - mean) / torch.sqrt(var + self.eps)  # (N, D)
        return self.gamma * x_hat + self.beta


class CustomLayerNormManualFunction(torch.autograd.Function):
    """Layer normalization with its backward written out by hand."""

    @staticmethod
    def forward(
        ctx: Any,
        input: torch.Tensor,
        gamma: torch.Tensor,
        beta: torch.Tensor,  # noqa: A002
        eps: float = 1e-5,
    ) -> torch.Tensor:
        mean = input.mean(dim=1, keepdim=True)  # (N, 1)
        centered = input - mean  # (N, D)
        inv_std = torch.rsqrt(centered.pow(2).mean(dim=1, keepdim=True) + eps)  # (N, 1)
        x_hat = centered * inv_std  # (N, D)
        # the backward needs only x_hat, 1/sigma and gamma
        ctx.save_for_backward(x_hat, inv_std, gamma)
        return x_hat * gamma + beta

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x_hat, inv_std, gamma = ctx.saved_tensors
        need_input, need_gamma, need_beta = ctx.needs_input_grad[:3]
        grad_input = grad_gamma = grad_beta = None
        if need_input:
            # dL/dx = (1/sigma) * (g - mean(g) - x_hat * mean(g * x_hat)), g = dL/dy * gamma, means per row
            g = grad_output * gamma  # (N, D)
            grad_input = inv_std * (g - g.mean(dim=1, keepdim=True) - x_hat * (g * x_hat).mean(dim=1, keepdim=True))
        if need_gamma:
            grad_gamma = (grad_output * x_hat).sum(dim=0)  # (D,)
        if need_beta:
            grad_beta = grad_output.sum(dim=0)  # (D,)
        return grad_input, grad_gamma, grad_beta, None  # no gradient for eps


class CustomLayerNormManualModule(nn.Module):
    """The module form of CustomLayerNormManualFunction, with learnable gamma (ones) and beta (zeros)."""

    def __init__(self, n_neurons: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.n_neurons, self.eps = n_neurons, eps
        self.gamma = nn.Parameter(torch.ones(n_neurons))
        self.beta = nn.Parameter(torch.zeros(n_neurons))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.n_neurons)
        return CustomLayerNormManualFunction.apply(x, self.gamma, self.beta, self.eps)  # type: ignore[no-any-return]
