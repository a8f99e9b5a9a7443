"""The compiled loop that advances one chain: kernels plus the user's oracle calls."""

import numpy as np

from ._jit import driver, kernel
from .coefficients import rmd_coefficients, ulmc_coefficients
from .integrator import rmd_midpoint, rmd_update, standard_normals, ulmc_update

__all__ = ["RMD", "ULMC", "GRADS_PER_STEP", "run_chain"]

#: Method codes understood by :func:`run_chain`.
RMD = 0
ULMC = 1
#: Gradient evaluations per step of each method.
GRADS_PER_STEP = {RMD: 2, ULMC: 1}


@kernel
def _copy(src, out):
    # An explicit loop: numba's slice assignment ``out[:] = src`` adds ~2 s to the
    # compile time of every driver that uses it.
    for i in range(src.shape[0]):
        out[i] = src[i]


@driver
def run_chain(logdensity_and_grad, args, method, h, gamma, u, thin, x, v, g, lp, rng,
              draws_out, lp_out):
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
    u : ndarray, shape (d,)
        Diagonal inverse mass.
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
    d = x.shape[0]
    sigma = np.sqrt(2.0 * gamma * u)
    x_mid = np.empty(d)
    g_mid = np.empty(d)
    w2 = np.empty(d)
    w3 = np.empty(d)
    # Double buffering: a step writes the new state into the spare arrays and they swap,
    # so a step that goes non-finite leaves the last finite state untouched.
    xa, va, ga = x.copy(), v.copy(), g.copy()
    xb, vb, gb = np.empty(d), np.empty(d), np.empty(d)
    c_ulmc = ulmc_coefficients(h, gamma)
    z = np.empty((d, 4 if method == RMD else 2))
    for k in range(draws_out.shape[0]):
        for s in range(thin):
            if method == RMD:
                c = rmd_coefficients(h, gamma, rng.random())
                standard_normals(rng, z)
                rmd_midpoint(z, xa, va, ga, u, sigma, c, x_mid, w2, w3)
                logdensity_and_grad(x_mid, g_mid, *args)
                rmd_update(xa, va, g_mid, u, c, w2, w3, xb, vb)
            else:
                standard_normals(rng, z)
                ulmc_update(z, xa, va, ga, u, sigma, c_ulmc, xb, vb)
            lp_new = logdensity_and_grad(xb, gb, *args)
            # one sum catches any NaN or ±inf in the gradient
            if not (np.isfinite(lp_new) and np.isfinite(np.sum(gb))):
                _copy(xa, x)
                _copy(va, v)
                _copy(ga, g)
                grads = (s + 1) * (2 if method == RMD else 1)
                return k, lp, grads
            lp = lp_new
            xa, xb = xb, xa
            va, vb = vb, va
            ga, gb = gb, ga
        _copy(xa, draws_out[k])
        lp_out[k] = lp
    _copy(xa, x)
    _copy(va, v)
    _copy(ga, g)
    return draws_out.shape[0], lp, 0
