"""One predictor step and one corrector run of the diffusion sampler, in NumPy.

Shared by the sequential loop (:mod:`lcsample.diffusion.sampler`) and the Picard windows
(:mod:`lcsample.diffusion.parallel`). Both take the score as ``oracle(x, t)`` and the
randomness as per-sample generators, and make their score calls and draws in a fixed
order, which is what lets a Picard window replay them.
"""

import numpy as np

from ._kernels import uld_rm_midpoint, uld_rm_update, uld_step
from .process import sigma2, sigma_ve

__all__ = ["CORRECTOR_FRICTION", "CORRECTOR_STEP", "corrector_settings", "correct", "predict"]

# Corrector defaults in units of the stiffness bound 1/σ_t of the score at level t:
# h = CORRECTOR_STEP·σ_t, γ = CORRECTOR_FRICTION/σ_t. Measured on an ill-conditioned
# Gaussian (κ = 100, 40 log-SNR steps): a fixed h = 0.125, γ = 2 overstated the stiffest
# variance by 44 %; these keep it within 2 %.
CORRECTOR_STEP = 0.25
CORRECTOR_FRICTION = 2.0


def corrector_settings(t, h_fixed, gamma_fixed):
    """The corrector's (h, γ) at level t: the given values, else σ_t/4 and 2/σ_t."""
    sig = np.sqrt(sigma2(t))
    return h_fixed or CORRECTOR_STEP * sig, gamma_fixed or CORRECTOR_FRICTION / sig


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


def correct(corrector, oracle, x, t, n_steps, h, gamma, rngs):
    """A Langevin run on s_t at fixed t from x and a fresh velocity; returns the positions."""
    n, d = x.shape
    tt = np.full(n, t)
    v = np.array([rng.standard_normal(d) for rng in rngs])
    s = oracle(x, tt)
    # double buffers of our own: the caller's x is never written
    x, x_out, v_out = x.copy(), np.empty_like(x), np.empty_like(x)
    x_mid, w2, w3 = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    for k in range(n_steps):
        if corrector == "uld":
            z = np.array([rng.standard_normal((d, 2)) for rng in rngs])
            uld_step(z, x, v, s, h, gamma, x_out, v_out)
        else:
            alphas = np.array([rng.random() for rng in rngs])
            z = np.array([rng.standard_normal((d, 4)) for rng in rngs])
            uld_rm_midpoint(z, alphas, x, v, s, h, gamma, x_mid, w2, w3)
            uld_rm_update(alphas, x, v, oracle(x_mid, tt), h, gamma, w2, w3, x_out, v_out)
        x, x_out = x_out, x
        v, v_out = v_out, v
        if k + 1 < n_steps:
            s = oracle(x, tt)
    return x
