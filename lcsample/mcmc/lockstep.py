"""Chains of a batched target advanced in lockstep: one call of the target per round.

The chains' steps are :func:`lcsample.kernels.rows.advance_rows` (and
:func:`~lcsample.kernels.rows.langevin_rows` for the ``rmd-tv`` corrector), each chain
with its own generator, so a batched target gives the draws of the equivalent jitted
target to the round-off of the two gradient implementations.
"""

import numpy as np

from ..kernels.rows import RowState, advance_rows, kinetic_rows, langevin_rows, typed_generators
from ..kernels.step import GRADS_PER_STEP, RMD_LAGGED, ULMC

__all__ = ["LockstepAdvance"]


class LockstepAdvance:
    """``advance_batch`` for batched targets: the lockstep form of ``Chain.advance``.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(X) -> (lp, G)`` on rows X (n, d).
    """

    def __init__(self, evaluate):
        self.evaluate = evaluate

    def __call__(self, chains, requests):
        """Advance ``chains`` as ``requests`` (:class:`~lcsample.mcmc.chain.Request`) ask.

        Chains that share an inverse mass advance together.

        Returns
        -------
        list of (n_done, grads)
        """
        results = [None] * len(chains)
        groups = {}
        for i, chain in enumerate(chains):
            groups.setdefault(id(chain.mass), []).append(i)
        for members in groups.values():
            replies = self._advance_group([chains[i] for i in members],
                                          [requests[i] for i in members])
            for i, reply in zip(members, replies, strict=True):
                results[i] = reply
        return results

    def _advance_group(self, chains, requests):
        thin, corrected = requests[0].thin, requests[0].corrected
        first = chains[0]
        precond = first.mass.kernel_args
        lagged = first.integrator == RMD_LAGGED
        state = RowState.start([c.x for c in chains], [c.v for c in chains],
                               [c.g for c in chains], [c.lp for c in chains], precond[2],
                               [c.x_at for c in chains] if lagged else None)
        h, gamma = np.array([c.step_size for c in chains]), np.array([c.friction for c in chains])
        rngs = typed_generators([c.rng for c in chains])
        wanted = np.array([len(r.draws) for r in requests])
        kinetic = np.empty(len(chains))
        n_done, failed = wanted.copy(), np.zeros(len(chains), dtype=np.int64)
        per_step = GRADS_PER_STEP[first.integrator]
        live = wanted > 0
        for k in range(wanted.max(initial=0)):
            live &= k < wanted
            steps = advance_rows(self.evaluate, first.integrator, thin, h, gamma, precond, state,
                                 rngs, live.copy())
            self._stop(live, steps < thin, k, (steps + 1) * per_step, n_done, failed)
            draw = state
            if corrected and first.corrector is not None:
                n_corr, h_corr = first.corrector
                draw, c_steps = langevin_rows(self.evaluate, ULMC, n_corr, np.full(len(h), h_corr),
                                              gamma, precond, state, rngs, live.copy())
                self._stop(live, c_steps < n_corr, k, thin * per_step + c_steps + 1, n_done,
                           failed)
            # the lagged step's lp is its midpoint's, and so is the velocity of its energy
            kinetic_rows(precond[0], precond[1], draw.v_at if lagged else draw.v, kinetic)
            for i in np.flatnonzero(live):
                requests[i].draws[k] = draw.x[i]
                requests[i].lp[k] = draw.lp[i]
                requests[i].energy[k] = kinetic[i] - draw.lp[i]
        return self._finish(chains, state, n_done, failed, thin, corrected)

    @staticmethod
    def _stop(live, stopped, k, grads, n_done, failed):
        """Take the rows that ``stopped`` during draw k out of ``live``, recording why."""
        rows = np.flatnonzero(live & stopped)
        n_done[rows] = k
        failed[rows] = grads[rows]
        live[rows] = False

    @staticmethod
    def _finish(chains, state, n_done, failed, thin, corrected):
        """Write the rows' last finite states back to the chains; count gradients."""
        results = []
        for i, chain in enumerate(chains):
            chain.x, chain.v, chain.g = state.x[i].copy(), state.v[i].copy(), state.g[i].copy()
            chain.lp = float(state.lp[i])
            if state.x_at is not None:
                chain.x_at = state.x_at[i].copy()
            grads = int(n_done[i]) * chain.grads_per_draw(thin, corrected) + int(failed[i])
            chain.n_grads += grads
            results.append((int(n_done[i]), grads))
        return results
