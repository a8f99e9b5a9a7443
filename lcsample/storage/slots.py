"""A chain's moving state as one checksummed vector of 64-bit words, for crash-safe resume.

After each block a chain has made, its state — position, velocity, gradient, log density,
generator state, gradient and Picard counters, and the Picard steps solved beyond the
block — is packed into one ``uint64`` vector and written to one of two slots of the store,
alternately. A process killed while writing tears at most the slot being written; on
resume the slot with the most draws whose checksum holds is the one continued from, so a
torn write costs one block, never the run. Floats are stored by their bits: the state
comes back exactly.
"""

import zlib

import numpy as np

__all__ = ["N_SLOTS", "pack_state", "slot_length", "unpack_state"]

#: Slots per chain written alternately (a torn write leaves the other intact).
N_SLOTS = 2
# Header words: draws done, n_grads, n_rounds, picard_blocks, picard_unconverged, the
# PCG64 state and increment (two words each), has_uint32, uinteger, pending steps, lp.
_HEADER = 13
_MASK = (1 << 64) - 1


def slot_length(dim, max_pending):
    """Words in a slot: header, x, v, g, up to ``max_pending`` Picard steps, checksum."""
    return _HEADER + 3 * dim + max_pending * (3 * dim + 1) + 1


def _bits(values):
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64).ravel()


def pack_state(chain, draws_done, max_pending):
    """The slot of ``chain`` after ``draws_done`` draws.

    Parameters
    ----------
    chain : lcsample.mcmc.chain.Chain
    draws_done : int
    max_pending : int
        Picard steps a slot has room for (``picard_steps``; 0 for other methods).

    Returns
    -------
    ndarray of uint64, shape (slot_length(d, max_pending),)
    """
    d = chain.x.shape[0]
    state = chain.rng.bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise ValueError("store: chains must use PCG64 generators")
    words = np.zeros(slot_length(d, max_pending), dtype=np.uint64)
    pending = chain.pending
    n_pending = 0 if pending is None else len(pending.lp)
    header = [draws_done, chain.n_grads, chain.n_rounds, chain.picard_blocks,
              chain.picard_unconverged, state["state"]["state"] >> 64,
              state["state"]["state"] & _MASK, state["state"]["inc"] >> 64,
              state["state"]["inc"] & _MASK, state["has_uint32"], state["uinteger"], n_pending]
    words[:12] = header
    words[12] = _bits([chain.lp])[0]
    words[_HEADER:_HEADER + 3 * d] = _bits(np.concatenate([chain.x, chain.v, chain.g]))
    if n_pending:
        flat = np.concatenate([pending.x, pending.v, pending.g, pending.lp[:, None]], axis=1)
        start = _HEADER + 3 * d
        words[start:start + flat.size] = _bits(flat)
    words[-1] = zlib.crc32(words[:-1].tobytes())
    return words


def unpack_state(words, dim):
    """The state in a slot, or None if the slot is empty or its checksum fails.

    Returns
    -------
    dict or None
        ``draws_done``, the chain attributes ``x, v, g, lp, n_grads, n_rounds,
        picard_blocks, picard_unconverged``, ``rng_state`` (a PCG64 state dict) and
        ``pending`` ((x, v, g, lp) arrays of the pending steps, or None).
    """
    words = np.asarray(words, dtype=np.uint64)
    if not words.any() or int(words[-1]) != zlib.crc32(words[:-1].tobytes()):
        return None
    h = [int(w) for w in words[:12]]
    floats = words[_HEADER:-1].view(np.float64)
    rng_state = {"bit_generator": "PCG64",
                 "state": {"state": (h[5] << 64) | h[6], "inc": (h[7] << 64) | h[8]},
                 "has_uint32": h[9], "uinteger": h[10]}
    n_pending = h[11]
    pending = None
    if n_pending:
        flat = floats[3 * dim:3 * dim + n_pending * (3 * dim + 1)].reshape(n_pending, -1)
        pending = (flat[:, :dim].copy(), flat[:, dim:2 * dim].copy(),
                   flat[:, 2 * dim:3 * dim].copy(), flat[:, -1].copy())
    return {"draws_done": h[0], "n_grads": h[1], "n_rounds": h[2], "picard_blocks": h[3],
            "picard_unconverged": h[4], "rng_state": rng_state,
            "lp": float(words[12:13].view(np.float64)[0]),
            "x": floats[:dim].copy(), "v": floats[dim:2 * dim].copy(),
            "g": floats[2 * dim:3 * dim].copy(), "pending": pending}
