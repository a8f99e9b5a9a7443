"""The compiled loop that advances one chain: kernels plus the user's oracle calls."""

import numpy as np

from .._jit import driver, kernel
from .coefficients import rmd_coefficients, ulmc_coefficients
from .step import (
    correlate,
    fresh_velocity,
    preconditioned,
    rmd_midpoint,
    rmd_update,
    standard_normals,
    ulmc_update,
)

__all__ = [
    "GRADS_PER_STEP",
    "RMD",
    "ULMC",
    "copy_into",
    "corrected_draw",
    "is_finite_state",
    "run_chain",
]

#: Method codes understood by :func:`run_chain`.
RMD = 0
ULMC = 1
#: Gradient evaluations per step of each method.
GRADS_PER_STEP = {RMD: 2, ULMC: 1}


@kernel
def copy_into(src, out):
    """``out[:] = src`` for 1-D arrays.

    An explicit loop: numba's slice assignment adds ~2 s to the compile time of every
    driver that uses it.
    """
    for i in range(src.shape[0]):
        out[i] = src[i]


@kernel
def is_finite_state(lp, x, g):
    """Whether a new state is usable: finite log density, position and gradient."""
    # one sum per vector catches any NaN or ±inf in it
    return np.isfinite(lp) and np.isfinite(np.sum(x)) and np.isfinite(np.sum(g))


@driver
def run_chain(logdensity_and_grad, args, method, h, gamma, precond, corrector, thin,
              x, v, g, lp, rng, draws_out, lp_out):
    """Advance one chain by ``draws_out.shape[0]`` draws of ``thin`` steps each.

    Parameters
    ----------
    logdensity_and_grad : numba dispatcher
        ``(x, grad_out, *args) -> float``.
    args : tuple
    method : int
        :data:`RMD` or :data:`ULMC`.
    h, gamma : float
        Step size and friction.
    precond : tuple (u, chol, dense)
        Inverse mass. Diagonal: ``u`` shape (d,), ``chol`` and ``dense`` shape (0, 0).
        Dense U = LLᵀ: ``u`` ones, ``chol`` = L and ``dense`` = U, shape (d, d).
    corrector : tuple (int, float) or None
        (steps, step size) of the exponential-Euler ULMC run, from a fresh velocity, that
        each stored draw is taken after (the paper's log-concave TV algorithm,
        :func:`corrected_draw`); the chain itself continues from its uncorrected state.
        None: no corrector.
    thin : int
    x, v, g : ndarray, shape (d,)
        State: position, velocity and ∇log π(x). Updated in place to the last finite state.
    lp : float
        log π(x).
    rng : numpy.random.Generator
    draws_out : ndarray, shape (n, d)
        Output positions, one row per draw.
    lp_out : ndarray, shape (n,)
        Output log densities.

    Returns
    -------
    n_done : int
        Draws written. Less than n when the chain diverged.
    lp : float
        log π at the returned state.
    grads_in_failed_draw : int
        Gradient evaluations spent on the draw that diverged (0 if none did).
    """
    u, chol, dense = precond
    is_dense = chol.shape[0] > 0
    d = x.shape[0]
    sigma = np.sqrt(2.0 * gamma * u)
    x_mid, g_mid, p_mid = np.empty(d), np.empty(d), np.empty(d)
    w2, w3 = np.empty(d), np.empty(d)
    # Double buffering: a step writes the new state into the spare arrays and they swap,
    # so a step that goes non-finite leaves the last finite state untouched. p is the
    # preconditioned gradient U·g (the same array as g for a diagonal mass).
    xa, va, ga = x.copy(), v.copy(), g.copy()
    xb, vb, gb = np.empty(d), np.empty(d), np.empty(d)
    pa = preconditioned(dense, ga, np.empty(d))
    pb = preconditioned(dense, gb, np.empty(d))
    c_ulmc = ulmc_coefficients(h, gamma)
    z = np.empty((d, 4 if method == RMD else 2))
    zc = np.empty_like(z)
    per_step = 2 if method == RMD else 1
    for k in range(draws_out.shape[0]):
        for s in range(thin):
            # per step: α (RMD), the normal block, L·z for a dense mass. Kernel calls are
            # spelled out: a helper kernel taking ~10 arrays costs ~170 ns per call in
            # reference counting (measured at d = 10), as much as the rest of the step.
            if method == RMD:
                c = rmd_coefficients(h, gamma, rng.random())
            standard_normals(rng, z)
            if is_dense:
                correlate(chol, z, zc)
            if method == RMD:
                rmd_midpoint(zc if is_dense else z, xa, va, pa, u, sigma, c, x_mid, w2, w3)
                logdensity_and_grad(x_mid, g_mid, *args)
                if is_dense:
                    preconditioned(dense, g_mid, p_mid)
                rmd_update(xa, va, p_mid if is_dense else g_mid, u, c, w2, w3, xb, vb)
            else:
                ulmc_update(zc if is_dense else z, xa, va, pa, u, sigma, c_ulmc, xb, vb)
            lp_new = logdensity_and_grad(xb, gb, *args)
            if not (np.isfinite(lp_new) and np.isfinite(np.sum(xb)) and np.isfinite(np.sum(gb))):
                copy_into(xa, x)
                copy_into(va, v)
                copy_into(ga, g)
                return k, lp, (s + 1) * per_step
            if is_dense:
                preconditioned(dense, gb, pb)
            lp = lp_new
            xa, xb = xb, xa
            va, vb = vb, va
            ga, gb = gb, ga
            pa, pb = pb, pa
        # ``corrector is None`` is settled when numba compiles (the argument's type), so
        # runs without a corrector do not compile its code
        if corrector is None:
            copy_into(xa, draws_out[k])
            lp_out[k] = lp
        else:
            failed, lp_out[k] = corrected_draw(logdensity_and_grad, args, corrector, gamma,
                                               precond, sigma, rng, xa, ga, lp, draws_out[k])
            if failed:
                copy_into(xa, x)
                copy_into(va, v)
                copy_into(ga, g)
                return k, lp, thin * per_step + failed
    copy_into(xa, x)
    copy_into(va, v)
    copy_into(ga, g)
    return draws_out.shape[0], lp, 0


@driver
def corrected_draw(logdensity_and_grad, args, corrector, gamma, precond, sigma, rng, x, g, lp,
                   draw_out):
    """The corrector of ``method="rmd-tv"``: a short ULMC run from (x, fresh velocity).

    Parameters
    ----------
    corrector : tuple (int, float)
        Steps and step size.
    gamma, precond, sigma, rng, logdensity_and_grad, args
        As in :func:`run_chain` (σ = √(2γu)).
    x, g : ndarray, shape (d,)
        The chain's position and ∇log π there (not modified).
    lp : float
    draw_out : ndarray, shape (d,)
        Receives the run's end point.

    Returns
    -------
    failed : int
        0, or the gradient evaluations spent when the run went non-finite.
    lp : float
        log π at the end point.
    """
    n_corr, h_corr = corrector
    u, chol, dense = precond
    d = x.shape[0]
    c_corr = ulmc_coefficients(h_corr, gamma)
    z2, z2c = np.empty((d, 2)), np.empty((d, 2))
    xc, vc, gc = x.copy(), np.empty(d), g.copy()
    xd, vd, gd = np.empty(d), np.empty(d), np.empty(d)
    pc = preconditioned(dense, gc, np.empty(d))
    pd = preconditioned(dense, gd, np.empty(d))
    fresh_velocity(rng, u, chol, np.empty((d, 1)), np.empty((d, 1)), vc)
    for j in range(n_corr):
        standard_normals(rng, z2)
        if chol.shape[0] > 0:
            correlate(chol, z2, z2c)
            ulmc_update(z2c, xc, vc, pc, u, sigma, c_corr, xd, vd)
        else:
            ulmc_update(z2, xc, vc, pc, u, sigma, c_corr, xd, vd)
        lp = logdensity_and_grad(xd, gd, *args)
        if not is_finite_state(lp, xd, gd):
            return j + 1, lp
        preconditioned(dense, gd, pd)
        xc, xd = xd, xc
        vc, vd = vd, vc
        gc, gd = gd, gc
        pc, pd = pd, pc
    copy_into(xc, draw_out)
    return 0, lp
