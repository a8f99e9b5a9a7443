"""The executors lcsample runs work on: a Dask ``Client`` or any ``concurrent.futures`` pool.

Used by :mod:`lcsample.mcmc.remote` (chain advances) and
:mod:`lcsample.diffusion.distributed` (sample chunks). Dask is recognised without being
imported, so the core library does not depend on it.
"""

import concurrent.futures
import os

__all__ = ["check_executor", "is_dask_client", "submit", "worker_count"]


def is_dask_client(executor):
    """Whether ``executor`` is a ``dask.distributed.Client`` (checked without importing it)."""
    return type(executor).__module__.startswith("distributed") and hasattr(executor, "scatter")


def check_executor(executor):
    """``executor`` if it is None, a Dask ``Client`` or a ``concurrent.futures.Executor``.

    Raises
    ------
    ValueError
        Anything else, naming ``executor``.
    """
    if executor is None or is_dask_client(executor) or isinstance(
            executor, concurrent.futures.Executor):
        return executor
    raise ValueError(
        "executor must be a dask.distributed.Client or a concurrent.futures.Executor "
        f"(e.g. Client.get_executor(), ProcessPoolExecutor), got {type(executor).__name__}")


def submit(executor, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on the executor; a Dask task is never taken for a cached one
    (``pure=False``: each call draws its own random numbers)."""
    if is_dask_client(executor):
        return executor.submit(fn, *args, pure=False, **kwargs)
    return executor.submit(fn, *args, **kwargs)


def worker_count(executor):
    """How many tasks the executor runs at once (its workers' threads; for a pool whose
    size is not known, the CPUs)."""
    if is_dask_client(executor):
        workers = executor.scheduler_info().get("workers", {})
        return max(1, sum(w.get("nthreads", 1) for w in workers.values()))
    return max(1, getattr(executor, "_max_workers", None) or os.cpu_count() or 1)
