"""Targets that numba cannot compile (JAX, PyTorch, plain NumPy), evaluated for all chains at once.

All chains advance in lockstep: each round of oracle calls is one call of the user's
function on a (chains, d) array. The integrator arithmetic is the same compiled kernels,
called per chain in the same order and with the same random streams as the compiled
driver (:func:`lcsample.driver.run_chain`), so a batched target gives the draws of the
equivalent jitted target, to the round-off of the two gradient implementations.
"""

import numpy as np

from ..kernels.coefficients import rmd_coefficients, ulmc_coefficients
from ..kernels.compiled import RMD, copy_into, is_finite_state
from ..kernels.step import (
    correlate,
    fresh_velocity,
    preconditioned,
    rmd_midpoint,
    rmd_update,
    standard_normals,
    ulmc_update,
)
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

    def advance_batch(self, chains, requests):
        """Advance several chains together; the lockstep form of ``Chain.advance``.

        Parameters
        ----------
        chains : list of Chain
        requests : list of (draws_out, lp_out, thin, corrected)
            One per chain, as the chain's task yielded it; ``thin`` and ``corrected`` are
            the same for all.

        Returns
        -------
        list of (n_done, grads)
        """
        thin, corrected = requests[0][2], requests[0][3]
        lanes = [_Lane(ch, corrected) for ch in chains]
        targets = [len(r[0]) for r in requests]
        per_step = 2 if chains[0].method == RMD else 1
        active = list(range(len(lanes)))
        for k in range(max(targets, default=0)):
            active = [i for i in active if k < targets[i]]
            for s in range(thin):
                if not active:
                    break
                if chains[0].method == RMD:
                    for i in active:
                        lanes[i].rmd_begin()
                    _, G = self.evaluate(np.array([lanes[i].x_mid for i in active]))
                    for i, g_mid in zip(active, G):
                        lanes[i].rmd_end(g_mid)
                else:
                    for i in active:
                        lanes[i].ulmc()
                lp, G = self.evaluate(np.array([lanes[i].xb for i in active]))
                for i, lp_i, g_i in zip(active, lp, G):
                    if not lanes[i].commit(lp_i, g_i):
                        lanes[i].stop(k, (s + 1) * per_step)
                active = [i for i in active if lanes[i].result is None]
            if lanes[0].corrector is None:
                for i in active:
                    lanes[i].store(requests[i], k)
                continue
            for i in active:
                lanes[i].corrector_start()
            for j in range(lanes[0].corrector[0]):
                if not active:
                    break
                for i in active:
                    lanes[i].corrector_step()
                lp, G = self.evaluate(np.array([lanes[i].xd for i in active]))
                for i, lp_i, g_i in zip(active, lp, G):
                    if not lanes[i].corrector_commit(lp_i, g_i):
                        lanes[i].stop(k, thin * per_step + j + 1)
                active = [i for i in active if lanes[i].result is None]
            for i in active:
                lanes[i].store(requests[i], k, corrected=True)
        results = []
        for lane, n in zip(lanes, targets):
            if lane.result is None:
                lane.finish()
                lane.result = (n, 0)
            n_done, failed = lane.result
            grads = n_done * lane.chain.grads_per_draw(thin, corrected) + failed
            lane.chain.n_grads += grads
            results.append((n_done, grads))
        return results


class _Lane:
    """One chain's buffers and steps in a lockstep advance (mirrors ``run_chain``)."""

    def __init__(self, chain, corrected):
        d = chain.x.shape[0]
        self.chain = chain
        self.u, self.chol, self.dense = chain.mass.kernel_args
        self.sigma = np.sqrt(2.0 * chain.gamma * self.u)
        self.corrector = chain.corrector if corrected else None
        self.xa, self.va, self.ga = chain.x.copy(), chain.v.copy(), chain.g.copy()
        self.xb, self.vb, self.gb = np.empty(d), np.empty(d), np.empty(d)
        self.pa = preconditioned(self.dense, self.ga, np.empty(d))
        self.pb = preconditioned(self.dense, self.gb, np.empty(d))
        self.x_mid, self.p_mid = np.empty(d), np.empty(d)
        self.w2, self.w3 = np.empty(d), np.empty(d)
        width = 4 if chain.method == RMD else 2
        self.z, self.zc = np.empty((d, width)), np.empty((d, width))
        self.c_ulmc = ulmc_coefficients(chain.h, chain.gamma)
        self.c = None
        self.lp = chain.lp
        self.result = None

    def _normals(self, z, zc):
        """The step's normal block, times L for a dense mass (the driver's order)."""
        standard_normals(self.chain.rng, z)
        if self.chol.shape[0] == 0:
            return z
        correlate(self.chol, z, zc)
        return zc

    def rmd_begin(self):
        ch = self.chain
        self.c = rmd_coefficients(ch.h, ch.gamma, ch.rng.random())
        rmd_midpoint(self._normals(self.z, self.zc), self.xa, self.va, self.pa, self.u, self.sigma,
                     self.c, self.x_mid, self.w2, self.w3)

    def rmd_end(self, g_mid):
        p_mid = preconditioned(self.dense, g_mid, self.p_mid)
        rmd_update(self.xa, self.va, p_mid, self.u, self.c, self.w2, self.w3, self.xb, self.vb)

    def ulmc(self):
        ulmc_update(self._normals(self.z, self.zc), self.xa, self.va, self.pa, self.u, self.sigma,
                    self.c_ulmc, self.xb, self.vb)

    def commit(self, lp, g):
        """Accept the new state if finite; swap the buffers."""
        if not is_finite_state(lp, self.xb, g):
            return False
        copy_into(g, self.gb)
        self.pb = preconditioned(self.dense, self.gb, self.pb)
        self.lp = lp
        self.xa, self.xb = self.xb, self.xa
        self.va, self.vb = self.vb, self.va
        self.ga, self.gb = self.gb, self.ga
        self.pa, self.pb = self.pb, self.pa
        return True

    def corrector_start(self):
        d = self.xa.shape[0]
        self.xc, self.vc, self.gc = self.xa.copy(), np.empty(d), self.ga.copy()
        self.xd, self.vd, self.gd = np.empty(d), np.empty(d), np.empty(d)
        self.pc = preconditioned(self.dense, self.gc, np.empty(d))
        self.pd = preconditioned(self.dense, self.gd, np.empty(d))
        self.z2, self.z2c = np.empty((d, 2)), np.empty((d, 2))
        self.c_corr = ulmc_coefficients(self.corrector[1], self.chain.gamma)
        fresh_velocity(self.chain.rng, self.u, self.chol, np.empty((d, 1)), np.empty((d, 1)),
                       self.vc)
        self.lp_c = self.lp

    def corrector_step(self):
        ulmc_update(self._normals(self.z2, self.z2c), self.xc, self.vc, self.pc, self.u, self.sigma,
                    self.c_corr, self.xd, self.vd)

    def corrector_commit(self, lp, g):
        if not is_finite_state(lp, self.xd, g):
            return False
        copy_into(g, self.gd)
        self.pd = preconditioned(self.dense, self.gd, self.pd)
        self.lp_c = lp
        self.xc, self.xd = self.xd, self.xc
        self.vc, self.vd = self.vd, self.vc
        self.gc, self.gd = self.gd, self.gc
        self.pc, self.pd = self.pd, self.pc
        return True

    def store(self, request, k, corrected=False):
        draws_out, lp_out = request[0], request[1]
        copy_into(self.xc if corrected else self.xa, draws_out[k])
        lp_out[k] = self.lp_c if corrected else self.lp

    def stop(self, k, failed_grads):
        self.finish()
        self.result = (k, failed_grads)

    def finish(self):
        """Write the last finite state back to the chain."""
        ch = self.chain
        copy_into(self.xa, ch.x)
        copy_into(self.va, ch.v)
        copy_into(self.ga, ch.g)
        ch.lp = self.lp
