"""Bayesian logistic regression with a Gaussian prior."""

import numpy as np

from .._jit import kernel
from ._data import design_and_response, positive_scale, weights_structure
from ._gradient import store_gradient
from .base import Target

__all__ = ["LogisticRegression"]


@kernel
def _logistic_logdensity_and_grad(w, grad_out, X, Xt, y, prior_precision):
    eta = X @ w
    residual = np.empty_like(eta)
    lp = 0.0
    for i in range(eta.shape[0]):
        e = eta[i]
        # log(1 + e^η) without overflow, and σ(η) from the same exponential
        if e > 0.0:
            t = np.exp(-e)
            lp += y[i] * e - e - np.log1p(t)
            residual[i] = y[i] - 1.0 / (1.0 + t)
        else:
            t = np.exp(e)
            lp += y[i] * e - np.log1p(t)
            residual[i] = y[i] - t / (1.0 + t)
    store_gradient(grad_out, Xt @ residual, 1.0, w, prior_precision)
    return lp - 0.5 * prior_precision * (w @ w)


class LogisticRegression(Target):
    """Posterior of logistic regression, y_i ~ Bernoulli(σ(x_iᵀw)), w ~ N(0, prior_scale² I).

    Parameters
    ----------
    X : array_like, shape (n, d)
        Design matrix (add a column of ones for an intercept).
    y : array_like, shape (n,)
        Labels in {0, 1}.
    prior_scale : float, optional
        Standard deviation of the Gaussian prior on each weight.

    Attributes
    ----------
    mean, cov : None
        The posterior moments have no closed form.
    smoothness_bound : float
        L ≤ λ_max(XᵀX)/4 + 1/prior_scale², a global bound on the Hessian of -log π.
    strong_convexity_bound : float
        m ≥ 1/prior_scale².
    """

    log_concave = True
    gradient_tested = True

    def __init__(self, X, y, prior_scale=1.0):
        X_given = X  # its column names, if any, label the weights
        X, y = design_and_response(X, y)
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("y must contain only 0 and 1")
        prior_scale = positive_scale(prior_scale, "prior_scale")
        prior_precision = 1.0 / prior_scale**2
        self.X, self.y, self.prior_scale = X, y, prior_scale
        self.mean = None
        self.cov = None
        self.smoothness_bound = float(np.linalg.eigvalsh(X.T @ X)[-1] / 4.0 + prior_precision)
        self.strong_convexity_bound = prior_precision
        super().__init__(
            _logistic_logdensity_and_grad,
            X.shape[1],
            args=(X, np.ascontiguousarray(X.T), y, prior_precision),
            variables=weights_structure(X_given),
        )
