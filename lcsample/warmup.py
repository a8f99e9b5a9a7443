"""A simple warmup for RM-ULMC: windowed diagonal mass, friction and step from curvature.

An unadjusted sampler has no acceptance rate to tune on. Instead, at the start and after
each mass-matrix window, the extreme curvatures λ_min, λ_max of the preconditioned target
(Hessian of -log π scaled by the inverse mass) are estimated by Lanczos on
finite-difference Hessian-vector products at the chain's position. Then

* friction γ = 2√λ_min, critical damping of the softest direction (fast mixing there);
* step h = the largest step whose exact stationary variance error on a Gaussian of
  curvature λ_max, with this γ, is ``stiff_variance_bias`` (1 % by default), from
  :func:`lcsample.exact.stationary_covariance`. The bias of an unadjusted sampler is
  largest along the stiffest direction, so this bounds it where averages do not look.

The mass windows follow Stan's schedule (initial buffer, doubling windows, terminal
buffer). A fuller tuning is future work; this one makes the built-in targets sample well.
"""

import numpy as np

from .exact import stationary_covariance

__all__ = ["window_schedule", "extreme_curvatures", "step_size_for_bias", "STIFF_VARIANCE_BIAS"]

#: Relative error of the stationary variance allowed along the stiffest direction.
STIFF_VARIANCE_BIAS = 0.01


def window_schedule(tune, adapt_mass=True):
    """Split ``tune`` steps into segments, retuning after each.

    Parameters
    ----------
    tune : int
    adapt_mass : bool
        Whether segments are mass-matrix windows (Stan's schedule) or one plain segment.

    Returns
    -------
    list of (int, bool)
        (length, ends_a_mass_window) for consecutive segments summing to ``tune``.
    """
    if tune == 0:
        return []
    if not adapt_mass or tune < 20:
        return [(tune, False)]
    if tune < 150:
        init, term = int(0.15 * tune), int(0.1 * tune)
        base = tune - init - term
    else:
        init, term, base = 75, 50, 25
    segments = [(init, False)] if init else []
    start, end = init, tune - term
    window = base
    while start < end:
        # a window that would leave less than twice its successor is merged into it
        if start + 3 * window > end:
            window = end - start
        segments.append((window, True))
        start += window
        window *= 2
    if term:
        segments.append((term, False))
    return segments


def extreme_curvatures(logdensity_and_gradient, x, u, rng, n_iter=20, eps=1e-4):
    """Estimate the extreme eigenvalues of U^{1/2} H U^{1/2}, H = -∇²log π(x).

    Lanczos with full reorthogonalization on central-difference Hessian-vector products.

    Parameters
    ----------
    logdensity_and_gradient : callable
        ``x -> (lp, grad)``.
    x : ndarray, shape (d,)
    u : ndarray, shape (d,)
        Diagonal inverse mass.
    rng : numpy.random.Generator
        For the start vector.
    n_iter : int
    eps : float
        Finite-difference step in preconditioned coordinates.

    Returns
    -------
    lam_min, lam_max : float
    n_grads : int
        Gradient evaluations used.
    """
    d = x.shape[0]
    k = min(n_iter, d)
    root_u = np.sqrt(u)
    basis = np.zeros((k, d))
    alphas, betas = np.zeros(k), np.zeros(k)
    q = rng.standard_normal(d)
    q /= np.linalg.norm(q)
    n_grads = 0
    for j in range(k):
        basis[j] = q
        step = eps * root_u * q
        g_plus = logdensity_and_gradient(x + step)[1]
        g_minus = logdensity_and_gradient(x - step)[1]
        n_grads += 2
        w = -root_u * (g_plus - g_minus) / (2.0 * eps)
        alphas[j] = q @ w
        w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = np.linalg.norm(w)
        if j + 1 == k or beta < 1e-10 * max(abs(alphas[j]), 1e-300):
            k = j + 1
            break
        betas[j] = beta
        q = w / beta
    tri = np.diag(alphas[:k]) + np.diag(betas[: k - 1], 1) + np.diag(betas[: k - 1], -1)
    ritz = np.linalg.eigvalsh(tri)
    return float(ritz[0]), float(ritz[-1]), n_grads


def step_size_for_bias(curvature, friction, method="rmd", tol=STIFF_VARIANCE_BIAS):
    """Largest step whose exact stationary variance error at ``curvature`` is ``tol``.

    Parameters
    ----------
    curvature : float
        λ_max of the preconditioned target (unit inverse mass).
    friction : float
    method : {"rmd", "ulmc"}
    tol : float
        Allowed relative error of Var x.

    Returns
    -------
    float
    """

    def excess(h):
        try:
            return stationary_covariance(curvature, h, friction, 1.0, method)[0, 0] * curvature - 1.0 - tol
        except ValueError:  # unstable: far too large
            return np.inf

    # bias is increasing in h: bracket the root on a log scale, then bisect in log h
    lo = hi = 1.0 / np.sqrt(curvature)
    while excess(hi) < 0.0:
        hi *= 2.0
    while excess(lo) > 0.0:
        lo /= 2.0
    while hi / lo > 1.0 + 1e-3:
        mid = np.sqrt(lo * hi)
        if excess(mid) > 0.0:
            hi = mid
        else:
            lo = mid
    return float(lo)
