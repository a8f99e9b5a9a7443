"""Where chains start: the mode by L-BFGS, the curvature there, and jittered starting points.

Starting at the mode removes the transient that otherwise dominates a short warmup, and
the curvature at the mode gives the first inverse mass (its inverse: the Laplace
approximation's covariance), so the first warmup window already runs well conditioned.
"""

from typing import NamedTuple

import numpy as np
import scipy.optimize

__all__ = [
    "ModeSearch",
    "diagonal_curvature",
    "find_mode",
    "hessian",
    "jittered_starts",
    "positive_floor",
]

# Probes of the Hessian diagonal beyond which Rademacher probing replaces unit vectors.
_MAX_DIAGONAL_PROBES = 32
# Relative finite-difference step for Hessian columns.
_FD_STEP = 1e-5


class ModeSearch(NamedTuple):
    """Result of :func:`find_mode`.

    Attributes
    ----------
    x : ndarray, shape (d,)
        Best point found (the mode when ``converged``).
    logdensity : float
    gradient : ndarray, shape (d,)
    n_grads : int
        Log density and gradient evaluations used.
    converged : bool
    message : str
    """

    x: np.ndarray
    logdensity: float
    gradient: np.ndarray
    n_grads: int
    converged: bool
    message: str


def find_mode(logdensity_and_gradient, x0, max_iter=1000):
    """Maximize log π by L-BFGS from ``x0``.

    Non-finite values (outside the support) are reported to the optimizer as +inf
    potential, which its line search backs away from; the best finite point seen is
    returned whatever the optimizer's status.

    Parameters
    ----------
    logdensity_and_gradient : callable
        ``x -> (lp, grad)``.
    x0 : ndarray, shape (d,)
        A point where log π is finite.
    max_iter : int

    Returns
    -------
    ModeSearch
    """
    best = {"lp": -np.inf, "x": None, "g": None}
    count = [0]

    def potential(x):
        count[0] += 1
        lp, g = logdensity_and_gradient(x)
        if not (np.isfinite(lp) and np.isfinite(g).all()):
            return np.inf, np.zeros_like(x)
        if lp > best["lp"]:
            best.update(lp=lp, x=x.copy(), g=g.copy())
        return -lp, -g

    res = scipy.optimize.minimize(potential, x0, jac=True, method="L-BFGS-B",
                                  options={"maxiter": max_iter, "gtol": 1e-8, "ftol": 1e-13})
    return ModeSearch(best["x"], float(best["lp"]), best["g"], count[0], bool(res.success),
                      str(res.message))


def hessian(logdensity_and_gradient, x, g):
    """Hessian of -log π at ``x`` by forward differences of the gradient (d evaluations).

    Parameters
    ----------
    logdensity_and_gradient : callable
    x, g : ndarray, shape (d,)
        The point and ∇log π there.

    Returns
    -------
    ndarray, shape (d, d)
        Symmetrized estimate.
    """
    d = x.shape[0]
    hess = np.empty((d, d))
    for i in range(d):
        eps = _FD_STEP * max(1.0, abs(x[i]))
        step = x.copy()
        step[i] += eps
        hess[i] = -(logdensity_and_gradient(step)[1] - g) / eps
    return 0.5 * (hess + hess.T)


def diagonal_curvature(logdensity_and_gradient, x, g, rng):
    """Diagonal of H = -∇²log π at ``x``, clipped to be positive.

    Exact up to finite differences (unit vectors) for d ≤ 32; otherwise the Hutchinson
    estimate mean(z ⊙ Hz) over 32 Rademacher probes z, whose error is the off-diagonal
    mass of H — an initial value only, which the mass windows then replace.

    Parameters
    ----------
    logdensity_and_gradient : callable
    x, g : ndarray, shape (d,)
    rng : numpy.random.Generator

    Returns
    -------
    diag : ndarray, shape (d,)
    n_grads : int
    """
    d = x.shape[0]
    if d <= _MAX_DIAGONAL_PROBES:
        return np.maximum(np.diag(hessian(logdensity_and_gradient, x, g)), 0.0), d
    total = np.zeros(d)
    eps = _FD_STEP * max(1.0, float(np.sqrt(np.mean(x**2))))
    for _ in range(_MAX_DIAGONAL_PROBES):
        z = rng.choice((-1.0, 1.0), size=d)
        hz = -(logdensity_and_gradient(x + eps * z)[1] - g) / eps
        total += z * hz
    return np.maximum(total / _MAX_DIAGONAL_PROBES, 0.0), _MAX_DIAGONAL_PROBES


def positive_floor(curvature):
    """Replace non-positive curvature entries by the smallest positive one.

    A flat or concave direction at the mode has no Laplace scale; the widest scale seen
    elsewhere is a finite guess that the mass windows (or the chains) correct. Positive
    entries are kept, however spread (floored at 1e-12 of the largest for round-off).
    """
    positive = curvature[curvature > 0]
    if positive.size == 0:
        return np.ones_like(curvature)
    return np.where(curvature > 0, np.maximum(curvature, 1e-12 * positive.max()), positive.min())


def jittered_starts(center, mass, rng_list, radius=2.0):
    """Starting points center + U^{1/2}·uniform(-radius, radius), one per chain.

    With U the Laplace covariance, ±2 scale units around the mode is overdispersed
    relative to the posterior (so R-hat can detect non-mixing) yet inside its bulk.

    Parameters
    ----------
    center : ndarray, shape (d,)
    mass : InverseMass
    rng_list : list of numpy.random.Generator
        Each chain's stream.
    radius : float

    Returns
    -------
    ndarray, shape (chains, d)
    """
    return np.array([center + mass.root(rng.uniform(-radius, radius, center.shape[0]))
                     for rng in rng_list])
