"""Many chains of a jitted target, advanced together by one compiled loop per thread.

The thread-per-chain path (:meth:`lcsample.mcmc.chain.Chain.advance` in
:func:`lcsample.mcmc.execution.run_tasks`) calls the compiled loop once per chain and block,
which costs tens of microseconds of Python per call; with chains ≫ cores that is a
large share of the run. :class:`CompiledLockstep` instead advances a whole set of chains
in one call of :func:`lcsample.kernels.many.run_chains`, which gives each chain exactly
the draws of its own ``Chain.advance``.
"""

import collections
import concurrent.futures
import functools

import numpy as np

from ..kernels.many import run_chains
from ..kernels.rows import typed_generators
from .warmup.mass import InverseMass

__all__ = ["CompiledLockstep"]

#: Bytes of the buffers that one call of the compiled loop writes its chains' draws to
#: (then copied into their requests): a call takes as many chains as fit, at least one.
#: It bounds the memory the lockstep path adds to the records (cores × this); 256 KiB to
#: 16 MiB ran equally fast within the noise at 1,000 and 10,000 chains of d = 100.
_BUFFER_BYTES = 2**20


class _Generators:
    """The chains' generators as one numba typed list, rebuilt only when a new one appears.

    Building the list costs ~15 µs a generator, which a run of 10,000 chains would pay on
    every block; the chains keep their generators from block to block.
    """

    def __init__(self):
        self._held = []  # keeps the generators alive, so the ids below stay theirs
        self._index = {}
        self._list = None

    def rows(self, rngs):
        """(typed list, index of each of ``rngs`` in it as an int64 array)."""
        rows = [self._index.get(id(r), -1) for r in rngs]
        if -1 in rows:
            self._held = list(rngs)
            self._index = {id(r): i for i, r in enumerate(self._held)}
            self._list = typed_generators(self._held)
            rows = range(len(rngs))
        return self._list, np.fromiter(rows, dtype=np.int64, count=len(rngs))


class CompiledLockstep:
    """``advance_batch`` for a jitted target: many chains per call of the compiled loop.

    The same contract as :class:`lcsample.mcmc.lockstep.LockstepAdvance`, and each chain
    ends exactly as :meth:`~lcsample.mcmc.chain.Chain.advance` would leave it (state,
    generator, gradient count, records). Chains that share an inverse mass (and thin and
    corrector) advance together, cut into at least ``cores`` contiguous slices (more when
    a slice's draws would not fit :data:`_BUFFER_BYTES`) that this thread and ``cores − 1``
    helper threads run (the loop releases the GIL); the results do not depend on
    ``cores``. It keeps the helper threads and a numba list of the chains' generators
    from call to call.

    Parameters
    ----------
    target : Target
        A jitted (not batched) target.
    cores : int
        Threads.
    """

    def __init__(self, target, cores):
        if target.batched:
            raise ValueError("CompiledLockstep needs a jitted target; batched targets use "
                             "LockstepAdvance")
        self.target = target
        self.cores = max(1, int(cores))
        self._generators = _Generators()
        self._pool = None  # helper threads, started on the first call that needs them

    def compile(self, integrator, corrected):
        """Compile the loop for this target now, as the sampler's first block would.

        Parameters
        ----------
        integrator : int
            :data:`~lcsample.kernels.step.RMD`, :data:`~lcsample.kernels.step.ULMC` or
            :data:`~lcsample.kernels.step.RMD_LAGGED`.
        corrected : bool
            Also compile the ``rmd-tv`` corrector's variant.
        """
        d, none = self.target.dim, np.empty(0, dtype=np.int64)
        rngs = typed_generators([np.random.default_rng(0)])
        for corrector in ((None, (1, 0.1)) if corrected else (None,)):
            run_chains(self.target.logdensity_and_grad, self.target.args, integrator,
                       np.empty(0), np.empty(0), InverseMass(np.ones(d)).kernel_args, corrector,
                       1, np.empty((0, d)), np.empty((0, d)), np.empty((0, d)), np.empty((0, d)),
                       np.empty(0), rngs, none, none, np.empty((0, 0, d)), np.empty((0, 0)),
                       np.empty((0, 0)), none.copy(), none.copy())

    def __call__(self, chains, requests):
        """Advance ``chains`` as ``requests`` (:class:`~lcsample.mcmc.chain.Request`) ask.

        Returns
        -------
        list of (n_done, grads)
            As ``Chain.advance`` returns them, one per chain.
        """
        rngs, rows = self._generators.rows([c.rng for c in chains])
        parts = [part for members in _groups(chains, requests)
                 for part in self._slices(members, requests)]
        replies = self._run([functools.partial(self._advance, [chains[i] for i in part],
                                               [requests[i] for i in part], rngs, rows[part])
                             for part in parts])
        results = [None] * len(chains)
        for part, part_replies in zip(parts, replies, strict=True):
            for i, reply in zip(part, part_replies, strict=True):
                results[i] = reply
        return results

    def _slices(self, members, requests):
        """Cut a group into contiguous slices: at least one per core, buffers within budget."""
        n = max(len(requests[i].draws) for i in members)
        d = requests[members[0]].draws.shape[1]
        fit = max(1, _BUFFER_BYTES // max(1, n * (d + 2) * 8))
        size = min(-(-len(members) // self.cores), fit)
        return [members[s:s + size] for s in range(0, len(members), size)]

    def _run(self, jobs):
        """Each job's result, in order: this thread and ``cores − 1`` helpers share a queue.

        The helpers' pool lives as long as this object: starting threads on every call
        cost ~0.5 ms, more than a block of a few chains.
        """
        results = [None] * len(jobs)
        todo = collections.deque(enumerate(jobs))

        def work():
            while todo:
                try:
                    i, job = todo.popleft()
                except IndexError:  # another thread took the last one
                    return
                results[i] = job()

        helpers = min(self.cores, len(jobs)) - 1
        if helpers and self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.cores - 1, thread_name_prefix="lcsample-lockstep")
        running = [self._pool.submit(work) for _ in range(helpers)]
        try:
            work()
        finally:  # the helpers stop only once the queue is empty: wait, then re-raise
            for future in running:
                future.result()
        return results

    def _advance(self, chains, requests, rngs, which):
        """One call of the compiled loop for chains that share a mass, thin and corrector.

        The buffers start as copies of the requests and go back whole, so each request
        ends exactly as ``run_chain`` would leave it, whatever entries it writes.
        """
        first, request = chains[0], requests[0]
        corrector = first.corrector if request.corrected else None
        wanted = np.array([len(r.draws) for r in requests], dtype=np.int64)
        draws = np.empty((len(chains), wanted.max(), request.draws.shape[1]))
        lp, energy = np.empty(draws.shape[:2]), np.empty(draws.shape[:2])
        for j, (r, w) in enumerate(zip(requests, wanted, strict=True)):
            draws[j, :w], lp[j, :w], energy[j, :w] = r.draws, r.lp, r.energy
        X, V, G = (np.array([getattr(c, name) for c in chains]) for name in "xvg")
        X_at = np.array([c.evaluated_at_buffer() for c in chains])
        LP = np.array([c.lp for c in chains], dtype=np.float64)
        n_done, failed = np.empty(len(chains), dtype=np.int64), np.empty(len(chains), np.int64)
        run_chains(self.target.logdensity_and_grad, self.target.args, first.integrator,
                   np.array([c.step_size for c in chains], dtype=np.float64),
                   np.array([c.friction for c in chains], dtype=np.float64),
                   first.mass.kernel_args, corrector, request.thin, X, V, G, X_at, LP, rngs,
                   which, wanted, draws, lp, energy, n_done, failed)
        replies = []
        for j, (chain, r, w) in enumerate(zip(chains, requests, wanted, strict=True)):
            r.draws[...], r.lp[...], r.energy[...] = draws[j, :w], lp[j, :w], energy[j, :w]
            chain.x[...], chain.v[...], chain.g[...] = X[j], V[j], G[j]
            if chain.x_at is not None:
                chain.x_at[...] = X_at[j]
            chain.lp = float(LP[j])
            grads = int(n_done[j]) * chain.grads_per_draw(r.thin, r.corrected) + int(failed[j])
            chain.n_grads += grads
            replies.append((int(n_done[j]), grads))
        return replies


def _groups(chains, requests):
    """Indices of the chains that can share a call: same mass, integrator, thin, corrector."""
    groups = {}
    for i, (chain, request) in enumerate(zip(chains, requests, strict=True)):
        corrector = chain.corrector if request.corrected else None
        key = (id(chain.mass), chain.integrator, request.thin, request.corrected, corrector)
        groups.setdefault(key, []).append(i)
    return list(groups.values())
