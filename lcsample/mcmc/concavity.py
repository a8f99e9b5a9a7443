"""Is the target log-concave where the chains are? Checked from evaluations already made.

Each chain's state (x, log π(x), ∇log π(x)) at its start, at the end of the warmup and at
the end of the run is a point of the posterior's bulk whose gradient is known. A concave
log density lies below every tangent plane, so for each pair of such points,

    log π(x_j) ≤ log π(x_i) + ∇log π(x_i)·(x_j − x_i).

A pair that breaks this proves the target is not log-concave between two places the
chains visited, at no cost in evaluations (12 points, 132 ordered pairs for 4 chains).
Only then are evaluations spent: the Hessian at the point whose tangent failed (d
gradients, for d ≤ :data:`MAX_NAMED_DIM`), whose most positive eigenvalue is the direction
along which the log density curves upward most; the warning names the variables that make
up that direction.
"""

from typing import NamedTuple

import numpy as np

from .warmup.curvature import hessian
from .warmup.modes import tangent_gaps

__all__ = ["ConcavityCheck", "check_concavity", "concavity_warning"]

#: Above this dimension the warning does not spend d gradients to name variables.
MAX_NAMED_DIM = 1000
# Rounding allowance of the pair test (as in the modes survey), in units of the output's
# machine epsilon times the magnitudes summed.
_ROUNDING = 64.0
# Variables named in the warning, largest upward curvature first.
_NAMED = 3


class ConcavityCheck(NamedTuple):
    """Result of :func:`check_concavity`.

    Attributes
    ----------
    n_pairs, n_failed : int
        Ordered pairs of chain states tested, and those whose tangent test failed.
    worst_gap : float
        The largest amount (nats) by which a log density exceeded a tangent plane.
    curvature : float
        The largest eigenvalue of ∇²log π at the worst point: positive where log π curves
        upward (NaN when not computed).
    upward : tuple of (str, float)
        The coordinates (labels) that make up its eigenvector, with their components,
        largest first; empty when not computed or when the curvature is not positive.
    n_grads : int
        Evaluations spent on ``upward``.
    """

    n_pairs: int
    n_failed: int
    worst_gap: float
    curvature: float = np.nan
    upward: tuple = ()
    n_grads: int = 0


def check_concavity(target, x, lp, grad):
    """The pairwise tangent test over chain states, and the upward directions if it fails.

    Parameters
    ----------
    target : Target or BatchedTarget
    x, grad : ndarray, shape (n, d)
        Finite chain states and their gradients.
    lp : ndarray, shape (n,)

    Returns
    -------
    ConcavityCheck
    """
    n = x.shape[0]
    gaps = np.empty((n, n))
    tolerance = np.empty((n, n))
    for j in range(n):  # column j: every point's tangent plane evaluated at x_j
        gaps[:, j], scale = tangent_gaps(x, lp, grad, x[j], lp[j])
        tolerance[:, j] = _ROUNDING * target.output_eps * scale
    np.fill_diagonal(gaps, 0.0)
    failed = gaps < -tolerance
    if not failed.any():
        return ConcavityCheck(n * (n - 1), 0, 0.0)
    worst = np.unravel_index(np.argmin(gaps), gaps.shape)[0]
    if x.shape[1] > MAX_NAMED_DIM:
        return ConcavityCheck(n * (n - 1), int(failed.sum()), float(-gaps.min()))
    curvature, upward = _upward_direction(target, x[worst], grad[worst])
    return ConcavityCheck(n * (n - 1), int(failed.sum()), float(-gaps.min()), curvature,
                          upward, x.shape[1])


def _upward_direction(target, x, grad):
    """Largest eigenvalue of ∇²log π at ``x`` and the labelled components of its vector.

    Components that carry at least 10 % of the vector's squared length are named, at most
    :data:`_NAMED`, largest first (d gradients for the Hessian).
    """
    evals, evecs = np.linalg.eigh(-hessian(target.logdensity_and_gradient, x, grad))
    top, vector = float(evals[-1]), evecs[:, -1]
    if not top > 0:
        return top, ()
    labels = target.structure.labels()
    order = [i for i in np.argsort(-np.abs(vector)) if vector[i] ** 2 >= 0.1][:_NAMED]
    return top, tuple((labels[i], float(vector[i])) for i in order)


def concavity_warning(check):
    """The warning text for a failed :class:`ConcavityCheck`."""
    where = ""
    if check.upward:
        named = ", ".join(f"{label} ({value:+.2f})" for label, value in check.upward)
        where = (f" At the worst of them the log density curves upward (second derivative "
                 f"{check.curvature:+.3g}, where a log-concave density has none) along a "
                 f"direction made mostly of {named}.")
    return (
        f"the target is not log-concave where the chains are: for {check.n_failed} of "
        f"{check.n_pairs} pairs of chain states (starts, end of warmup, end of sampling) "
        "one lies above the other's tangent plane, by up to "
        f"{check.worst_gap:.3g} in log density.{where} RM-ULMC's step size and accuracy "
        "rest on log-concavity, and a longer run will not restore them: reparameterize "
        "(a hierarchical scale in non-centered form, a heavy tail with a latent scale), "
        "or sample this model with NUTS."
    )
