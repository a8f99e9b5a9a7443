"""Ctrl-C that stops a run cleanly instead of unwinding it, shared by both samplers."""

import signal
import threading
from contextlib import contextmanager

__all__ = ["ctrl_c_stops"]


@contextmanager
def ctrl_c_stops(stop):
    """While active (main thread only), Ctrl-C sets ``stop`` instead of raising.

    ``lcsample.sample`` and ``lcsample.diffusion.sample`` hold it from the start of the
    work to the assembled result, so an interrupt never lands in bookkeeping and loses the
    run: their loops look at ``stop`` between blocks or steps and return what they made.

    Parameters
    ----------
    stop : threading.Event
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
