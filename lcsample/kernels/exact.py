"""Exact stationary moments of the discretized samplers on a Gaussian target.

On π ∝ exp(-m x²/2) every step is affine in its state given the step's randomness:
z' = M(α)z + B(α) W, with W Gaussian and independent of the state, z = (x, v), or
(x, v, y) for the lagged randomized midpoint, whose state carries the last midpoint y.
The stationary covariance Σ of the chain solves Σ = E_α[M Σ Mᵀ] + E_α[B Cov(W) Bᵀ], a
discrete Lyapunov equation averaged over α (Gauss–Legendre quadrature; the integrand is
smooth in α). These are the oracles the tests compare the samplers with, and they give
the discretization bias of a step size and friction on a curvature m.
"""

import numpy as np

from .._jit import kernel, precompiled
from .coefficients import noise_mixing, pair_covariance, step_coefficients

__all__ = ["corrected_variance", "stationary_covariance"]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
_ALPHAS, _WEIGHTS = 0.5 * (_NODES + 1.0), 0.5 * _WEIGHTS


@kernel
def _pair_block(a, b, gamma):
    """Covariance (4×4) of (I1, A1, I2, A2): the Brownian pairs on [0, a] and [a, a + b]."""
    P = np.zeros((4, 4))
    P[0, 0], P[0, 1], P[1, 1] = pair_covariance(a, gamma)
    P[2, 2], P[2, 3], P[3, 3] = pair_covariance(b, gamma)
    P[1, 0], P[3, 2] = P[0, 1], P[2, 3]
    return P


@precompiled
@kernel
def _rmd_averaged_maps(m, h, gamma, u, alphas, weights, lagged):
    """E_α[M ⊗ M] and E_α[B Cov(W) Bᵀ] of the RM step on curvature m.

    The state is (x, v), or (x, v, y) for the lagged step, y being the last midpoint,
    where that step's gradient -m·y was taken. With g = -m·x (or -m·y lagged),
    x_mid = x + φ(a)v + u·ψ(a)·g + σW1 and the update of
    :func:`lcsample.kernels.step.complete`, the step's noise is σ(W2 - u·m·hφ(h-a)·W1,
    W3 - u·m·he^{-γ(h-a)}·W1 [, W1 for y]), with W from :func:`noise_mixing`.

    Returns
    -------
    MM : ndarray, shape (n², n²)
    Q : ndarray, shape (n, n)
        n = 2, or 3 when ``lagged``.
    """
    n = 3 if lagged else 2
    MM = np.zeros((n * n, n * n))
    Q = np.zeros((n, n))
    sigma2 = 2.0 * gamma * u
    M = np.zeros((n, n))
    mid = np.zeros(n)  # x_mid as a row acting on the state
    B = np.empty((n, 4))
    for k in range(alphas.shape[0]):
        c = step_coefficients(h, gamma, alphas[k])
        mid[0], mid[1] = 1.0, c.phi_a
        if lagged:
            mid[2] = -u * m * c.psi_a
        else:
            mid[0] -= u * m * c.psi_a
        for j in range(n):
            M[0, j] = -u * c.h_phi_b * m * mid[j]
            M[1, j] = -u * c.h_exp_b * m * mid[j]
            if lagged:
                M[2, j] = mid[j]
        M[0, 0] += 1.0
        M[0, 1] += c.phi_h
        M[1, 1] += c.exp_h
        for i in range(n):
            for j in range(n):
                for p in range(n):
                    for q in range(n):
                        MM[n * i + p, n * j + q] += weights[k] * M[i, j] * M[p, q]
        mix = noise_mixing(c)
        for p in range(4):
            B[0, p] = mix[1, p] - u * m * c.h_phi_b * mix[0, p]
            B[1, p] = mix[2, p] - u * m * c.h_exp_b * mix[0, p]
            if lagged:
                B[2, p] = mix[0, p]
        a = alphas[k] * h
        _add_congruence(weights[k] * sigma2, B, _pair_block(a, h - a, gamma), Q)
    return MM, Q


@kernel
def _add_congruence(scale, B, P, out):
    """out += scale · B P Bᵀ, written out: numba's matrix product and slice assignment
    would add ~3 s to the first compile of every run on an empty cache."""
    for i in range(B.shape[0]):
        for j in range(B.shape[0]):
            acc = 0.0
            for p in range(B.shape[1]):
                for q in range(B.shape[1]):
                    acc += B[i, p] * P[p, q] * B[j, q]
            out[i, j] += scale * acc


def _ulmc_maps(m, h, gamma, u):
    """M (2×2) and the noise covariance Q (2×2) of the exponential-Euler step (α = 1)."""
    c = step_coefficients(h, gamma, 1.0)
    M = np.array([[1.0 - u * m * c.psi_a, c.phi_a], [-u * m * c.phi_a, c.exp_h]])
    var_i, cov_ia, var_a = pair_covariance(h, gamma)
    # (x, v) noise is σ·(A, I) of the pair over the whole step
    Q = 2.0 * gamma * u * np.array([[var_a, cov_ia], [cov_ia, var_i]])
    return M, Q


def stationary_covariance(curvature, step_size, friction, inverse_mass=1.0, method="rmd"):
    """Exact stationary covariance of (x, v) for one coordinate of a Gaussian target.

    Parameters
    ----------
    curvature : float
        m in π ∝ exp(-m x²/2); the exact Var x is 1/m.
    step_size, friction, inverse_mass : float
        h, γ and u of the sampler; the exact Var v is u.
    method : {"rmd", "ulmc", "rmd-lagged"}

    Returns
    -------
    ndarray, shape (2, 2)
        Covariance of (x, v) under the chain's stationary law (for ``"rmd-lagged"``, the
        law of the step's end point, where its draws are taken).

    Raises
    ------
    ValueError
        If the chain is unstable (no stationary law) for these parameters.
    """
    m, h, gamma, u = float(curvature), float(step_size), float(friction), float(inverse_mass)
    if method in ("rmd", "rmd-lagged"):
        MM, Q = _rmd_averaged_maps(m, h, gamma, u, _ALPHAS, _WEIGHTS, method == "rmd-lagged")
    elif method == "ulmc":
        M, Q = _ulmc_maps(m, h, gamma, u)
        MM = np.kron(M, M)
    else:
        raise ValueError(f"method must be 'rmd', 'ulmc' or 'rmd-lagged', got {method!r}")
    if np.max(np.abs(np.linalg.eigvals(MM))) >= 1.0:
        raise ValueError("the chain has no stationary law for these parameters (unstable)")
    n = Q.shape[0]
    sigma = np.linalg.solve(np.eye(n * n) - MM, Q.reshape(-1)).reshape(n, n)[:2, :2]
    return 0.5 * (sigma + sigma.T)


def corrected_variance(curvature, step_size, friction, corrector_steps, corrector_step_size,
                       inverse_mass=1.0):
    """Exact Var x of a ``method="rmd-tv"`` draw on one coordinate of a Gaussian target.

    The draw is x_M of an exponential-Euler ULMC run of ``corrector_steps`` steps started
    from the RM chain's stationary x and a fresh velocity v ~ N(0, u):
    S_{k+1} = M S_k Mᵀ + Q from S_0 = diag(Var_RM x, u).

    Parameters
    ----------
    curvature, step_size, friction, inverse_mass : float
        As in :func:`stationary_covariance` (the RM chain's parameters).
    corrector_steps : int
    corrector_step_size : float
        The corrector runs with the chain's friction and inverse mass.

    Returns
    -------
    float
    """
    m, u = float(curvature), float(inverse_mass)
    var_x = stationary_covariance(m, step_size, friction, u, "rmd")[0, 0]
    M, Q = _ulmc_maps(m, float(corrector_step_size), float(friction), u)
    S = np.diag([var_x, u])
    for _ in range(int(corrector_steps)):
        S = M @ S @ M.T + Q
    return float(S[0, 0])
