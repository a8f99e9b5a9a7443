"""Exact stationary moments of the discretized samplers on a Gaussian target.

On π ∝ exp(-m x²/2) both steps are affine in (x, v) given the step's randomness:
(x', v') = M(α)(x, v) + B(α) W, with W Gaussian and independent of the state. The
stationary covariance Σ of the chain solves Σ = E_α[M Σ Mᵀ] + E_α[B Cov(W) Bᵀ], a 2×2
discrete Lyapunov equation averaged over α (Gauss–Legendre quadrature; the integrand is
smooth in α). These are the oracles the tests compare the samplers with, and they give
the discretization bias of a step size and friction on a curvature m.
"""

import numpy as np

from .._jit import kernel
from .coefficients import pair_covariance, phi, psi

__all__ = ["corrected_variance", "stationary_covariance"]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
_ALPHAS, _WEIGHTS = 0.5 * (_NODES + 1.0), 0.5 * _WEIGHTS


@kernel
def _rmd_averaged_maps(m, h, gamma, u, alphas, weights):
    """E_α[M ⊗ M] (4×4) and E_α[B Cov(W) Bᵀ] (2×2) of the RM step on curvature m."""
    MM = np.zeros((4, 4))
    Q = np.zeros((2, 2))
    sigma2 = 2.0 * gamma * u
    M = np.empty((2, 2))
    B = np.empty((2, 4))
    P = np.zeros((4, 4))
    for k in range(alphas.shape[0]):
        a = alphas[k] * h
        b = h - a
        c = 1.0 - u * m * psi(a, gamma)
        phi_b = phi(b, gamma)
        exp_b = np.exp(-gamma * b)
        hb, eb = h * phi_b, h * exp_b
        M[0, 0] = 1.0 - u * hb * m * c
        M[0, 1] = phi(h, gamma) - u * hb * m * phi(a, gamma)
        M[1, 0] = -u * eb * m * c
        M[1, 1] = np.exp(-gamma * h) - u * eb * m * phi(a, gamma)
        for i in range(2):
            for j in range(2):
                for p in range(2):
                    for q in range(2):
                        MM[2 * i + p, 2 * j + q] += weights[k] * M[i, j] * M[p, q]
        # (x', v') noise = σ·B·(I1, A1, I2, A2): W1 = A1 enters through x_mid,
        # W2 = A1 + φ(h-a) I1 + A2, W3 = e^{-γ(h-a)} I1 + I2.
        B[0, 0] = phi_b
        B[0, 1] = 1.0 - u * hb * m
        B[0, 2] = 0.0
        B[0, 3] = 1.0
        B[1, 0] = exp_b
        B[1, 1] = -u * eb * m
        B[1, 2] = 1.0
        B[1, 3] = 0.0
        P[0, 0], P[0, 1], P[1, 1] = pair_covariance(a, gamma)
        P[2, 2], P[2, 3], P[3, 3] = pair_covariance(b, gamma)
        P[1, 0], P[3, 2] = P[0, 1], P[2, 3]
        Q += weights[k] * sigma2 * (B @ P @ B.T)
    return MM, Q


def _ulmc_maps(m, h, gamma, u):
    ph = phi(h, gamma)
    M = np.array([[1.0 - u * m * psi(h, gamma), ph], [-u * m * ph, np.exp(-gamma * h)]])
    var_i, cov_ia, var_a = pair_covariance(h, gamma)
    # (x, v) noise is σ·(A, I)
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
    method : {"rmd", "ulmc"}

    Returns
    -------
    ndarray, shape (2, 2)
        Covariance of (x, v) under the chain's stationary law.

    Raises
    ------
    ValueError
        If the chain is unstable (no stationary law) for these parameters.
    """
    m, h, gamma, u = float(curvature), float(step_size), float(friction), float(inverse_mass)
    if method == "rmd":
        MM, Q = _rmd_averaged_maps(m, h, gamma, u, _ALPHAS, _WEIGHTS)
    elif method == "ulmc":
        M, Q = _ulmc_maps(m, h, gamma, u)
        MM = np.kron(M, M)
    else:
        raise ValueError(f"method must be 'rmd' or 'ulmc', got {method!r}")
    if np.max(np.abs(np.linalg.eigvals(MM))) >= 1.0:
        raise ValueError("the chain has no stationary law for these parameters (unstable)")
    sigma = np.linalg.solve(np.eye(4) - MM, Q.reshape(-1)).reshape(2, 2)
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
