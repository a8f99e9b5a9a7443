"""Batch kernels of the diffusion corrector: the RM-ULMC kernels, one sample per row.

The corrector runs underdamped Langevin dynamics on ∇log p_t at a fixed noise level t,
with unit inverse mass (algorithms.md §1.2, CCL+23a convention): the same
:mod:`lcsample.integrator` kernels as the MCMC sampler, applied row by row.
"""

import numpy as np

from .._jit import kernel
from ..kernels.coefficients import rmd_coefficients, ulmc_coefficients
from ..kernels.step import rmd_midpoint, rmd_update, ulmc_update

__all__ = ["uld_step", "uld_rm_midpoint", "uld_rm_update"]


@kernel
def uld_step(Z, X, V, G, h, gamma, X_out, V_out):
    """Exponential-Euler ULMC step for every row (the paper's corrector step).

    Parameters
    ----------
    Z : ndarray, shape (n, d, 2)
        Standard normals, per sample.
    X, V, G : ndarray, shape (n, d)
        Positions, velocities and scores at X.
    h, gamma : float
    X_out, V_out : ndarray, shape (n, d)
    """
    d = X.shape[1]
    u = np.ones(d)
    sigma = np.full(d, np.sqrt(2.0 * gamma))
    c = ulmc_coefficients(h, gamma)
    for i in range(X.shape[0]):
        ulmc_update(Z[i], X[i], V[i], G[i], u, sigma, c, X_out[i], V_out[i])


@kernel
def uld_rm_midpoint(Z, alphas, X, V, G, h, gamma, X_mid, W2, W3):
    """First half of an RM-ULMC step for every row: the midpoints, at fractions ``alphas``.

    Parameters
    ----------
    Z : ndarray, shape (n, d, 4)
    alphas : ndarray, shape (n,)
        Each sample's midpoint fraction α.
    X, V, G : ndarray, shape (n, d)
    h, gamma : float
    X_mid, W2, W3 : ndarray, shape (n, d)
        Outputs (W2, W3: the noise terms :func:`uld_rm_update` consumes).
    """
    d = X.shape[1]
    u = np.ones(d)
    sigma = np.full(d, np.sqrt(2.0 * gamma))
    for i in range(X.shape[0]):
        c = rmd_coefficients(h, gamma, alphas[i])
        rmd_midpoint(Z[i], X[i], V[i], G[i], u, sigma, c, X_mid[i], W2[i], W3[i])


@kernel
def uld_rm_update(alphas, X, V, G_mid, h, gamma, W2, W3, X_out, V_out):
    """Second half of an RM-ULMC step for every row, from the scores at the midpoints."""
    d = X.shape[1]
    u = np.ones(d)
    for i in range(X.shape[0]):
        c = rmd_coefficients(h, gamma, alphas[i])
        rmd_update(X[i], V[i], G_mid[i], u, c, W2[i], W3[i], X_out[i], V_out[i])
