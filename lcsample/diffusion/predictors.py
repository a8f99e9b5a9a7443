"""The predictor steps of the diffusion sampler along the reverse probability-flow ODE.

Each step goes from noise level t (scores ``s`` at x) to t_next in OU time; see
docs/theory.md for the formulas. Shared by the sequential loop
(:mod:`lcsample.diffusion.sampler`) and the Picard windows
(:mod:`lcsample.diffusion.picard`): the score comes as ``oracle(x, t)`` and the randomness
from per-sample generators, with the calls and draws in a fixed order, which is what
lets a Picard window replay them.
"""

import numpy as np

from .process import sigma2, sigma_ve

__all__ = ["predict", "tweedie"]


def predict(predictor, oracle, x, s, t, t_next, rngs):
    """One predictor step from level t (scores ``s`` at x) to t_next."""
    h = t - t_next
    n = x.shape[0]
    if predictor == "exp-euler":
        return np.exp(h) * x + np.expm1(h) * s
    if predictor == "ddpm":
        z = np.array([rng.standard_normal(x.shape[1]) for rng in rngs])
        return np.exp(h) * x + 2.0 * np.expm1(h) * s + np.sqrt(np.expm1(2.0 * h)) * z
    if predictor == "rm":
        alpha = np.array([rng.random() for rng in rngs])[:, None]
        x_mid = np.exp(alpha * h) * x + np.expm1(alpha * h) * s
        s_mid = oracle(x_mid, t - alpha[:, 0] * h)
        return np.exp(h) * x + h * np.exp((1.0 - alpha) * h) * s_mid
    # heun, in variance-exploding coordinates y = x/α_t, σ = √(e^{2t} - 1):
    # dy/dσ = -σ·α_t·s_t(x)
    sig, sig_next = sigma_ve(t), sigma_ve(t_next)
    y = x * np.exp(t)
    d1 = -sig * np.exp(-t) * s
    y_euler = y + (sig_next - sig) * d1
    x_euler = y_euler * np.exp(-t_next)
    d2 = -sig_next * np.exp(-t_next) * oracle(x_euler, np.full(n, t_next))
    return (y + 0.5 * (sig_next - sig) * (d1 + d2)) * np.exp(-t_next)


def tweedie(oracle, x, t, s=None):
    """The clean-sample estimate E[x_0 | x_t = x] = (x + σ_t² s_t(x))/α_t.

    ``s``: the scores at x when known; otherwise they are evaluated (1 evaluation).
    """
    if s is None:
        s = oracle(x, np.full(x.shape[0], t))
    return (x + sigma2(t) * s) * np.exp(t)
