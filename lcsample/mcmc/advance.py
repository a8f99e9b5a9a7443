"""How a run's chains advance, chosen once per run and rebuilt the same way on workers.

An :class:`AdvanceSpec` says which kind of advance a run uses; :func:`make_advance` turns
it and a target into the ``advance_batch`` callable of
:func:`lcsample.mcmc.execution.run_tasks` (or None: each chain on the compiled loop of
:meth:`lcsample.mcmc.chain.Chain.advance`); :func:`advance_one` advances one chain by one
request with it. The remote runner (:mod:`lcsample.mcmc.remote`) ships the spec, never the
callable, so a worker builds exactly the advance the local run would have used.
"""

from typing import NamedTuple

import numpy as np

from ..kernels.compiled import evaluate_rows
from .lockstep import LockstepAdvance
from .picard import PicardAdvance

__all__ = ["LOCKSTEP_CHAINS_PER_CORE", "AdvanceSpec", "advance_one", "compiled_rows",
           "lockstep_pays", "make_advance"]

#: A jitted target's chains advance in compiled lockstep loops (one per thread) from this
#: many chains per core on: 1.3-1.9x the chain-steps per second of one task per chain
#: from 16 chains on 2 cores, 0.7-0.9x at 4 and 8 (d = 100, benchmarks/many_chains.py).
LOCKSTEP_CHAINS_PER_CORE = 8


def lockstep_pays(chains, cores):
    """Whether a jitted target's chains advance in compiled lockstep (see above)."""
    return chains >= LOCKSTEP_CHAINS_PER_CORE * cores


class AdvanceSpec(NamedTuple):
    """Which advance a run uses (plain data: it travels to workers).

    Attributes
    ----------
    kind : Method
        The method's entry in :data:`lcsample.mcmc.options.METHODS`.
    picard_steps : int or None
    tolerance : float or None
    max_rounds : int or None
        ``method="rmd-picard"``'s block length, tolerance and round cap.
    carry : bool
        Picard blocks solved whole across requests (the sampling phase; see
        :class:`lcsample.mcmc.picard.PicardAdvance`).
    """

    kind: tuple  # a Method (lcsample.mcmc.options); not imported: options imports this
    picard_steps: int | None = None
    tolerance: float | None = None
    max_rounds: int | None = None
    carry: bool = False

    def carrying(self):
        """The spec of the sampling phase: whole Picard blocks when the tolerance is > 0."""
        if self.kind.picard and self.tolerance:
            return self._replace(carry=True)
        return self


def compiled_rows(target):
    """``evaluate(X) -> (lp, G)`` over rows for a jitted target (compiled once here)."""
    def evaluate(X):
        lp, G = np.empty(X.shape[0]), np.empty_like(X)
        evaluate_rows(target.logdensity_and_grad, target.args, X, lp, G)
        return lp, G

    evaluate(np.zeros((1, target.dim)))
    return evaluate


def make_advance(target, spec):
    """The ``advance_batch`` of ``spec`` for ``target``.

    Returns
    -------
    callable or None
        Picard blocks (``"rmd-picard"``), lockstep rows (batched targets), or None: each
        chain on its own compiled loop (:meth:`~lcsample.mcmc.chain.Chain.advance`).
    """
    if spec.kind.picard:
        evaluate = target.evaluate if target.batched else compiled_rows(target)
        return PicardAdvance(evaluate, spec.picard_steps, spec.tolerance, spec.max_rounds,
                             spec.carry)
    if target.batched:
        return LockstepAdvance(target.evaluate)
    return None


def advance_one(advance_batch, chain, request):
    """Advance one chain by ``request`` with ``advance_batch`` (None: its compiled loop).

    Returns
    -------
    (n_done, grads)
    """
    if advance_batch is None:
        return chain.advance(request)
    return advance_batch([chain], [request])[0]
