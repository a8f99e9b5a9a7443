"""Many chains of a jitted target in one compiled loop, chain after chain.

:func:`run_chains` gives each chain exactly what :func:`lcsample.kernels.compiled.run_chain`
would (both run :func:`~lcsample.kernels.compiled.chain_draws`, each chain with its own
generator), but with one call from Python for all of them: the ~40 µs that each call of
``run_chain`` costs in Python and in unboxing its arguments (~7 µs for the generator
alone) is paid once per call instead of once per chain and block. It is compiled through
:func:`lcsample._jit.with_target`, once per function signature and cached on disk like
``run_chain``.
"""

from .._jit import with_target
from .compiled import chain_draws

__all__ = ["run_chains"]


def _run_chains(fn, args, method, h, gamma, precond, corrector, thin, X, V, G, X_at, LP, rngs,
                which, wanted, draws_out, lp_out, energy_out, n_done_out, failed_out):
    """Advance chains j = 0 … C−1, each as :func:`~lcsample.kernels.compiled.run_chain`."""
    for j in range(X.shape[0]):
        n = wanted[j]
        n_done_out[j], LP[j], failed_out[j] = chain_draws(
            fn, args, method, h[j], gamma[j], precond, corrector, thin, X[j], V[j], G[j],
            X_at[j], LP[j], rngs[which[j]], draws_out[j, :n], lp_out[j, :n], energy_out[j, :n])


def run_chains(fn, args, method, h, gamma, precond, corrector, thin, X, V, G, X_at, LP, rngs,
               which, wanted, draws_out, lp_out, energy_out, n_done_out, failed_out):
    """Advance C chains that share an inverse mass, each by its own number of draws.

    Chain j is advanced exactly as ``run_chain`` would advance it alone, with generator
    ``rngs[which[j]]``: the draws are bit-identical to the per-chain calls. The loop
    releases the GIL, so threads can run disjoint sets of chains at once.

    Parameters
    ----------
    fn : numba dispatcher
        ``fn(x, grad_out, *args) -> log π(x)``.
    args : tuple
    method : int
        :data:`~lcsample.kernels.step.RMD`, :data:`~lcsample.kernels.step.ULMC` or
        :data:`~lcsample.kernels.step.RMD_LAGGED`.
    h, gamma : ndarray, shape (C,)
        Step size and friction of each chain.
    precond : tuple (u, chol, dense)
        The chains' shared inverse mass (see :mod:`lcsample.kernels.step`).
    corrector : tuple (int, float) or None
        The ``rmd-tv`` corrector's (steps, step size) per draw, or None
        (:func:`~lcsample.kernels.compiled.chain_draws`).
    thin : int
        Steps per draw.
    X, V, G : ndarray, shape (C, d)
        Positions, velocities and gradients; each row updated in place to its chain's last
        finite state.
    X_at : ndarray, shape (C, d) or (C, 0)
        Where each G row was evaluated (``method="rmd-lagged"``; empty rows otherwise).
    LP : ndarray, shape (C,)
        log π at each row; updated likewise.
    rngs : numba.typed.List of numpy.random.Generator
        Generators (:func:`lcsample.kernels.rows.typed_generators`), possibly more than C;
        the states of those used advance.
    which : ndarray of int, shape (C,)
        Index in ``rngs`` of each chain's generator.
    wanted : ndarray of int, shape (C,)
        Draws to make in each chain, at most n.
    draws_out : ndarray, shape (C, n, d)
    lp_out, energy_out : ndarray, shape (C, n)
        Row j's first ``wanted[j]`` entries are chain j's ``draws_out``, ``lp_out`` and
        ``energy_out`` of ``run_chain``, written as it writes them (the rest untouched).
    n_done_out, failed_out : ndarray of int, shape (C,)
        Receive each chain's draws done and the gradient evaluations spent on the draw that
        went non-finite, as ``run_chain`` returns them.
    """
    with_target(_run_chains, fn, args, method, h, gamma, precond, corrector, thin, X, V, G, X_at,
                LP, rngs, which, wanted, draws_out, lp_out, energy_out, n_done_out, failed_out)
