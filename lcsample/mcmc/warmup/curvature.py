"""Curvature of the target: Hessians at the mode and extreme eigenvalues anywhere.

The warmup's geometry: the curvature at the mode gives the first inverse mass (the
Laplace approximation's covariance is its inverse), and the extreme curvatures of the
preconditioned target set the friction and the step (:mod:`lcsample.mcmc.warmup.loop`).
All by finite differences of the gradient.
"""

import numpy as np

__all__ = ["diagonal_curvature", "extreme_curvatures", "hessian", "positive_floor", "ritz_pairs"]

# Probes of the Hessian diagonal beyond which Rademacher probing replaces unit vectors.
_MAX_DIAGONAL_PROBES = 32
# Relative finite-difference step for Hessian columns.
_FD_STEP = 1e-5


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
    hess = np.array([_hessian_row(logdensity_and_gradient, x, g, i) for i in range(x.shape[0])])
    return 0.5 * (hess + hess.T)


def _hessian_row(logdensity_and_gradient, x, g, i):
    """Row i of the Hessian of -log π at ``x``: a forward difference along x_i (one gradient)."""
    eps = _FD_STEP * max(1.0, abs(x[i]))
    step = x.copy()
    step[i] += eps
    return -(logdensity_and_gradient(step)[1] - g) / eps


def diagonal_curvature(logdensity_and_gradient, x, g, rng):
    """Diagonal of H = -∇²log π at ``x``, clipped to be positive.

    Exact up to finite differences (unit vectors) for d ≤ 32; otherwise the Hutchinson
    estimate mean(z ⊙ Hz) over 32 Rademacher probes z, whose error is the off-diagonal
    mass of H — an initial value only, which the mass windows then replace — with the
    entries it finds non-positive taken exactly (one gradient each).

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
    diag = total / _MAX_DIAGONAL_PROBES
    # A non-positive estimate may be the probes' noise (strong off-diagonal curvature), not
    # a flat direction: one exact column each tells them apart, as the warning needs.
    unsure = np.flatnonzero(diag <= 0)
    for i in unsure:
        diag[i] = _hessian_row(logdensity_and_gradient, x, g, i)[i]
    return np.maximum(diag, 0.0), _MAX_DIAGONAL_PROBES + unsure.size


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


def extreme_curvatures(logdensity_and_gradient, x, mass, rng, n_iter=20, eps=1e-4):
    """Estimate the extreme eigenvalues of Rᵀ H R, H = -∇²log π(x), U = RRᵀ the inverse mass.

    Lanczos with full reorthogonalization on forward-difference Hessian-vector products,
    one gradient evaluation each, from the gradient at ``x`` evaluated once here (a chain's
    stored gradient may come from a nearby point: ``rmd-picard`` at a positive tolerance).
    The truncation error, O(eps) relative to the curvature, is far below what the step
    size needs; a central difference would double the cost of every retune for O(eps²).

    Parameters
    ----------
    logdensity_and_gradient : callable
        ``x -> (lp, grad)``.
    x : ndarray, shape (d,)
    mass : InverseMass
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
    ritz, _, _, n_grads = ritz_pairs(logdensity_and_gradient, x, mass, rng, n_iter, eps,
                                     EXTREME_TOLERANCE)
    return float(ritz[0]), float(ritz[-1]), n_grads


#: Lanczos for the extreme curvatures stops once both extreme Ritz pairs have residuals
#: below this fraction of their values: the Ritz value is then within that fraction (and
#: usually its square) of an eigenvalue, and h ∝ λ_max^{-1/2} within half of it.
EXTREME_TOLERANCE = 0.02


def ritz_pairs(logdensity_and_gradient, x, mass, rng, n_iter=20, eps=1e-4, tol=None):
    """Lanczos on Rᵀ H R (as :func:`extreme_curvatures`): its Ritz values, vectors, residuals.

    ``tol``: stop early once the smallest and largest Ritz pairs' residuals are below
    ``tol`` times their values (None: run all ``n_iter`` iterations).

    Returns
    -------
    values : ndarray, shape (k,)
        Ascending; k ≤ ``n_iter`` (fewer when the Krylov space closes).
    vectors : ndarray, shape (d, k)
        Orthonormal Ritz vectors, in R-whitened coordinates.
    residuals : ndarray, shape (k,)
        ‖RᵀHR y − θ y‖ of each pair, from the last Lanczos coefficient (up to the
        finite-difference error): a pair is converged when it is small against θ's gaps.
    n_grads : int
    """
    d = x.shape[0]
    k = min(n_iter, d)
    basis = np.zeros((k, d))
    alphas, betas = np.zeros(k), np.zeros(k)
    q = rng.standard_normal(d)
    q /= np.linalg.norm(q)
    g = logdensity_and_gradient(x)[1]
    n_grads = 1
    beta = 0.0
    for j in range(k):
        basis[j] = q
        g_step = logdensity_and_gradient(x + eps * mass.root(q))[1]
        n_grads += 1
        w = -mass.root_transpose(g_step - g) / eps
        alphas[j] = q @ w
        w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = np.linalg.norm(w)
        if (j + 1 == k or beta < 1e-10 * max(abs(alphas[j]), 1e-300)
                or (tol is not None and _extremes_converged(alphas, betas, j + 1, beta, tol))):
            k = j + 1
            break
        betas[j] = beta
        q = w / beta
    values, coords = _tridiagonal_eigh(alphas, betas, k)
    return values, basis[:k].T @ coords, beta * np.abs(coords[-1]), n_grads


def _tridiagonal_eigh(alphas, betas, k):
    """Eigenpairs of the k × k Lanczos tridiagonal matrix."""
    tri = np.diag(alphas[:k]) + np.diag(betas[: k - 1], 1) + np.diag(betas[: k - 1], -1)
    return np.linalg.eigh(tri)


def _extremes_converged(alphas, betas, k, beta, tol):
    """Whether the extreme Ritz pairs after k iterations (next coefficient ``beta``) have
    residuals β|s_k| below ``tol`` times their values; never before 3 iterations."""
    if k < 3:
        return False
    values, coords = _tridiagonal_eigh(alphas, betas, k)
    residual = beta * np.abs(coords[-1, [0, -1]])
    return bool(np.all(residual <= tol * np.abs(values[[0, -1]])))
