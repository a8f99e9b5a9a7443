"""Scalar coefficients of underdamped Langevin steps (Shen & Lee 2019), stable for any γh.

All coefficients are written through three functions of x = γt that have no
cancellation at either end of the range,

* ``e1(x) = (1 - e^{-x}) / x``            so  φ_γ(t) = t·e1(γt),
* ``e2(x) = (x - 1 + e^{-x}) / x²``       so  ψ_γ(t) = t²·e2(γt),
* ``e3(x) = (2x - 3 + 4e^{-x} - e^{-2x}) / (2x³)``  so  V_A(t) = ∫_0^t φ_γ(r)² dr = t³·e3(γt).

``e1`` uses ``expm1``; ``e2`` and ``e3`` switch to their Taylor series for x < 1, where the
closed forms lose up to all their digits (at x = 1e-6 the numerator of e3 is ~1e-19 of
its terms). The series are summed to round-off, so accuracy holds for γh from 0 to ∞.

References
----------
Shen, R. and Lee, Y. T. (2019). The randomized midpoint method for log-concave sampling.
NeurIPS.
"""

from collections import namedtuple

import numpy as np

from .._jit import kernel

__all__ = [
    "StepCoefficients",
    "noise_mixing",
    "pair_covariance",
    "phi",
    "psi",
    "rmd_noise_covariance",
    "step_coefficients",
]

# Below this x the series of e2/e3 is used; 30 terms bring the truncation error under
# 1e-32 relative there, and the closed forms lose at most ~2 digits above it.
_SERIES_BELOW = 1.0
_SERIES_TERMS = 30


@kernel
def _e1(x):
    if x == 0.0:
        return 1.0
    return -np.expm1(-x) / x


@kernel
def _e2(x):
    if x < _SERIES_BELOW:
        # Σ_{j≥0} (-x)^j / (j+2)!
        term = 0.5
        total = term
        for j in range(1, _SERIES_TERMS):
            term *= -x / (j + 2)
            total += term
        return total
    return (x + np.expm1(-x)) / (x * x)


@kernel
def _e3(x):
    if x < _SERIES_BELOW:
        # (1/2) Σ_{k≥3} (-1)^k (4 - 2^k) x^{k-3} / k!
        total = 0.0
        power_term = 1.0 / 6.0  # x^{k-3}/k! at k = 3
        two_k = 8.0
        sign = -1.0
        for k in range(3, 3 + _SERIES_TERMS):
            total += sign * (4.0 - two_k) * power_term
            power_term *= x / (k + 1)
            two_k *= 2.0
            sign = -sign
        return 0.5 * total
    return (2.0 * x - 3.0 + 4.0 * np.exp(-x) - np.exp(-2.0 * x)) / (2.0 * x * x * x)


@kernel
def phi(t, gamma):
    """φ_γ(t) = (1 - e^{-γt})/γ, the velocity-to-position kernel of ULD over time t."""
    return t * _e1(gamma * t)


@kernel
def psi(t, gamma):
    """ψ_γ(t) = (t - φ_γ(t))/γ = ∫_0^t φ_γ(r) dr, the force-to-position kernel."""
    return t * t * _e2(gamma * t)


@kernel
def pair_covariance(s, gamma):
    """Covariance of the Brownian pair over an interval of length ``s``.

    I(s) = ∫_0^s e^{-γ(s-r)} dB_r and A(s) = ∫_0^s φ_γ(s-r) dB_r, per coordinate.

    Returns
    -------
    var_i, cov_ia, var_a : float
    """
    x = gamma * s
    var_i = s * _e1(2.0 * x)
    e = _e1(x)
    cov_ia = 0.5 * s * s * e * e
    var_a = s * s * s * _e3(x)
    return var_i, cov_ia, var_a


@kernel
def _pair_factor(s, gamma):
    """Lower Cholesky factor (l11, l21, l22) of the (I, A) pair covariance.

    The Schur complement Var A - Cov²/Var I is formed as s³·(e3 - e1⁴/(4·e1(2x))), whose two
    terms differ by a factor ≥ 4/3 for every x, so it never cancels.
    """
    if s <= 0.0:
        return 0.0, 0.0, 0.0
    x = gamma * s
    e1x = _e1(x)
    e1_2x = _e1(2.0 * x)
    l11 = np.sqrt(s * e1_2x)
    l21 = 0.5 * s * s * e1x * e1x / l11
    schur = s * s * s * (_e3(x) - e1x**4 / (4.0 * e1_2x))
    l22 = np.sqrt(max(schur, 0.0))
    return l11, l21, l22


StepCoefficients = namedtuple(
    "StepCoefficients",
    [
        "phi_a",  # φ(a): v → x_mid
        "psi_a",  # ψ(a): ∇log π(x) → x_mid
        "phi_h",  # φ(h): v → x'
        "h_phi_b",  # h·φ(h-a): ∇log π(x_mid) → x'
        "exp_h",  # e^{-γh}: v → v'
        "h_exp_b",  # h·e^{-γ(h-a)}: ∇log π(x_mid) → v'
        "phi_b",  # φ(h-a): carries I on [0, a] into W2
        "exp_b",  # e^{-γ(h-a)}: carries I on [0, a] into W3
        "l11_a", "l21_a", "l22_a",  # Cholesky of the (I, A) pair on [0, a]
        "l11_b", "l21_b", "l22_b",  # Cholesky of the (I, A) pair on [a, h]
    ],
)


@kernel
def step_coefficients(h, gamma, alpha):
    """Coefficients of one step of length h with midpoint a = αh.

    The randomized-midpoint step uses all of them. The exponential-Euler step is the
    first half of the same step with α = 1: it reads φ(h) = ``phi_a``, ψ(h) = ``psi_a``,
    ``exp_h`` and the (I, A) pair over the whole step (``l11_a``, ``l21_a``, ``l22_a``).

    Parameters
    ----------
    h : float
        Step size, > 0.
    gamma : float
        Friction γ, ≥ 0.
    alpha : float
        Midpoint fraction α in [0, 1].

    Returns
    -------
    StepCoefficients
    """
    a = alpha * h
    b = h - a
    l11_a, l21_a, l22_a = _pair_factor(a, gamma)
    l11_b, l21_b, l22_b = _pair_factor(b, gamma)
    phi_b = phi(b, gamma)
    exp_b = np.exp(-gamma * b)
    return StepCoefficients(
        phi(a, gamma),
        psi(a, gamma),
        phi(h, gamma),
        h * phi_b,
        np.exp(-gamma * h),
        h * exp_b,
        phi_b,
        exp_b,
        l11_a, l21_a, l22_a,
        l11_b, l21_b, l22_b,
    )


@kernel
def noise_mixing(c):
    """The map from the two Brownian pairs of a step to its three Brownian integrals.

    (W1, W2, W3) = N·(I1, A1, I2, A2), with (I1, A1) the pair on [0, a] and (I2, A2) the
    pair on [a, h]: W1 = A1, W2 = A1 + φ(h-a)·I1 + A2, W3 = e^{-γ(h-a)}·I1 + I2. Only
    decaying exponentials appear, so the map is stable for large γh. The step kernels
    (:func:`lcsample.kernels.step.propose`) apply it written out per coordinate.

    Parameters
    ----------
    c : StepCoefficients

    Returns
    -------
    ndarray, shape (3, 4)
    """
    n = np.zeros((3, 4))
    n[0, 1] = 1.0
    n[1, 0], n[1, 1], n[1, 3] = c.phi_b, 1.0, 1.0
    n[2, 0], n[2, 2] = c.exp_b, 1.0
    return n


def rmd_noise_covariance(h, gamma, alpha):
    """Exact 3×3 covariance of (W1, W2, W3) per coordinate for one RM-ULMC step.

    W1 = ∫_0^a φ(a-s) dB_s, W2 = ∫_0^h φ(h-s) dB_s, W3 = ∫_0^h e^{-γ(h-s)} dB_s with
    a = αh, assembled by :func:`noise_mixing` from the two independent pairs on [0, a]
    and [a, h], so it is as stable as :func:`pair_covariance`.

    Returns
    -------
    ndarray, shape (3, 3)
    """
    a = alpha * h
    vi1, c1, va1 = pair_covariance(a, gamma)
    vi2, c2, va2 = pair_covariance(h - a, gamma)
    pairs = np.array([[vi1, c1, 0, 0], [c1, va1, 0, 0], [0, 0, vi2, c2], [0, 0, c2, va2]])
    n = noise_mixing(step_coefficients(h, gamma, alpha))
    return n @ pairs @ n.T
