"""Where chains start: the mode by L-BFGS and jittered starting points around it.

Starting at the mode removes the transient that otherwise dominates a short warmup, and
the curvature at the mode (:mod:`lcsample.mcmc.warmup.curvature`) gives the first inverse
mass, so the first warmup window already runs well conditioned.
"""

from typing import NamedTuple

import numpy as np
import scipy.optimize

__all__ = [
    "ModeSearch",
    "find_mode",
    "jittered_starts",
]

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
