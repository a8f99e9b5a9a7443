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

from ...kernels.exact import stationary_covariance

__all__ = [
    "STIFF_VARIANCE_BIAS",
    "energy_error",
    "energy_target",
    "extreme_curvatures",
    "step_size_for_bias",
    "window_schedule",
]

#: Relative error of the stationary variance allowed along the stiffest direction.
STIFF_VARIANCE_BIAS = 0.01


def window_schedule(tune, windows=True):
    """Split ``tune`` steps into segments, retuning after each.

    Parameters
    ----------
    tune : int
    windows : bool
        Whether segments are adaptation windows (Stan's schedule) or one plain segment.

    Returns
    -------
    list of (int, bool)
        (length, ends_a_window) for consecutive segments summing to ``tune``.
    """
    if tune == 0:
        return []
    if not windows or tune < 20:
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


def extreme_curvatures(logdensity_and_gradient, x, mass, rng, n_iter=20, eps=1e-4):
    """Estimate the extreme eigenvalues of Rᵀ H R, H = -∇²log π(x), U = RRᵀ the inverse mass.

    Lanczos with full reorthogonalization on central-difference Hessian-vector products.

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
    d = x.shape[0]
    k = min(n_iter, d)
    basis = np.zeros((k, d))
    alphas, betas = np.zeros(k), np.zeros(k)
    q = rng.standard_normal(d)
    q /= np.linalg.norm(q)
    n_grads = 0
    for j in range(k):
        basis[j] = q
        step = eps * mass.root(q)
        g_plus = logdensity_and_gradient(x + step)[1]
        g_minus = logdensity_and_gradient(x - step)[1]
        n_grads += 2
        w = -mass.root_transpose(g_plus - g_minus) / (2.0 * eps)
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


def energy_error(logdensity_and_gradient, x, mass, h, method, rng, n_steps):
    """Energy changes of noise-free steps from ``x``: the adaptive route's tuning signal.

    From x and a fresh velocity, ``n_steps`` steps of the method's integrator with the
    friction and noise switched off (γ → 0), each step's change of
    H = -log π(x) + ½vᵀU⁻¹v recorded. The RM step takes its midpoint at α = ½ here: with a
    random α, shared by all coordinates, Var ΔH would grow like d² instead of d, and a
    per-dimension target (MCLMC's ``desired_energy_var``) would depend on d.

    Parameters
    ----------
    logdensity_and_gradient : callable
    x : ndarray, shape (d,)
    mass : InverseMass
    h : float
    method : {"rmd", "ulmc"}
    rng : numpy.random.Generator
        For the velocity.
    n_steps : int

    Returns
    -------
    deltas : ndarray, shape (n_steps,)
        ΔH per step (inf once a step leaves the support).
    n_grads : int
    """
    lp, g = logdensity_and_gradient(x)
    w = rng.standard_normal(x.shape[0])  # whitened velocity: v = U^{1/2} w
    deltas = np.full(n_steps, np.inf)
    n_grads = 1
    for k in range(n_steps):
        kick = mass.root_transpose(g)
        if method == "rmd":
            a = 0.5 * h
            g_mid = logdensity_and_gradient(x + a * mass.root(w) + 0.5 * a * a * mass.root(kick))[1]
            kick = mass.root_transpose(g_mid)
            x_new = x + h * mass.root(w) + h * (h - a) * mass.root(kick)
            n_grads += 1
        else:
            x_new = x + h * mass.root(w) + 0.5 * h * h * mass.root(kick)
        w_new = w + h * kick
        lp_new, g = logdensity_and_gradient(x_new)
        n_grads += 1
        deltas[k] = (lp - lp_new) + 0.5 * (w_new @ w_new - w @ w)
        if not np.isfinite(deltas[k]):
            deltas[k:] = np.inf
            break
        x, w, lp = x_new, w_new, lp_new
    return deltas, n_grads


def energy_target(method, tol=STIFF_VARIANCE_BIAS):
    """Energy-error target at which both tuning routes agree on a standard Gaussian.

    On N(0, 1) with critical damping (γ = 2), the theory route's step is
    h* = :func:`step_size_for_bias` (1, 2, method, tol). This returns Var ΔH of one
    noise-free step (:func:`energy_error`) at h*, per dimension and exactly: the step maps
    z = (x, w) ~ N(0, I) linearly, z' = Mz, so ΔH = ½zᵀAz with A = MᵀM - I and
    Var ΔH = tr(A²)/2.

    Parameters
    ----------
    method : {"rmd", "ulmc"}
    tol : float

    Returns
    -------
    float
    """
    h = step_size_for_bias(1.0, 2.0, method, tol)
    if method == "rmd":
        a = 0.5 * h
        mid = np.array([1.0 - 0.5 * a * a, a])  # x_mid as a row acting on (x, w)
        m = np.array([[1.0, h], [0.0, 1.0]]) - np.outer([h * (h - a), h], mid)
    else:
        m = np.array([[1.0 - 0.5 * h * h, h], [-h, 1.0]])
    A = m.T @ m - np.eye(2)
    return float(0.5 * np.trace(A @ A))
