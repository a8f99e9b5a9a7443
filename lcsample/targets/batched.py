"""Targets that numba cannot compile (JAX, PyTorch, plain NumPy), evaluated for all chains at once.

A batched target is a model only: it evaluates the log density and its gradient on an
(n, d) array of points. The samplers advance its chains in lockstep, one call per round
of gradient evaluations (:mod:`lcsample.mcmc.lockstep`).
"""

import numpy as np

from .base import Target

__all__ = ["BatchedTarget"]


class BatchedTarget(Target):
    """A log density evaluated on a batch of points by a Python function.

    Made by :meth:`lcsample.Target.from_batch`.

    Parameters
    ----------
    logdensity_and_grad_batch : callable
        ``fn(X) -> (lp, G)`` for X of shape (n, d): lp shape (n,), G = ∇log π, shape
        (n, d). Anything array-like (JAX, PyTorch on CPU) that ``numpy.asarray`` converts.
    dim : int
    name : str, optional
    """

    batched = True

    def __init__(self, logdensity_and_grad_batch, dim, name="x"):
        if not callable(logdensity_and_grad_batch):
            raise TypeError("logdensity_and_grad_batch must be callable")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.batch_fn = logdensity_and_grad_batch
        self.logdensity_and_grad = None
        self.dim = int(dim)
        self.args = ()
        self.name = name

    def __repr__(self):
        fn = getattr(self.batch_fn, "__name__", "logdensity_and_grad_batch")
        return f"Target.from_batch({fn}, dim={self.dim})"

    def evaluate(self, X):
        """Call the function on points ``X``, shape (n, d); returns float64 (lp, G)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        lp, G = self.batch_fn(X)
        lp = np.asarray(lp, dtype=np.float64).reshape(-1)
        G = np.ascontiguousarray(G, dtype=np.float64)
        if lp.shape != (X.shape[0],) or G.shape != X.shape:
            raise ValueError(
                f"the batched function must return lp of shape ({X.shape[0]},) and a gradient "
                f"of shape {X.shape}; got {lp.shape} and {G.shape}"
            )
        return lp, G

    def logdensity_and_gradient(self, x):
        lp, G = self.evaluate(np.asarray(x, dtype=np.float64)[None, :])
        return float(lp[0]), G[0]

    def check(self, x):
        fn_name = getattr(self.batch_fn, "__name__", "logdensity_and_grad_batch")
        try:
            lp, grad = self.logdensity_and_gradient(x)
        except ValueError as err:
            raise ValueError(f"{fn_name}: {err}") from err
        except Exception as err:
            raise ValueError(
                f"{fn_name} raised at the initial point (dim={self.dim}): "
                f"{type(err).__name__}: {err}"
            ) from err
        if not np.isfinite(lp):
            raise ValueError(
                f"{fn_name} returned a non-finite log density ({lp}) at the initial point")
        if not np.isfinite(grad).all():
            bad = np.flatnonzero(~np.isfinite(grad))
            raise ValueError(
                f"{fn_name} returned a non-finite gradient at the initial point "
                f"(entries {bad[:10].tolist()})"
            )
        return lp, grad.copy()
