"""The typed job specs, the same pydantic classes the service validates with: an editor completes every field
of a built-in kind's and a wrong value fails here, before any request. An installed plugin's kind is here too (by
its spec class's name), and `job_class(kind)` finds any."""

from typing import TYPE_CHECKING

from pydantic import BaseModel

from specs import JOB_CLASSES, RunOptions

if TYPE_CHECKING:  # what the classes made from the kinds at start are, for editors and the type checker
    from models.kinds import convnet, numpy_mlp, resnet18, speedrun, torch_mlp

    class ConvNetSpec(RunOptions, convnet.ConvNetSpec): ...

    class NumpyMLPSpec(RunOptions, numpy_mlp.NumpyMLPSpec): ...

    class ResNet18Spec(RunOptions, resnet18.ResNet18Spec): ...

    class SpeedrunSpec(RunOptions, speedrun.SpeedrunSpec): ...

    class TorchMLPSpec(RunOptions, torch_mlp.TorchMLPSpec): ...

else:
    globals().update({job.__name__: job for job in JOB_CLASSES.values()})


def job_class(kind: str) -> type[BaseModel]:
    """The job class of `kind` (a spec's `model`), a plugin's too."""
    return JOB_CLASSES[kind]


__all__ = ["job_class", *(job.__name__ for job in JOB_CLASSES.values())]
