"""Running per-chain tasks: in threads (compiled targets) or in lockstep (batched targets).

A task is a generator for one chain. Each time it needs the chain advanced it yields a
:class:`~lcsample.mcmc.chain.Request` and receives ``(n_done, grads)``; it
returns its result at the end. The bookkeeping around each advance (what is recorded,
how a divergence is handled) lives in the task, so both ways of running give the same
results.
"""

import collections
import threading

__all__ = ["Monitor", "run_tasks"]


class Monitor:
    """Progress counter, stop flag and the furthest draw asked for, shared by the tasks."""

    def __init__(self):
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.count = 0
        self.reached = 0

    def add(self, n):
        with self._lock:
            self.count += n

    def reach(self, end):
        """Record that a chain asked for draws up to ``end`` (exclusive)."""
        with self._lock:
            self.reached = max(self.reached, end)


def run_tasks(chain_list, tasks, cores, monitor, bar, advance_batch=None):
    """Run one task per chain; returns (task results, whether Ctrl-C interrupted).

    Parameters
    ----------
    chain_list : list of Chain
    tasks : list of generator
    cores : int
        Threads for compiled targets.
    monitor : Monitor
    bar : tqdm progress bar
    advance_batch : callable, optional
        ``advance_batch(chains, requests) -> list of (n_done, grads)``: advances several
        chains together (batched targets). When given, tasks run in lockstep in this
        thread; otherwise in ``cores`` worker threads, round-robin. An advance that runs
        tasks itself (:class:`lcsample.mcmc.remote.RemoteAdvance`, on an executor's
        workers) is handed them.
    """
    if hasattr(advance_batch, "run_tasks"):
        return advance_batch.run_tasks(chain_list, tasks, monitor, bar)
    # BLAS holds one thread here: sample() limits it for its whole call (lcsample._blas)
    if advance_batch is not None:
        return _run_lockstep(chain_list, tasks, monitor, bar, advance_batch)
    return _run_threads(chain_list, tasks, cores, monitor, bar)


def _run_threads(chain_list, tasks, cores, monitor, bar):
    """Worker threads advance the chains one request at a time, round-robin.

    A chain goes back to the end of the queue after each of its requests, so with more
    chains than cores every chain progresses at the same pace and an interrupt finds
    draws in all of them. A task's bookkeeping runs in whichever thread advanced it, one
    thread at a time per chain, so the results do not depend on ``cores``.
    """
    results = [None] * len(tasks)
    queue = collections.deque(range(len(tasks)))
    pending = {}
    failures = []
    lock = threading.Lock()

    def work():
        while not failures:
            with lock:
                if not queue:
                    return
                c = queue.popleft()
                request = pending.pop(c, None)
            try:
                if request is None:  # the task's first request
                    request = next(tasks[c])
                request = tasks[c].send(chain_list[c].advance(request))
                with lock:
                    pending[c] = request
                    queue.append(c)
            except StopIteration as done:
                results[c] = done.value
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                failures.append(err)

    threads = [threading.Thread(target=work, daemon=True)
               for _ in range(min(cores, len(tasks)))]
    for t in threads:
        t.start()
    shown = monitor.count
    for t in threads:
        while t.is_alive():
            t.join(timeout=0.1)
            bar.update(monitor.count - shown)
            shown = monitor.count
    if failures:
        raise failures[0]
    return results, monitor.stop.is_set()


def _run_lockstep(chain_list, tasks, monitor, bar, advance_batch):
    results = [None] * len(tasks)
    requests = {}
    for c, task in enumerate(tasks):
        try:
            requests[c] = next(task)
        except StopIteration as stop:
            results[c] = stop.value
    shown = monitor.count
    while requests:
        order = sorted(requests)
        replies = advance_batch([chain_list[c] for c in order], [requests[c] for c in order])
        for c, reply in zip(order, replies, strict=True):
            try:
                requests[c] = tasks[c].send(reply)
            except StopIteration as stop:
                results[c] = stop.value
                del requests[c]
        bar.update(monitor.count - shown)
        shown = monitor.count
    return results, monitor.stop.is_set()
