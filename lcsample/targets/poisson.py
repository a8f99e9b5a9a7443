"""Bayesian Poisson regression with a log link and a Gaussian prior."""

import numpy as np

from .._jit import kernel
from ._data import design_and_response, positive_scale, weights_structure
from ._gradient import store_gradient
from .base import Target

__all__ = ["PoissonRegression"]


@kernel
def _poisson_logdensity_and_grad(w, grad_out, X, Xt, y, prior_precision):
    eta = X @ w
    rate = np.exp(eta)
    store_gradient(grad_out, Xt @ (y - rate), 1.0, w, prior_precision)
    return y @ eta - np.sum(rate) - 0.5 * prior_precision * (w @ w)


class PoissonRegression(Target):
    """Posterior of Poisson regression, y_i ~ Poisson(exp(x_iᵀw)), w ~ N(0, prior_scale² I).

    The log density omits the constant -Σ log y_i! and the prior's normalization.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Design matrix (add a column of ones for an intercept).
    y : array_like, shape (n,)
        Counts: non-negative integers.
    prior_scale : float, optional
        Standard deviation of the Gaussian prior on each weight.

    Attributes
    ----------
    mean, cov : None
        The posterior moments have no closed form.
    smoothness_bound : None
        There is no global bound: the Hessian of -log π is Xᵀdiag(exp(Xw))X + I/prior_scale²,
        which grows without bound as Xw does.
    strong_convexity_bound : float
        m ≥ 1/prior_scale², since the log-likelihood is concave.
    """

    log_concave = True
    gradient_tested = True

    def __init__(self, X, y, prior_scale=1.0):
        X_given = X  # its column names, if any, label the weights
        X, y = design_and_response(X, y)
        if not ((y >= 0).all() and (y == np.floor(y)).all()):
            raise ValueError("y must contain only non-negative integer counts")
        prior_scale = positive_scale(prior_scale, "prior_scale")
        prior_precision = 1.0 / prior_scale**2
        self.X, self.y, self.prior_scale = X, y, prior_scale
        self.mean = None
        self.cov = None
        self.smoothness_bound = None
        self.strong_convexity_bound = prior_precision
        super().__init__(
            _poisson_logdensity_and_grad,
            X.shape[1],
            args=(X, np.ascontiguousarray(X.T), y, prior_precision),
            variables=weights_structure(X_given),
        )
