"""The multistep predictor–corrector ``"dpm-pc"``: the data prediction, extrapolated in log-SNR.

The reverse probability-flow ODE, written for the denoiser D(x, t) = E[x₀ | x_t = x] =
(x + σ_t² s_t(x))/α_t in the half-log-SNR λ = log(α_t/σ_t), has the exact solution
(Lu et al. 2022, DPM-Solver++)

    x_{t'} = (σ_{t'}/σ_t) x_t + σ_{t'} ∫_λ^{λ'} e^u D(x_u, u) du,

so a step is exact up to how D is approximated over [λ, λ']. With P(λ + r) a polynomial
through earlier values of D and h = λ' − λ, φ₁ = 1 − e^{−h}, φ₂ = h − φ₁,
φ₃ = h² − 2h + 2φ₁:

    x' = (σ'/σ) x + α' [φ₁ P(0) + φ₂ P'(0) + φ₃ P''(0)/2].

One step from t_i (D_i known, and D_{i−1}, D_{i−2} with their λ-steps when there):

1. **Predict**: x^p = (σ'/σ) x + α' φ₁ c, with c the extrapolant of D at the step's
   λ-midpoint: D_i at the first step; linear through (D_{i−1}, D_i) at the second, or
   when h > ½ (DPM-Solver++(2M)); quadratic through D_{i−2}, D_{i−1}, D_i otherwise.
2. **Evaluate** D_{i+1} = D(x^p, t_{i+1}): the step's one score evaluation.
3. **Correct** (UniPC's idea, Zhao et al. 2023): redo the step with the polynomial
   through D_i and D_{i+1} (plus D_{i−1} when h ≤ ½). D_{i+1} is not re-evaluated at the
   corrected point: the next step uses it as it is.

A run costs 1 + steps evaluations; with ``denoise=True`` the output is the last D,
which costs nothing more. The order switch at h = ½ keeps the quadratic where the
steps are short (high λ, where the data's fine structure is); on long steps at low NFE
its extrapolation overshoots. Measured against k-diffusion's solvers in
``benchmarks/kdiffusion.py`` (docs/diffusion.md).

Deterministic: no random numbers. A corrector run (``corrector=``) after a step restarts
the history from the corrected point.
"""

from typing import NamedTuple

import numpy as np

from .process import alpha, sigma, sigma2

__all__ = ["Coefficients", "History", "MULTISTEP", "coefficients", "denoised", "run", "start",
           "step", "unit_variance"]

#: The multistep predictors (one score evaluation per step, plus one at the start).
MULTISTEP = ("dpm-pc",)
#: Steps (in λ) up to which the extrapolations are quadratic.
_QUADRATIC_UP_TO = 0.5


class History(NamedTuple):
    """D at the last (up to 3) grid points, newest last, and the λ-steps between them."""

    D: tuple
    h: tuple

    def push(self, D, h):
        return History((*self.D, D)[-3:], (*self.h, h)[-2:])


def half_log_snr(t):
    """λ = log(α_t/σ_t) = -½ log(e^{2t} - 1)."""
    return -0.5 * np.log(np.expm1(2.0 * t))


def denoised(x, s, t):
    """D = (x + σ_t² s)/α_t at one time t, from the scores ``s`` at x."""
    return (x + sigma2(t) * s) * np.exp(t)


class Coefficients(NamedTuple):
    """Per step k of a grid: h (the λ-step), σ'/σ, α', φ₁, φ₂, φ₃, σ'², 1/α'; (N,) each."""

    h: np.ndarray
    ratio: np.ndarray
    a: np.ndarray
    phi1: np.ndarray
    phi2: np.ndarray
    phi3: np.ndarray
    s2: np.ndarray
    inv_a: np.ndarray


def coefficients(ts):
    """The step coefficients of grid ``ts`` (N + 1,), computed once, in float64."""
    t, t_next = ts[:-1], ts[1:]
    h = half_log_snr(t_next) - half_log_snr(t)
    phi1 = -np.expm1(-h)
    return Coefficients(h, sigma(t_next) / sigma(t), alpha(t_next), phi1, h - phi1,
                        h * h - 2.0 * h + 2.0 * phi1, sigma2(t_next), np.exp(t_next))


def start(oracle, x, t):
    """The history of a run from x at t: D_0 (one evaluation)."""
    return History((denoised(x, oracle(x, np.full(x.shape[0], t)), t),), ())


def step(oracle, x, hist, c, k, t_next):
    """Step k of the grid (coefficients ``c``), to time t_next; returns (x', new history).

    Parameters
    ----------
    oracle : callable
        ``oracle(x, t) -> scores`` on rows x (n, d), times t (n,).
    x : array, shape (n, d)
    hist : History
    c : Coefficients
    k : int
    t_next : float
    """
    h, ratio, a = float(c.h[k]), float(c.ratio[k]), float(c.a[k])
    phi1, phi2 = float(c.phi1[k]), float(c.phi2[k])
    D, hs = hist.D, hist.h
    quadratic = h <= _QUADRATIC_UP_TO
    p = D[-1]  # the extrapolant of D at the step's λ-midpoint
    if len(D) >= 2:
        f01 = (D[-1] - D[-2]) / hs[-1]
        p = p + (0.5 * h) * f01
        if quadratic and len(D) >= 3:
            c2 = (f01 - (D[-2] - D[-3]) / hs[-2]) / (hs[-1] + hs[-2])
            p = p + (0.5 * h * (0.5 * h + hs[-1])) * c2
    x_p = ratio * x + (a * phi1) * p
    s_p = oracle(x_p, np.full(np.shape(x)[:1], t_next))
    D_new = (x_p + float(c.s2[k]) * s_p) * float(c.inv_a[k])
    f = (D_new - D[-1]) / h
    x_new = ratio * x + (a * phi1) * D[-1] + (a * phi2) * f
    if quadratic and len(D) >= 2:
        c2 = (f - (D[-1] - D[-2]) / hs[-1]) / (h + hs[-1])
        x_new = x_new + (a * (float(c.phi3[k]) - h * phi2)) * c2
    return x_new, hist.push(D_new, h)


def run(oracle, ts, x, go_on, after_step, bar):
    """The sequential loop of a multistep predictor.

    Parameters
    ----------
    oracle : callable
    ts : ndarray, shape (N + 1,)
    x : array, shape (n, d)
    go_on : callable
        ``go_on(i, t, x, denoised)`` before step i (``denoised()`` gives D there); False
        stops the run there.
    after_step : callable
        ``after_step(i, x) -> (x, s) or None``: the corrector run after step i, if any,
        with the scores at its end point (the history restarts there).
    bar : progress bar

    Returns
    -------
    x : array, shape (n, d)
    denoised : array, shape (n, d)
        The last D (the output of ``denoise=True``).
    interrupted : bool
    """
    hist, c = None, coefficients(ts)
    for i in range(len(ts) - 1):
        if hist is None:
            hist = start(oracle, x, ts[i])
        if not go_on(i, ts[i], x, lambda: hist.D[-1]):  # noqa: B023
            return x, hist.D[-1], True
        x, hist = step(oracle, x, hist, c, i, ts[i + 1])
        corrected = after_step(i, x)
        if corrected is not None:
            x = corrected[0]
            hist = History((denoised(x, corrected[1], ts[i + 1]),), ())
        bar.update(1)
    return x, hist.D[-1], False


def unit_variance(ts):
    """The predictor's output variance on N(0, I) data along ``ts`` (exact: 1).

    On N(0, I) data s_t(x) = -x, so every quantity of a run is a fixed multiple of the
    start: the run on the scalar 1 (Python floats: fast on a long grid) gives that
    multiple, and the variance is its square.
    """
    c = coefficients(ts)
    x, hist = 1.0, History((float(np.exp(-ts[0])),), ())  # D_0 = α_t x on N(0, I) data
    for k in range(len(ts) - 1):
        x, hist = step(lambda y, _: -y, x, hist, c, k, ts[k + 1])
    v = x * x
    return v if np.isfinite(v) else np.inf
