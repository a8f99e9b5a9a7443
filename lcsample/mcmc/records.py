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

    A chunk of the store holds ``store.chunk_chains`` chains: their blocks are held until
    every chain of the chunk still running has made the block, then written together
    with their states (a chunk written whole, once: each write costs ~1 ms whatever its
    size). Chains that advance in lockstep make their blocks together; one chain per
    chunk (threads) writes each block at once.

    Parameters
    ----------
    store : RunStore
    start : list of int
        Draws each chain has in the store already (a resumed run), 0 otherwise.
    """

    def __init__(self, store, start):
        self.store, self.start = store, list(start)
        k, total = store.chunk_chains, store.draws
        self._live = [{c for c in range(g, min(g + k, len(start))) if start[c] < total}
                      for g in range(0, len(start), k)]
        self._held = {}  # (chunk, start) -> {chain: (rows, packed state)}

    def blocks(self, n_total, thin):
        """Draws per request: the store's chunks along the draws."""
        size = self.store.block
        return [min(size, n_total - start) for start in range(0, n_total, size)]

    def rows(self, c, start, n):
        """A new block buffer for chain c, as :func:`allocate_records` fills it."""
        return {k: v[0] for k, v in allocate_records(1, n, self.store.dim, True).items()}

    def commit(self, c, start, rows, done, chain):
        """Chain c made ``rows`` at ``start`` and has ``done`` draws (the point a resume
        continues from): written, with its state, once its chunk's other chains made it."""
        g = c // self.store.chunk_chains
        for key in [k for k in self._held if k[0] == g and k[1] < start]:
            self._write(key)  # a chain fell behind (a resumed run): no waiting for it
        held = self._held.setdefault((g, start), {})
        held[c] = (rows, self.store.pack(chain, done))
        if set(held) >= self._live[g]:
            self._write((g, start))

    def _write(self, key):
        """The held blocks of ``key``: draws first, then the states that point past them."""
        held = self._held.pop(key)
        chains = sorted(held)
        if chains == list(range(chains[0], chains[-1] + 1)):
            rows = {name: np.stack([held[c][0][name] for c in chains])
                    for name in held[chains[0]][0]}
            self.store.write_block(slice(chains[0], chains[-1] + 1), key[1], rows)
        else:
            for c in chains:
                rows = {name: values[None] for name, values in held[c][0].items()}
                self.store.write_block(slice(c, c + 1), key[1], rows)
        self.store.commit(chains, [held[c][1] for c in chains])

    def stop(self, c, start, chain):
        """Flag chain c's draws from ``start`` on in the store; the chain is finished."""
        g = c // self.store.chunk_chains
        for key in [k for k in self._held if k[0] == g and c in self._held[k]]:
            self._write(key)  # its last block, before the state that says it is finished
        self._live[g].discard(c)
        self.store.mark_stopped(c, start)
        self.store.commit([c], [self.store.pack(chain, self.store.draws)])
        for key in [k for k in self._held if k[0] == g and set(self._held[k]) >= self._live[g]]:
            self._write(key)

    def energy_before(self, c):
        """The Hamiltonian at chain c's last stored draw (NaN for none), so that an energy
        jump across the resume is flagged as the uninterrupted run flags it."""
        start = self.start[c]
        return self.store.array("sample_stats/energy")[c, start - 1] if start else np.nan

    def arrays(self, n_kept):
        """The stored records of the first ``n_kept`` draws, read lazily (dask); blocks
        still held (a run stopped by Ctrl-C) are written first."""
        from ..storage.reader import lazy_records

        for key in sorted(self._held):
            self._write(key)
        return lazy_records(self.store, n_kept)
