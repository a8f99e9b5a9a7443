"""The diffusion corrector: underdamped Langevin dynamics on the score at a fixed level.

The corrector is the MCMC sampler's step (:mod:`lcsample.kernels.step`) with unit inverse
mass, run on every sample in lockstep by :func:`lcsample.kernels.rows.langevin_rows`, the
score at level t standing in for ∇log π. Its defaults follow the stiffness bound of the
score: whatever the data, -∇²log p_t ≼ I/σ_t² (p_t is a Gaussian convolution), so
h = σ_t/4 and γ = 2/σ_t give critical damping and h√L ≤ ¼ for the stiffest direction
(docs/theory.md, the diffusion sampler's notation).
"""

import numpy as np

from ..kernels.rows import RowState, langevin_rows, typed_generators
from ..kernels.step import RMD, ULMC
from .process import sigma2

__all__ = ["CORRECTORS", "CORRECTOR_FRICTION", "CORRECTOR_STEP", "Streams", "correct",
           "corrector_settings"]

#: Corrector names and their integrators: exponential Euler (the paper's corrector, one
#: score evaluation per step) and the randomized midpoint (two).
CORRECTORS = {"uld": ULMC, "uld-rm": RMD}
# Corrector defaults in units of the stiffness bound 1/σ_t of the score at level t:
# h = CORRECTOR_STEP·σ_t, γ = CORRECTOR_FRICTION/σ_t. Measured on an ill-conditioned
# Gaussian (κ = 100, 40 log-SNR steps): a fixed h = 0.125, γ = 2 overstated the stiffest
# variance by 44 %; these keep it within 2 %.
CORRECTOR_STEP = 0.25
CORRECTOR_FRICTION = 2.0


class Streams:
    """The samples' generators: iterable for NumPy draws, ``typed`` for the step kernels.

    Both views share each generator's state. ``save``/``restore`` rewind every stream,
    which is how a Picard window replays its draws.
    """

    def __init__(self, rngs):
        self.rngs = list(rngs)
        self.typed = typed_generators(self.rngs)

    def __iter__(self):
        return iter(self.rngs)

    def save(self):
        return [rng.bit_generator.state for rng in self.rngs]

    def restore(self, states):
        for rng, state in zip(self.rngs, states, strict=True):
            rng.bit_generator.state = state


def corrector_settings(t, h_fixed, gamma_fixed):
    """The corrector's (h, γ) at level t: the given values, else σ_t/4 and 2/σ_t."""
    sig = np.sqrt(sigma2(t))
    return h_fixed or CORRECTOR_STEP * sig, gamma_fixed or CORRECTOR_FRICTION / sig


def correct(corrector, oracle, x, t, n_steps, h, gamma, streams):
    """A Langevin run on s_t at fixed t from x and fresh velocities.

    Parameters
    ----------
    corrector : {"uld", "uld-rm"}
    oracle : callable
        ``oracle(x, t) -> scores`` on rows x (m, d), times t (m,).
    x : ndarray, shape (n, d)
        Not modified.
    t : float
    n_steps : int
    h, gamma : float
    streams : Streams

    Returns
    -------
    x_end, s_end : ndarray, shape (n, d)
        The end positions and the scores there (which the next predictor step reuses).
    """
    n, d = x.shape

    def evaluate(points):
        return np.zeros(points.shape[0]), oracle(points, np.full(points.shape[0], t))

    precond = (np.ones(d), np.empty((0, 0)), np.empty((0, 0)))
    start = RowState.start(x, np.zeros((n, d)), oracle(x, np.full(n, t)), np.zeros(n), precond[2])
    end, _ = langevin_rows(evaluate, CORRECTORS[corrector], n_steps, np.full(n, h),
                           np.full(n, gamma), precond, start, streams.typed,
                           np.ones(n, dtype=bool))
    return end.x, end.g
