"""The typed job specs, the same pydantic classes the service validates with: an editor completes every field
and a wrong value fails here, before any request."""

from specs import ConvNetSpec, NumpyMLPSpec, ResNet18Spec, SpeedrunSpec, TorchMLPSpec

__all__ = ["ConvNetSpec", "NumpyMLPSpec", "ResNet18Spec", "SpeedrunSpec", "TorchMLPSpec"]
