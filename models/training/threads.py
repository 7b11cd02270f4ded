"""A job trains with as many threads as the CPUs it asked for (`cpus`, rounded up, at least 1), under every
executor: the local worker's child and a Ray job alike, and a plan's probe, so that several jobs on one machine
keep to their shares and a job's thread count (which decides the order of its floating-point sums) follows its
spec, not the machine it lands on."""

import math

from threadpoolctl import threadpool_limits


def threads_for(cpus: float) -> int:
    return max(1, math.ceil(cpus - 1e-9))


def train_with_cpus(cpus: float, uses_torch: bool) -> int:
    """Hold this process's thread pools (PyTorch's, and the BLAS and OpenMP libraries NumPy loaded) to `cpus`'s
    threads; how many."""
    threads = threads_for(cpus)
    if uses_torch:
        import torch  # only for the kinds that use it: the NumPy MLP's process never loads it

        torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    return threads
