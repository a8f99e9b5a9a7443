"""The one array store the built-in targets' gradients share."""

from .._jit import kernel

__all__ = ["store_gradient"]


@kernel
def store_gradient(grad_out, data_term, scale, w, prior_precision):
    """grad_out = scale · data_term − prior_precision · w, element by element.

    A loop rather than ``grad_out[:] = ...``: numba's slice assignment compiles its
    shape-mismatch error message (string formatting), about 2 s of every first run on an
    empty cache.

    Parameters
    ----------
    grad_out, data_term, w : ndarray, shape (d,)
    scale, prior_precision : float
    """
    for i in range(grad_out.shape[0]):
        grad_out[i] = scale * data_term[i] - prior_precision * w[i]
