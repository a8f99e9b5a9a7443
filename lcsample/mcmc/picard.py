"""``method="rmd-picard"``: RM-ULMC in Picard blocks, all gradients of a round in one call.

A block is ``picard_steps`` consecutive RM-ULMC steps of one chain. Its random numbers (α
and the (d, 4) normals of each step, in the sequential driver's order) are drawn first;
then the block is solved by Picard iteration (Anari, Chewi & Vuong 2024; Yu & Dalalyan
2024 for the randomized midpoint):

* pass: with every gradient frozen, run the block's steps (:func:`picard_pass`, the
  sequential kernels), which gives the midpoints and new points of all steps;
* round: evaluate the gradient at every point that moved since it was last evaluated,
  for all chains at once, in **one** call of the target;

until no point moved by more than ``tolerance`` in a round (RMS over coordinates, in
units of the inverse mass's standard deviations) or the round cap is reached. The first
pass uses the block's starting gradient everywhere. Since each point depends only on the
gradients before it, a block of m steps (2m gradients) is exact after at most 2m rounds,
and a converged block is the sequential chain's block: ``rmd-picard`` with
``tolerance=0`` gives the draws of ``method="rmd"`` for the same seed.

What it buys is sequential rounds, not gradient evaluations: a block of m steps costs
2m sequential gradient calls in ``"rmd"`` and K rounds of up to 2m rows here, where K is
small when the block is short against the target's time scale (m·h ≲ 1/√λ_max).
"""

from typing import NamedTuple

import numpy as np

from .._jit import kernel
from ..kernels.coefficients import step_coefficients
from ..kernels.step import (
    RMD,
    accept,
    complete,
    draw_noise,
    kinetic_energy,
    precondition,
    propose,
)

__all__ = ["PendingSteps", "PicardAdvance", "picard_pass", "take_steps"]


@kernel
def picard_pass(z, alphas, h, gamma, u, sigma, dense, x0, v0, p0, g_mid, g_new, x_mid, x_new,
                v_new):
    """One pass over a block of RM-ULMC steps with frozen gradients.

    Each step is :func:`~lcsample.kernels.step.propose` and
    :func:`~lcsample.kernels.step.complete`, as in the sequential chain, with the
    gradients read from ``g_mid`` and ``g_new`` instead of evaluated.

    Parameters
    ----------
    z : ndarray, shape (m, d, 4)
        Each step's normals (from :func:`~lcsample.kernels.step.draw_noise`).
    alphas : ndarray, shape (m,)
        Each step's midpoint fraction.
    h, gamma : float
    u, sigma : ndarray, shape (d,)
        Inverse mass diagonal (ones for a dense mass) and √(2γu).
    dense : ndarray, shape (d, d) or (0, 0)
    x0, v0, p0 : ndarray, shape (d,)
        The block's start and its preconditioned gradient U·∇log π(x0).
    g_mid, g_new : ndarray, shape (m, d)
        Frozen gradients at each step's midpoint and new point.
    x_mid, x_new, v_new : ndarray, shape (m, d)
        Outputs.
    """
    d = x0.shape[0]
    w2, w3 = np.empty(d), np.empty(d)
    p_mid_buf, p_buf = np.empty(d), np.empty(d)
    xa, va, pa = x0, v0, p0
    for k in range(alphas.shape[0]):
        c = step_coefficients(h, gamma, alphas[k])
        propose(RMD, c, z[k], u, sigma, xa, va, pa, x_mid[k], w2, w3, x_new[k], v_new[k])
        complete(c, u, dense, xa, va, g_mid[k], p_mid_buf, w2, w3, x_new[k], v_new[k])
        pa = precondition(dense, g_new[k], p_buf)
        xa, va = x_new[k], v_new[k]


class _Block:
    """One chain's Picard block: pre-drawn randomness, points, frozen gradients."""

    def __init__(self, chain, m):
        d = chain.x.shape[0]
        u, chol, self.dense = chain.mass.kernel_args
        self.chain, self.u, self.sigma = chain, u, np.sqrt(2.0 * chain.friction * u)
        self.alphas = np.empty(m)
        self.z = np.empty((m, d, 4))
        raw = np.empty((d, 4))
        for k in range(m):  # the sequential chain's draws, in its order
            self.alphas[k] = draw_noise(chain.rng, RMD, chol, raw, self.z[k])
        self.p0 = precondition(self.dense, chain.g, np.empty(d)).copy()
        self.g_mid = np.tile(chain.g, (m, 1))
        self.g_new = np.tile(chain.g, (m, 1))
        self.lp_new = np.full(m, chain.lp)
        self.at_mid = np.full((m, d), np.nan)  # where g_mid / g_new were evaluated
        self.at_new = np.full((m, d), np.nan)
        # the points of this pass and of the previous one (swapped each pass); NaN before
        # the first pass, whose "movement" is then not finite: never converged
        self.x_mid, self.x_new = np.full((m, d), np.nan), np.full((m, d), np.nan)
        self._previous = np.empty((m, d)), np.empty((m, d))
        self.v_new = np.empty((m, d))
        self.scale = np.sqrt(chain.mass.variances())
        self.rounds = 0
        self.done = False
        self.grads = 0
        self.solve()

    def solve(self):
        """A pass; returns how far the points moved (RMS in mass standard deviations)."""
        (self.x_mid, self.x_new), self._previous = self._previous, (self.x_mid, self.x_new)
        ch = self.chain
        picard_pass(self.z, self.alphas, ch.step_size, ch.friction, self.u, self.sigma,
                    self.dense, ch.x, ch.v, self.p0, self.g_mid, self.g_new, self.x_mid,
                    self.x_new, self.v_new)
        moved = max(np.sqrt(np.mean(((now - before) / self.scale) ** 2, axis=1)).max()
                    for now, before in zip((self.x_mid, self.x_new), self._previous, strict=True))
        return moved if np.isfinite(moved) else np.inf

    def stale(self):
        """Row indices (midpoints, new points) whose gradient is not at the current point."""
        return (np.flatnonzero(~(self.x_mid == self.at_mid).all(axis=1)),
                np.flatnonzero(~(self.x_new == self.at_new).all(axis=1)))

    def solved(self):
        """The block's steps as :class:`PendingSteps`."""
        return PendingSteps(self.x_new, self.v_new, self.g_new, self.lp_new)


class PendingSteps(NamedTuple):
    """Solved steps not yet taken by a chain, in order.

    Attributes
    ----------
    x, v, g : ndarray, shape (k, d)
        Position, velocity and gradient after each step.
    lp : ndarray, shape (k,)
    """

    x: np.ndarray
    v: np.ndarray
    g: np.ndarray
    lp: np.ndarray


def take_steps(chain, pending, n):
    """Move ``chain`` along the first ``n`` pending steps, up to the first non-finite one.

    Returns
    -------
    n_ok : int
        Steps taken: ``n``, or the index of the first non-finite step.
    rest : PendingSteps or None
        The steps after the first ``n``; None when there are none or one was not finite.
    """
    dense = chain.mass.kernel_args[2]
    p = precondition(dense, chain.g, np.empty_like(chain.g))
    lp = chain.lp
    for k in range(n):
        if not accept(pending.lp[k], pending.x[k], pending.v[k], pending.g[k], dense,
                      chain.x, chain.v, chain.g, p):
            chain.lp = lp
            return k, None
        lp = float(pending.lp[k])
    chain.lp = lp
    rest = PendingSteps(*(a[n:] for a in pending))
    return n, (rest if len(rest.lp) else None)


class PicardAdvance:
    """``advance_batch`` for ``method="rmd-picard"``: chains advance in Picard blocks.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(X) -> (lp, G)`` on rows X (n, d).
    steps : int
        Steps per block (``picard_steps``).
    tolerance : float
    max_rounds : int or None
        Rounds per block at most (always at most 2·``steps``, where a block is exact).
    carry : bool
        Solve whole blocks whatever the request and keep the steps beyond it in
        ``chain.pending`` for the next request (or the next run, through
        ``last_state``). With a positive tolerance a block's answer depends on where it
        ends, so this makes the draws independent of how a run is split into requests,
        interrupts and resumes. The warmup, whose parameters change between requests,
        cuts its blocks at the request's end instead. It costs the steps of the run's last
        block beyond its end (at most ``steps - 1``; they are kept in ``last_state``).

    Each chain's ``n_rounds``, ``picard_blocks`` and ``picard_unconverged`` count its
    sequential rounds, its blocks and the blocks stopped unconverged.
    """

    def __init__(self, evaluate, steps, tolerance, max_rounds=None, carry=False):
        self.evaluate = evaluate
        self.steps, self.tolerance, self.max_rounds = steps, tolerance, max_rounds
        self.carry = carry

    def carrying(self):
        """The same advance with ``carry=True``, for the sampling phase.

        At tolerance 0 every block is exact wherever it ends, so it is this advance
        itself: no steps are solved beyond the run's end.
        """
        if self.tolerance == 0:
            return self
        return PicardAdvance(self.evaluate, self.steps, self.tolerance, self.max_rounds, True)

    def __call__(self, chains, requests):
        thin = requests[0].thin
        wanted = [len(r.draws) * thin for r in requests]
        done, grads = [0] * len(chains), [0] * len(chains)
        live = set(range(len(chains)))
        for i, ch in enumerate(chains):  # steps solved for an earlier request come first
            if ch.pending is not None:
                self._take(ch, ch.pending, requests[i], done, i, live)
        while live := {i for i in live if done[i] < wanted[i]}:
            blocks = {i: _Block(chains[i], self.steps if self.carry
                                else min(self.steps, wanted[i] - done[i])) for i in live}
            self._iterate(blocks)
            for i, b in blocks.items():
                grads[i] += b.grads
                chains[i].n_rounds += b.rounds
                chains[i].picard_blocks += 1
                chains[i].picard_unconverged += not b.done
                self._take(chains[i], b.solved(), requests[i], done, i, live)
        results = []
        for ch, n_steps, g in zip(chains, done, grads, strict=True):
            ch.n_grads += g
            results.append((n_steps // thin, g))
        return results

    @staticmethod
    def _take(chain, pending, request, done, i, live):
        """Take pending steps into the request; the rest stays pending, a failure stops."""
        thin = request.thin
        n = min(len(pending.lp), len(request.draws) * thin - done[i])
        n_ok, chain.pending = take_steps(chain, pending, n)
        u, chol, _ = chain.mass.kernel_args
        for k in range(n_ok):  # every thin-th step is a draw
            step = done[i] + k + 1
            if step % thin == 0:
                request.draws[step // thin - 1] = pending.x[k]
                request.lp[step // thin - 1] = pending.lp[k]
                request.energy[step // thin - 1] = (kinetic_energy(u, chol, pending.v[k])
                                                    - pending.lp[k])
        done[i] += n_ok
        if n_ok < n:
            live.discard(i)

    def _iterate(self, blocks):
        """Rounds of one batched evaluation until every block converged or is capped."""
        m = max(len(b.alphas) for b in blocks.values())
        cap = 2 * m if self.max_rounds is None else min(self.max_rounds, 2 * m)
        for _ in range(cap):
            work = [(b, *b.stale()) for b in blocks.values() if not b.done]
            work = [(b, mid, new) for b, mid, new in work if len(mid) or len(new)]
            for b in blocks.values():
                if not b.done and not any(w[0] is b for w in work):
                    b.done = True  # every gradient is at its point: exact
            if not work:
                return
            rows = np.concatenate([np.concatenate([b.x_mid[mid], b.x_new[new]])
                                   for b, mid, new in work])
            lp, G = self.evaluate(rows)
            start = 0
            for b, mid, new in work:
                k, j = len(mid), len(new)
                b.g_mid[mid] = G[start:start + k]
                b.at_mid[mid] = b.x_mid[mid]
                b.g_new[new] = G[start + k:start + k + j]
                b.lp_new[new] = lp[start + k:start + k + j]
                b.at_new[new] = b.x_new[new]
                start += k + j
                b.grads += k + j
                b.rounds += 1
                b.done = b.solve() <= self.tolerance
