"""The diffusion corrector: underdamped Langevin dynamics on the score at a fixed level.

The corrector is the MCMC sampler's step (:mod:`lcsample.kernels.step`) with unit inverse
mass, run on every sample in lockstep by :func:`lcsample.kernels.rows.langevin_rows`, the
score at level t standing in for ∇log π. Its defaults follow the stiffness bound of the
score: whatever the data, -∇²log p_t ≼ I/σ_t² (p_t is a Gaussian convolution), so
h = σ_t/4 and γ = 2/σ_t give critical damping and h√L ≤ ¼ for the stiffest direction
(docs/theory.md, the diffusion sampler's notation).

Samples on a torch device take the same step in tensor arithmetic
(:func:`_correct_on_device`): the coefficients from the kernels'
:func:`~lcsample.kernels.coefficients.step_coefficients` and the normals from each
sample's stream in the kernels' order, so a float64 run equals the kernels' to round-off.
"""

import numpy as np

from ..kernels.coefficients import StepCoefficients, step_coefficients
from ..kernels.rows import RowState, langevin_rows, typed_generators
from ..kernels.step import NORMALS_PER_COORDINATE, RMD, ULMC
from .backend import backend_of
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
    if not isinstance(x, np.ndarray):
        return _correct_on_device(CORRECTORS[corrector], oracle, x, t, n_steps, h, gamma, streams)

    def evaluate(points):
        return np.zeros(points.shape[0]), oracle(points, np.full(points.shape[0], t))

    precond = (np.ones(d), np.empty((0, 0)), np.empty((0, 0)))
    start = RowState.start(x, np.zeros((n, d)), oracle(x, np.full(n, t)), np.zeros(n), precond[2])
    end, _ = langevin_rows(evaluate, CORRECTORS[corrector], n_steps, np.full(n, h),
                           np.full(n, gamma), precond, start, streams.typed,
                           np.ones(n, dtype=bool))
    return end.x, end.g


def _correct_on_device(method, oracle, x, t, n_steps, h, gamma, streams):
    """:func:`correct` for tensors: the kernels' step (unit mass) in array arithmetic.

    Per sample, in the order of :func:`lcsample.kernels.step.draw_noise`: the fresh
    velocity's d normals, then per step α (randomized midpoint only) and a (d, k) block
    of normals; all drawn on the host and moved in one transfer per step. A non-finite
    state cannot be committed: the oracle raises on it first.
    """
    put = backend_of(x).put
    n, d = x.shape
    k = NORMALS_PER_COORDINATE[method]
    s = np.sqrt(2.0 * gamma)  # σ = √(2γu) with u = 1
    times = np.full(n, t)
    v = put([rng.standard_normal(d) for rng in streams])
    g = oracle(x, times)
    for _ in range(n_steps):
        alphas, z = [], []
        for rng in streams:
            alphas.append(rng.random() if method == RMD else 1.0)
            z.append(rng.standard_normal((d, k)))
        z = put(np.stack(z))
        if method == RMD:  # each sample its own midpoint: coefficients as (n, 1) columns
            table = put([step_coefficients(h, gamma, a) for a in alphas])
            c = StepCoefficients(*table.T[:, :, None])
        else:
            c = step_coefficients(h, gamma, 1.0)
        x, v, g = _device_step(method, oracle, times, s, c, z, x, v, g)
    return x, g


def _device_step(method, oracle, times, s, c, z, x, v, g):
    """One step of :func:`lcsample.kernels.step.propose`/``complete`` on (n, d) arrays."""
    a1 = c.l21_a * z[..., 0] + c.l22_a * z[..., 1]
    if method == ULMC:
        x_new = x + c.phi_a * v + c.psi_a * g + s * a1
        v_new = c.exp_h * v + c.phi_a * g + s * c.l11_a * z[..., 0]
        return x_new, v_new, oracle(x_new, times)
    i1, i2 = c.l11_a * z[..., 0], c.l11_b * z[..., 2]
    a2 = c.l21_b * z[..., 2] + c.l22_b * z[..., 3]
    g_mid = oracle(x + c.phi_a * v + c.psi_a * g + s * a1, times)
    x_new = x + c.phi_h * v + c.h_phi_b * g_mid + s * (a1 + c.phi_b * i1 + a2)
    v_new = c.exp_h * v + c.h_exp_b * g_mid + s * (c.exp_b * i1 + i2)
    return x_new, v_new, oracle(x_new, times)
