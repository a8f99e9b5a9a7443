"""Bayesian linear regression with known noise and a Gaussian prior: an exact Gaussian posterior."""

import numpy as np

from .._jit import kernel
from ._data import design_and_response, positive_scale, weights_structure
from ._gradient import store_gradient
from .base import Target

__all__ = ["LinearRegression"]


@kernel
def _linear_logdensity_and_grad(w, grad_out, X, Xt, y, noise_precision, prior_precision, log_norm):
    residual = y - X @ w
    store_gradient(grad_out, Xt @ residual, noise_precision, w, prior_precision)
    return log_norm - 0.5 * (noise_precision * (residual @ residual) + prior_precision * (w @ w))


class LinearRegression(Target):
    """Posterior of linear regression, y ~ N(X w, noise_scale² I), w ~ N(0, prior_scale² I).

    The noise scale is known, so the posterior is exactly Gaussian with precision
    P = XᵀX/noise_scale² + I/prior_scale² and mean P⁻¹Xᵀy/noise_scale². The log density is
    the normalized posterior log density, evaluated through X and Xᵀ in O(nd).

    Parameters
    ----------
    X : array_like, shape (n, d)
        Design matrix (add a column of ones for an intercept).
    y : array_like, shape (n,)
        Responses.
    noise_scale : float, optional
        Standard deviation σ of the observation noise.
    prior_scale : float, optional
        Standard deviation τ of the Gaussian prior on each weight.

    Attributes
    ----------
    mean : ndarray, shape (d,)
        Exact posterior mean.
    cov : ndarray, shape (d, d)
        Exact posterior covariance P⁻¹.
    precision : ndarray, shape (d, d)
        Posterior precision P.
    smoothness_bound : float
        L = λ_max(P), exact: the Hessian of -log π is P everywhere.
    strong_convexity_bound : float
        m = λ_min(P), exact.
    """

    log_concave = True
    gradient_tested = True

    def __init__(self, X, y, noise_scale=1.0, prior_scale=1.0):
        X_given = X  # its column names, if any, label the weights
        X, y = design_and_response(X, y)
        noise_scale = positive_scale(noise_scale, "noise_scale")
        prior_scale = positive_scale(prior_scale, "prior_scale")
        noise_precision = 1.0 / noise_scale**2
        prior_precision = 1.0 / prior_scale**2
        d = X.shape[1]
        precision = noise_precision * (X.T @ X) + prior_precision * np.eye(d)
        # One eigendecomposition gives the bounds, the log-determinant and a covariance
        # that is symmetric positive definite by construction.
        eigenvalues, eigenvectors = np.linalg.eigh(precision)
        cov = (eigenvectors / eigenvalues) @ eigenvectors.T
        cov = 0.5 * (cov + cov.T)
        mean = cov @ (noise_precision * (X.T @ y))
        # log π(w) = -½(w-μ)ᵀP(w-μ) + ½log|P| - (d/2)log 2π; the kernel's quadratic form
        # ½σ⁻²‖y-Xw‖² + ½τ⁻²‖w‖² exceeds ½(w-μ)ᵀP(w-μ) by its value at w = μ.
        residual = y - X @ mean
        minimum = 0.5 * (noise_precision * (residual @ residual)
                         + prior_precision * (mean @ mean))
        log_norm = minimum + 0.5 * np.sum(np.log(eigenvalues)) - 0.5 * d * np.log(2.0 * np.pi)
        self.X, self.y = X, y
        self.noise_scale, self.prior_scale = noise_scale, prior_scale
        self.mean, self.cov, self.precision = mean, cov, precision
        self.smoothness_bound = float(eigenvalues[-1])
        self.strong_convexity_bound = float(eigenvalues[0])
        super().__init__(
            _linear_logdensity_and_grad,
            d,
            args=(X, np.ascontiguousarray(X.T), y, noise_precision, prior_precision,
                  float(log_norm)),
            variables=weights_structure(X_given),
        )
