"""The service from Python: `Client` submits and finds jobs and sweeps; a `Job` waits, reads its curve, logs and
attempts, and gives its model as a file or a torch module; tables turn into DataFrames (`.to_pandas()`).

    from cifar_jobs import Client
    from cifar_jobs.specs import TorchMLPSpec

    with Client() as client:
        job = client.submit(TorchMLPSpec(model="torch_mlp", hidden_units=[128], max_steps=500)).wait()
        curve = job.curve().to_pandas()
"""

from cifar_jobs.client import Client
from cifar_jobs.errors import (
    Conflict,
    Forbidden,
    NotFound,
    QuotaExceeded,
    ServiceError,
    SpecRefused,
    Unauthorized,
    Unavailable,
)
from cifar_jobs.jobs import Job
from cifar_jobs.sweeps import Sweep
from cifar_jobs.tables import Rows

__all__ = ["Client", "Conflict", "Forbidden", "Job", "NotFound", "QuotaExceeded", "Rows", "ServiceError",
           "SpecRefused", "Sweep", "Unauthorized", "Unavailable"]  # fmt: skip
