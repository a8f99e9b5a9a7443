"""Running per-chain tasks: in threads (compiled targets) or in lockstep (batched targets).

A task is a generator for one chain. Each time it needs the chain advanced it yields a
request ``(draws_out, lp_out, thin, corrected)`` and receives ``(n_done, grads)``; it
returns its result at the end. The bookkeeping around each advance (what is recorded,
how a divergence is handled) lives in the task, so both ways of running give the same
results.
"""

import concurrent.futures
import signal
import threading
from contextlib import contextmanager

__all__ = ["Monitor", "run_tasks"]


class Monitor:
    """Progress counter and stop flag shared by the tasks."""

    def __init__(self):
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.count = 0

    def add(self, n):
        with self._lock:
            self.count += n


def _drive(chain, task):
    """Run one task to completion, advancing its chain with the compiled driver."""
    try:
        request = next(task)
        while True:
            request = task.send(chain.advance(*request))
    except StopIteration as stop:
        return stop.value


@contextmanager
def _sigint_sets(stop):
    """While active (main thread only), Ctrl-C sets ``stop`` instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
        thread; otherwise each runs in a worker thread.
    """
    if advance_batch is not None:
        return _run_lockstep(chain_list, tasks, monitor, bar, advance_batch)
    interrupted = False
    with concurrent.futures.ThreadPoolExecutor(max_workers=cores) as pool:
        futures = [pool.submit(_drive, ch, t) for ch, t in zip(chain_list, tasks, strict=True)]
        pending = set(futures)
        shown = monitor.count
        while pending:
            try:
                _, pending = concurrent.futures.wait(pending, timeout=0.1)
            except KeyboardInterrupt:
                # tasks see the flag between compiled blocks and return what they have
                interrupted = True
                monitor.stop.set()
            bar.update(monitor.count - shown)
            shown = monitor.count
    return [f.result() for f in futures], interrupted


def _run_lockstep(chain_list, tasks, monitor, bar, advance_batch):
    results = [None] * len(tasks)
    requests = {}
    with _sigint_sets(monitor.stop):
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
