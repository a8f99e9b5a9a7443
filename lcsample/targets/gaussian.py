"""Gaussian target N(mean, cov), dense or diagonal, with exact moments."""

import numpy as np

from .._jit import kernel
from ._gradient import store_gradient
from .base import Target

__all__ = ["Gaussian"]


@kernel
def _diagonal_logdensity_and_grad(x, grad_out, mean, precision, log_norm):
    lp = log_norm
    for i in range(x.shape[0]):
        r = x[i] - mean[i]
        grad_out[i] = -precision[i] * r
        lp += 0.5 * grad_out[i] * r
    return lp


@kernel
def _dense_logdensity_and_grad(x, grad_out, mean, precision, log_norm):
    r = x - mean
    store_gradient(grad_out, precision @ r, -1.0, r, 0.0)
    return log_norm + 0.5 * (grad_out @ r)


class Gaussian(Target):
    """Multivariate normal target N(mean, cov).

    Give exactly one of ``cov`` and ``precision``; a 1-D array means a diagonal matrix.

    Parameters
    ----------
    mean : array_like, shape (d,)
    cov : array_like, shape (d,) or (d, d), optional
    precision : array_like, shape (d,) or (d, d), optional

    Attributes
    ----------
    mean : ndarray, shape (d,)
        Exact mean.
    cov : ndarray, shape (d, d)
        Exact covariance.
    precision : ndarray, shape (d,) or (d, d)
        Inverse covariance; 1-D when diagonal.
    smoothness_bound : float
        L = λ_max(precision), exact: the Hessian of -log π is the precision everywhere.
    strong_convexity_bound : float
        m = λ_min(precision), exact.
    """

    log_concave = True
    gradient_tested = True

    def __init__(self, mean, cov=None, precision=None):
        mean = np.array(mean, dtype=np.float64)
        if mean.ndim != 1 or mean.size == 0 or not np.isfinite(mean).all():
            raise ValueError("mean must be a finite 1-D array")
        if (cov is None) == (precision is None):
            raise ValueError("give exactly one of cov and precision")
        given_name = "cov" if cov is not None else "precision"
        mat = np.array(cov if cov is not None else precision, dtype=np.float64)
        d = mean.size
        if mat.shape not in ((d,), (d, d)):
            raise ValueError(f"{given_name} must have shape ({d},) or ({d}, {d}), got {mat.shape}")
        if not np.isfinite(mat).all():
            raise ValueError(f"{given_name} must be finite")
        if mat.ndim == 1:
            if (mat <= 0).any():
                raise ValueError(f"{given_name} must be positive")
            prec = 1.0 / mat if cov is not None else mat
            self.cov = np.diag(1.0 / prec)
            logdet_prec = np.sum(np.log(prec))
            prec_eigenvalues = prec
            fn = _diagonal_logdensity_and_grad
        else:
            if not np.allclose(mat, mat.T, rtol=1e-12, atol=0):
                raise ValueError(f"{given_name} must be symmetric")
            try:
                chol = np.linalg.cholesky(mat)
            except np.linalg.LinAlgError:
                raise ValueError(f"{given_name} must be positive definite") from None
            logdet = 2.0 * np.sum(np.log(np.diag(chol)))
            # From the matrix given rather than the computed inverse, which is less accurate.
            eigenvalues = np.linalg.eigvalsh(mat)
            prec_eigenvalues = 1.0 / eigenvalues if cov is not None else eigenvalues
            if cov is not None:
                prec = np.linalg.inv(mat)
                prec = 0.5 * (prec + prec.T)
                self.cov = mat
                logdet_prec = -logdet
            else:
                prec = mat
                self.cov = np.linalg.inv(mat)
                logdet_prec = logdet
            fn = _dense_logdensity_and_grad
        self.mean = mean
        self.precision = prec
        self.smoothness_bound = float(prec_eigenvalues.max())
        self.strong_convexity_bound = float(prec_eigenvalues.min())
        log_norm = 0.5 * logdet_prec - 0.5 * d * np.log(2.0 * np.pi)
        super().__init__(fn, d, args=(mean, np.ascontiguousarray(prec), float(log_norm)))
