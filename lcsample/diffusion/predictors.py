"""The predictor steps of the diffusion sampler along the reverse probability-flow ODE.

Each step goes from noise level t (scores ``s`` at x) to t_next in OU time; see
docs/theory.md for the formulas. Shared by the sequential loop
(:mod:`lcsample.diffusion.sampler`) and the Picard windows
(:mod:`lcsample.diffusion.picard`): the score comes as ``oracle(x, t)`` and the randomness
from per-sample generators, with the calls and draws in a fixed order, which is what
lets a Picard window replay them.
"""

import numpy as np

from .backend import backend_of
from .multistep import MULTISTEP
from .multistep import unit_variance as multistep_unit_variance
from .process import sigma, sigma2, sigma_ve

__all__ = ["predict", "tweedie", "unit_variance"]


def predict(predictor, oracle, x, s, t, t_next, rngs):
    """One predictor step from level t (scores ``s`` at x) to t_next.

    ``x``, ``s``: (n, d) arrays of the run's backend; the per-sample random numbers are
    drawn on the host from ``rngs`` and their coefficients moved to the samples' device.
    """
    h = t - t_next
    n = x.shape[0]
    put = backend_of(x).put
    if predictor == "exp-euler":
        # the score frozen at s_t(x): exact for N(0, I) data, not DDIM (below)
        return np.exp(h) * x + np.expm1(h) * s
    if predictor == "ddim":
        # DDIM (η = 0) = DPM-Solver++(1) = k-diffusion's Euler: the denoiser
        # x̂₀ = (x + σ_t² s)/α_t frozen, the rest exact: x' = (σ'/σ) x + α'(1 - e^{-h_λ}) x̂₀,
        # with h_λ = log(α'/σ') - log(α/σ) the half-log-SNR step and σ'/σ = e^{h - h_λ}
        h_lam = h + np.log(sigma(t) / sigma(t_next))
        denoised = (x + sigma2(t) * s) * np.exp(t)
        return np.exp(h - h_lam) * x - np.exp(-t_next) * np.expm1(-h_lam) * denoised
    if predictor == "ddpm":
        z = put([rng.standard_normal(x.shape[1]) for rng in rngs])
        return np.exp(h) * x + 2.0 * np.expm1(h) * s + np.sqrt(np.expm1(2.0 * h)) * z
    if predictor == "rm":
        alpha = np.array([rng.random() for rng in rngs])[:, None]
        x_mid = put(np.exp(alpha * h)) * x + put(np.expm1(alpha * h)) * s
        s_mid = oracle(x_mid, t - alpha[:, 0] * h)
        return np.exp(h) * x + put(h * np.exp((1.0 - alpha) * h)) * s_mid
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


def unit_variance(predictor, ts):
    """The predictor's output variance on N(0, I) data along grid ``ts``; exact: 1.

    N(0, I) data is the forward process's stationary law: p_t = N(0, I) and s_t(x) = -x at
    every t, the score every data distribution approaches at high noise, where a grid with
    too few steps for its ``t_max`` puts its long steps. There each step is the linear map
    x' = m x (plus independent noise for "ddpm"), so the variance after the grid is exact:
    "exp-euler" m = 1 (exact); "ddim" m = σ'σ + α'α; "rm" m = e^h - h e^{(1-α)h}, of mean 1
    and E m² = 1 + h² Var e^{(1-α)h}; "ddpm" v' = (2 - e^h)² v + e^{2h} - 1; "heun" in
    variance-exploding coordinates with the denoiser y/(1 + σ²).

    Parameters
    ----------
    predictor : str
    ts : ndarray, shape (n,)
        Decreasing grid.

    Returns
    -------
    float
        Variance of the end point from a unit-variance start; inf where it overflows.
    """
    if predictor in MULTISTEP:
        return multistep_unit_variance(ts)
    t, t_next = ts[:-1], ts[1:]
    h = t - t_next
    with np.errstate(over="ignore", invalid="ignore"):
        if predictor == "exp-euler":
            return 1.0
        if predictor == "ddim":
            m2 = (sigma(t) * sigma(t_next) + np.exp(-t - t_next)) ** 2
        elif predictor == "rm":
            m2 = 1.0 + 0.5 * h * np.expm1(2.0 * h) - np.expm1(h) ** 2
        elif predictor == "heun":
            sig, sig_next = sigma_ve(t), sigma_ve(t_next)
            d1 = sig / (1.0 + sig**2)
            d2 = (1.0 + (sig_next - sig) * d1) * sig_next / (1.0 + sig_next**2)
            m2 = (np.exp(h) * (1.0 + 0.5 * (sig_next - sig) * (d1 + d2))) ** 2
        else:  # ddpm: v_N = Π m² + Σ_k (e^{2h_k} - 1) Π_{j>k} m_j²
            m2 = (2.0 - np.exp(h)) ** 2
        v = np.prod(m2)
        if predictor == "ddpm":
            v += np.sum(np.expm1(2.0 * h) * np.append(np.cumprod(m2[::-1])[::-1][1:], 1.0))
    return float(v) if np.isfinite(v) else np.inf
