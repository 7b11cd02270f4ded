"""The NumPy MLP: Linear/ELU blocks and a final Linear, trained with plain SGD."""

import numpy as np

from models.networks.numpy_modules import ELUModule, LinearModule


class MLP:
    def __init__(
        self, n_inputs: int, n_hidden: list[int], n_classes: int, seed: int = 42, dtype: type = np.float32
    ) -> None:
        rng = np.random.default_rng(seed)
        sizes = [n_inputs, *n_hidden, n_classes]
        self.linears = [LinearModule(a, b, rng, dtype) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        self.activations = [ELUModule() for _ in n_hidden]
        self.dtype = dtype

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, n_inputs) -> logits (N, n_classes)."""
        for linear, activation in zip(self.linears, self.activations, strict=False):
            x = activation.forward(linear.forward(x))
        return self.linears[-1].forward(x)

    def backward(self, dout: np.ndarray) -> None:
        """Fills every Linear's grads from dL/dlogits."""
        dout = self.linears[-1].backward(dout, need_input_grad=len(self.linears) > 1)  # type: ignore[assignment]
        for i in range(len(self.activations) - 1, -1, -1):
            dout = self.activations[i].backward(dout)
            dout = self.linears[i].backward(dout, need_input_grad=i > 0)  # type: ignore[assignment]

    def sgd_step(self, learning_rate: float) -> None:
        """W -= lr * dW in place; the gradient buffers are scaled on the way (each backward refills them),
        so no parameter-sized temporary is allocated per step."""
        for linear in self.linears:
            for name, value in linear.params.items():
                step = linear.grads[name]
                step *= learning_rate
                value -= step

    def state_dict(self) -> dict[str, np.ndarray]:
        """Weights named like torch's nn.Sequential of the same MLP (layers.0.weight, ...)."""
        return {
            f"layers.{2 * i}.{name}": value for i, lin in enumerate(self.linears) for name, value in lin.params.items()
        }
