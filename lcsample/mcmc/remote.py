"""Chains advanced on an executor's workers: a Dask cluster or any ``concurrent.futures`` pool.

Only the chains' *advances* leave the process — the requests of
:class:`~lcsample.mcmc.chain.Request` that hold nearly all gradient evaluations. The
initialization, the warmup's retunes and mass updates at window barriers, the records
and the checks stay in the calling process, exactly as in a local run. A worker receives
a chain's state (position, velocity, gradient, generator state, step, friction, mass) and
the size of the request, runs the same compiled loop or batched advance a local run
would (:mod:`lcsample.mcmc.advance`), and sends back the draws and the new state. So a
run on workers is the local run draw for draw, whichever worker ran what; a task lost
with its worker is rerun from the same state and gives the same draws.

The target travels by pickle (``cloudpickle`` where installed, as Dask uses), once per
run to each Dask worker (``Client.scatter``) and with each task for other executors. A
worker runs whatever the pickle holds: use a cluster you trust.
"""

import concurrent.futures
import hashlib
import pickle

import numpy as np

from .._executors import is_dask_client, submit
from .advance import advance_one, make_advance
from .chain import Chain, Request

__all__ = ["RemoteAdvance", "ship_target"]

# What an advance changes on a chain, sent back from the worker.
_MOVED = ("x", "v", "g", "x_at", "lp", "rng", "n_grads", "n_rounds", "picard_blocks",
          "picard_unconverged", "pending")
# Targets unpickled on this worker, by digest, with their advances by spec (a few runs').
_TARGETS = {}
_KEEP_TARGETS = 4


def ship_target(target):
    """The target as pickle bytes for the workers, and their SHA-256 digest.

    Raises
    ------
    ValueError
        The target cannot be pickled (a local function without ``cloudpickle``, an open
        file among its ``args``, ...), naming ``executor``.
    """
    try:
        import cloudpickle as dumper
    except ImportError:
        dumper = pickle
    try:
        payload = dumper.dumps(target)
    except Exception as err:  # noqa: BLE001 - any pickling failure means the same to users
        raise ValueError(
            f"executor: the target cannot be sent to the workers ({type(err).__name__}: "
            f"{err}). Define its log density at module level (or install cloudpickle) and "
            "pass data through args arrays.") from err
    return payload, hashlib.sha256(payload).hexdigest()


def _worker_advance(payload, digest, spec, chain, n, thin, corrected):
    """On a worker: advance ``chain`` (target detached) by n draws; returns what moved."""
    if digest not in _TARGETS:
        if len(_TARGETS) >= _KEEP_TARGETS:
            _TARGETS.pop(next(iter(_TARGETS)))
        _TARGETS[digest] = (pickle.loads(payload), {})
    target, advances = _TARGETS[digest]
    if spec not in advances:
        target.compile()
        advances[spec] = make_advance(target, spec)
    chain.target = target
    d = chain.x.shape[0]
    request = Request(np.full((n, d), np.nan), np.full(n, np.nan), np.full(n, np.nan), thin,
                      corrected)
    reply = advance_one(advances[spec], chain, request)
    return reply, {name: getattr(chain, name) for name in _MOVED}, request


def _detached(chain):
    """A shallow copy of ``chain`` without its target (which travels once, separately)."""
    copy = object.__new__(Chain)
    copy.__dict__.update(chain.__dict__)
    copy.target = None
    return copy


class RemoteAdvance:
    """Runs the tasks of :func:`lcsample.mcmc.execution.run_tasks` with advances on workers.

    Parameters
    ----------
    executor : dask.distributed.Client or concurrent.futures.Executor
    target : Target
    spec : AdvanceSpec
        The advance the workers build (:func:`lcsample.mcmc.advance.make_advance`).
    shipped : tuple, optional
        (payload or its Dask future, digest) of an earlier RemoteAdvance of this run.
    """

    def __init__(self, executor, target, spec, shipped=None):
        self.executor, self.spec = executor, spec
        self.dask = is_dask_client(executor)
        if shipped is None:
            payload, digest = ship_target(target)
            if self.dask:  # one copy per worker, not one per task
                payload = executor.scatter(payload, broadcast=True, hash=False)
            shipped = (payload, digest)
        self.shipped = shipped

    def carrying(self):
        """The sampling phase's advance (whole Picard blocks; see AdvanceSpec.carrying)."""
        return RemoteAdvance(self.executor, None, self.spec.carrying(), self.shipped)

    def _submit(self, chain, request):
        return submit(self.executor, _worker_advance, *self.shipped, self.spec,
                      _detached(chain), len(request.draws), request.thin, request.corrected)

    def _wait(self, futures):
        """The futures among ``futures`` that finished, waiting up to 0.1 s for one."""
        if self.dask:
            from distributed import wait

            try:
                wait(list(futures), timeout=0.1, return_when="FIRST_COMPLETED")
            except TimeoutError:
                return []
            return [f for f in futures if f.done()]
        done, _ = concurrent.futures.wait(futures, timeout=0.1,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        return list(done)

    def run_tasks(self, chain_list, tasks, monitor, bar):
        """Every chain's requests on the workers, each chain's next sent when one returns.

        Returns
        -------
        (list of task results, whether Ctrl-C interrupted)
        """
        results = [None] * len(tasks)
        inflight = {}
        for c, task in enumerate(tasks):
            self._send(c, task, None, chain_list, inflight, results)
        shown = monitor.count
        while inflight:
            for future in self._wait(inflight):
                c, request = inflight.pop(future)
                reply, moved, made = future.result()  # a worker's error is raised here
                for name, value in moved.items():
                    setattr(chain_list[c], name, value)
                for into, values in zip(request[:3], made[:3], strict=True):
                    into[...] = values
                self._send(c, tasks[c], reply, chain_list, inflight, results)
            bar.update(monitor.count - shown)
            shown = monitor.count
        return results, monitor.stop.is_set()

    def _send(self, c, task, reply, chain_list, inflight, results):
        """Give task c its reply; submit its next request, or keep its result."""
        try:
            request = next(task) if reply is None else task.send(reply)
        except StopIteration as stop:
            results[c] = stop.value
            return
        inflight[self._submit(chain_list[c], request)] = (c, request)
