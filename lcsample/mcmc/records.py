"""Where the sampling phase's draws go: whole arrays in memory, or a store block by block.

A sampling task asks its records for the rows of a block (:meth:`rows`), lets the chain
fill them, and commits them (:meth:`commit`). In memory the rows are views of the whole
arrays and a commit does nothing; with a store they are a fresh block-sized buffer that
the commit writes out, with the chain's state after it (so memory stays at one block per
chain in flight, and a killed run resumes after its last committed block).
"""

import numpy as np

from .chain import block_lengths
from .warmup.loop import allocate_records

__all__ = ["MemoryRecords", "StoreRecords"]


class MemoryRecords:
    """The sampling records as whole arrays (chains, draws, ...) in memory."""

    def __init__(self, chains, draws, dim):
        self.out = allocate_records(chains, draws, dim, keep_draws=True)
        self.start = [0] * chains

    @staticmethod
    def blocks(n_total, thin):
        """Draws per request (:func:`~lcsample.mcmc.chain.block_lengths`)."""
        return block_lengths(n_total, thin)

    def rows(self, c, start, n):
        """Views of chain c's rows ``start:start + n`` of each record."""
        return {k: v[c, start:start + n] for k, v in self.out.items()}

    def commit(self, c, start, rows, done, chain):
        """Nothing to do: the rows were written in place."""

    def stop(self, c, start, chain):
        """Flag chain c's draws from ``start`` on: it stopped on a non-finite state."""
        self.out["diverging"][c, start:] = self.out["nonfinite"][c, start:] = True

    def energy_before(self, c):
        """The Hamiltonian at the draw before chain c's first: none (NaN)."""
        return np.nan

    def arrays(self, n_kept):
        """The records of the first ``n_kept`` draws of every chain."""
        return {k: v[:, :n_kept] for k, v in self.out.items()}


class StoreRecords:
    """The sampling records streamed to a :class:`~lcsample.storage.zarr_store.RunStore`.

    Parameters
    ----------
    store : RunStore
    start : list of int
        Draws each chain has in the store already (a resumed run), 0 otherwise.
    """

    def __init__(self, store, start):
        self.store, self.start = store, list(start)

    def blocks(self, n_total, thin):
        """Draws per request: the store's chunks along the draws."""
        size = self.store.block
        return [min(size, n_total - start) for start in range(0, n_total, size)]

    def rows(self, c, start, n):
        """A new block buffer for chain c, as :func:`allocate_records` fills it."""
        return {k: v[0] for k, v in allocate_records(1, n, self.store.dim, True).items()}

    def commit(self, c, start, rows, done, chain):
        """Write chain c's ``rows`` at ``start``, then its state as of ``done`` draws (the
        point a resume continues from)."""
        self.store.write_block(c, start, rows)
        self.store.commit(c, done, chain)

    def stop(self, c, start, chain):
        """Flag chain c's draws from ``start`` on in the store; the chain is finished."""
        self.store.mark_stopped(c, start)
        self.store.commit(c, self.store.draws, chain)

    def energy_before(self, c):
        """The Hamiltonian at chain c's last stored draw (NaN for none), so that an energy
        jump across the resume is flagged as the uninterrupted run flags it."""
        start = self.start[c]
        return self.store.root["sample_stats"]["energy"][c, start - 1] if start else np.nan

    def arrays(self, n_kept):
        """The stored records of the first ``n_kept`` draws, read lazily (dask)."""
        from ..storage.reader import lazy_records

        return lazy_records(self.store, n_kept)
