"""The forward Ornstein–Uhlenbeck process of the paper and the time grids of the reverse run.

Forward process (docs/theory.md §10; the setting of Gupta, Cai & Chen 2025 and of Chen,
Chewi, Lee, Li, Lu & Salim 2023): dX_t = -X_t dt + √2 dB_t, so X_t = α_t X_0 + σ_t Z with
α_t = e^{-t} and σ_t² = 1 - e^{-2t}; its stationary law is N(0, I). In DDPM notation
ᾱ = α_t², so t = -½ log ᾱ; in the variance-exploding (k-diffusion) notation
σ_VE = σ_t/α_t = √(e^{2t} - 1), so t = ½ log(1 + σ_VE²). Sampling runs from a large t
(noise) down to a small end time δ > 0, where the score of a data distribution without
density is singular.
"""

import numpy as np

from .backend import namespace

__all__ = [
    "GRIDS",
    "T_MIN",
    "T_LIMIT",
    "alpha",
    "check_grid",
    "sigma",
    "sigma2",
    "t_from_sigma_ve",
    "sigma_ve",
    "time_grid",
]

#: Built-in time grids for :func:`time_grid`.
GRIDS = ("uniform", "logsnr", "karras", "windows")
#: The largest OU time the grids and predictors handle: e^{2t} (σ_VE², the log-SNR)
#: overflows float64 beyond t = ½ log(DBL_MAX) = 354.89; 354.8 rounded down.
T_LIMIT = np.floor(5.0 * np.log(np.finfo(np.float64).max)) / 10.0
#: The default end time: σ_VE = 0.002, EDM's and k-diffusion's σ_min (t = ½ log(1 + σ²) =
#: 2.0e-6). Stopping at noise σ leaves a data direction of standard deviation s with
#: variance s² + σ² (about: times α² ≈ 1), or s²/(1 + σ²/s²) after a final denoise: for
#: s = 0.01, 1.04 s² or 0.96 s² here, where the earlier default t = 10⁻³ (σ = 0.045) gave
#: 21 s² or 0.05 s². For data on a finer scale than about 0.01, pass a smaller ``t_min``.
T_MIN = 0.5 * np.log1p(0.002**2)
_T_LIMIT_WHY = (f"<= {T_LIMIT}, where e^(2t) overflows float64 (the forward process forgets "
                "the data long before: α_t = e^-t is 2e-9 at t = 20)")


# The five functions below take NumPy values (computed in float64) or torch tensors
# (computed in their dtype, on their device), which the torch adapters pass.


def alpha(t):
    """α_t = e^{-t}, the mean factor of the forward process."""
    xp, t = namespace(t)
    return xp.exp(-t)


def sigma2(t):
    """σ_t² = 1 - e^{-2t}, without cancellation at small t."""
    xp, t = namespace(t)
    return -xp.expm1(-2.0 * t)


def sigma(t):
    """σ_t = √(1 - e^{-2t})."""
    xp, t = namespace(t)
    return xp.sqrt(sigma2(t))


def sigma_ve(t):
    """Variance-exploding noise level σ_t/α_t = √(e^{2t} - 1) (k-diffusion's sigma)."""
    xp, t = namespace(t)
    return xp.sqrt(xp.expm1(2.0 * t))


def t_from_sigma_ve(s):
    """OU time of a variance-exploding noise level: t = ½ log(1 + σ²)."""
    xp, s = namespace(s)
    return 0.5 * xp.log1p(s**2)


def time_grid(steps, kind="uniform", t_max=5.0, t_min=T_MIN, rho=7.0):
    """Decreasing OU times from ``t_max`` to ``t_min``: the reverse run's grid.

    Parameters
    ----------
    steps : int
        Number of intervals (the grid has ``steps + 1`` points).
    kind : {"uniform", "logsnr", "karras", "windows"}
        ``"uniform"`` in t; ``"logsnr"`` uniform in log-SNR λ = log(α_t²/σ_t²)
        (DPM-Solver's choice); ``"karras"`` uniform in σ_VE^{1/ρ} (EDM, ρ = 7), mapped to
        OU time; ``"windows"``: the shape of schedule the analyses use (Chen, Chewi, Lee,
        Li, Lu & Salim 2023; docs/theory.md §10): uniform steps down to t = 1, then
        geometrically shrinking ones (uniform in log t) to ``t_min``, the steps split
        between the two parts in proportion to their lengths in these units (t_max - 1
        and log(1/t_min)).
    t_max : float
        Start (noise level), > t_min and <= ``T_LIMIT`` (354.8, where e^{2t} overflows).
    t_min : float
        End time δ > 0; default :data:`T_MIN` (σ_VE = 0.002).
    rho : float
        Karras exponent.

    Returns
    -------
    ndarray, shape (steps + 1,)
        Strictly decreasing, ``ts[0] = t_max`` and ``ts[-1] = t_min``.

    Raises
    ------
    ValueError
        Naming the invalid argument.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if kind not in GRIDS:
        raise ValueError(f"kind must be one of {list(GRIDS)}, got {kind!r}")
    if not (np.isfinite(t_min) and t_min > 0):
        raise ValueError(f"t_min must be > 0 (the score is singular at t = 0), got {t_min!r}")
    if not (np.isfinite(t_max) and t_max > t_min):
        raise ValueError(f"t_max must be finite and > t_min = {t_min}, got {t_max!r}")
    if t_max > T_LIMIT:
        raise ValueError(f"t_max must be {_T_LIMIT_WHY}; got {t_max!r}")
    if not (np.isfinite(rho) and rho > 0):
        raise ValueError(f"rho must be positive, got {rho!r}")
    u = np.linspace(0.0, 1.0, steps + 1)
    if kind == "uniform":
        ts = t_max + u * (t_min - t_max)
    elif kind == "logsnr":
        # λ(t) = -log(e^{2t} - 1) increases as t decreases; t = ½ log1p(e^{-λ})
        lam_start, lam_end = -np.log(np.expm1(2 * t_max)), -np.log(np.expm1(2 * t_min))
        ts = 0.5 * np.log1p(np.exp(-(lam_start + u * (lam_end - lam_start))))
    elif kind == "karras":
        s_max, s_min = sigma_ve(t_max) ** (1 / rho), sigma_ve(t_min) ** (1 / rho)
        ts = t_from_sigma_ve((s_max + u * (s_min - s_max)) ** rho)
    else:
        ts = _windows(steps, t_max, t_min)
    ts[0], ts[-1] = t_max, t_min  # exact end points whatever the round-off
    return ts


def _windows(steps, t_max, t_min):
    """Uniform in t above t = 1, uniform in log t below (one part only if 1 is outside)."""
    if t_max <= 1.0:
        return np.exp(np.linspace(np.log(t_max), np.log(t_min), steps + 1))
    if t_min >= 1.0:
        return np.linspace(t_max, t_min, steps + 1)
    upper, lower = t_max - 1.0, np.log(1.0 / t_min)
    n_upper = min(max(1, round(steps * upper / (upper + lower))), steps - 1) if steps > 1 else 0
    if n_upper == 0:
        return np.exp(np.linspace(np.log(t_max), np.log(t_min), steps + 1))
    return np.concatenate([np.linspace(t_max, 1.0, n_upper + 1)[:-1],
                           np.exp(np.linspace(0.0, np.log(t_min), steps - n_upper + 1))])


def check_grid(ts):
    """Validate a user time grid: finite, strictly decreasing, ending at t > 0.

    Returns
    -------
    ndarray, shape (n,)
        The grid as float64.
    """
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ValueError(f"ts must be a 1-D grid of at least 2 times, got shape {ts.shape}")
    if not np.isfinite(ts).all():
        raise ValueError("ts must be finite")
    if not (np.diff(ts) < 0).all():
        bad = int(np.flatnonzero(np.diff(ts) >= 0)[0])
        raise ValueError(f"ts must be strictly decreasing (noise level goes down); ts[{bad}] = "
                         f"{ts[bad]} is followed by {ts[bad + 1]}")
    if not ts[-1] > 0:
        raise ValueError(f"ts must end at t > 0 (the score is singular at t = 0), got {ts[-1]}")
    if ts[0] > T_LIMIT:
        raise ValueError(f"ts must start at t {_T_LIMIT_WHY}; got {ts[0]}")
    return ts
