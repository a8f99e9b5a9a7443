"""What a run will take, checked before any work: memory for its records, and its length.

A run's records are allocated whole (``posterior`` is chains × draws × d float64), so a
size that cannot fit fails at once with a ``ValueError`` that names the arguments and the
GiB needed against what the machine has, instead of after the warmup or after swapping.
"""

from .._memory import GIB, available_memory
from .chain import block_lengths
from .warmup.loop import AUTO_THIN_MAX, AUTO_TUNE_RANGE

__all__ = ["MAX_STEPS_PER_CHAIN", "STORE_BLOCK_BYTES", "STORE_CHUNK_BYTES", "check_run_size",
           "record_bytes", "stored_block"]

#: Steps per chain beyond which a run is refused: over a day per chain even at 100 ns a
#: step, so such a value is a mistake (``thin=10**12``) rather than a plan.
MAX_STEPS_PER_CHAIN = 10**12
# Bytes per draw of the sample statistics: lp, energy, step_size, friction (float64),
# n_steps (int64), diverging and nonfinite (bool).
_STATS_BYTES = 8 * 5 + 2
#: Memory the block buffers of a stored run may take (one block per chain in flight).
STORE_BLOCK_BYTES = 2**28
#: Bytes of draws per chunk of a store (Zarr's advice: 1 to 10 MB; each write of a chunk
#: costs ~1 ms whatever its size, so small ones make a cheap target wait on the disk).
STORE_CHUNK_BYTES = 2**21


def record_bytes(chains, draws, tune, dim, keep_warmup, dense):
    """Bytes of the records a run allocates.

    Parameters
    ----------
    chains, draws, dim : int
    tune : int or None
        None: the automatic warmup, counted at its longest.
    keep_warmup : bool
        Whether the warmup draws are kept (``discard_tuned_samples=False``).
    dense : bool
        Whether the inverse mass is a dense (d, d) matrix (three such arrays are held).

    Returns
    -------
    float
    """
    tune = AUTO_TUNE_RANGE[1] if tune is None else tune
    per_draw = _STATS_BYTES + 8.0 * dim
    warm_per_draw = _STATS_BYTES + (8.0 * dim if keep_warmup else 0.0)
    return (float(chains) * (draws * per_draw + tune * warm_per_draw)
            + (3 * 8.0 * dim * dim if dense else 0.0))


def stored_block(draws, thin, in_flight, dim, itemsize):
    """Draws per block (and per chunk of the store) of a run with ``store=``.

    Chunks of about :data:`STORE_CHUNK_BYTES` of draws (``itemsize`` bytes a value), but
    a tenth of the run at most, so that a killed run loses little, and at least the
    in-memory run's block (:func:`lcsample.mcmc.chain.block_lengths`); and no larger than
    lets the buffers of the ``in_flight`` chains advanced at once stay within
    :data:`STORE_BLOCK_BYTES`: memory stays bounded whatever ``draws`` is. Blocks do not
    change the draws (a Picard run carries its blocks across requests), only how often
    the store is written.
    """
    chunk = min(STORE_CHUNK_BYTES // (itemsize * dim), -(-draws // 10))
    chunk = max(block_lengths(draws, thin)[0], chunk)
    fit = STORE_BLOCK_BYTES // (in_flight * (8 * dim + _STATS_BYTES))
    return max(1, min(chunk, fit, draws))


def check_run_size(chains, draws, tune, thin, dim, keep_warmup, dense, held=None):
    """Refuse a run that cannot fit in memory or cannot finish.

    ``held``: draws per chain held in memory when they stream to a store (None: all);
    ``thin`` None (automatic) and ``tune`` None count at their largest.

    Returns
    -------
    float
        The bytes the records need.

    Raises
    ------
    ValueError
        Naming the arguments, the GiB needed and the GiB available; or the steps per chain
        when ``draws × thin + tune`` exceeds :data:`MAX_STEPS_PER_CHAIN`.
    """
    steps = draws * (thin or AUTO_THIN_MAX) + (AUTO_TUNE_RANGE[1] if tune is None else tune)
    if steps > MAX_STEPS_PER_CHAIN:
        raise ValueError(
            f"draws={draws} with thin={thin} and tune={tune} is {steps:.3g} steps per chain, "
            f"more than {MAX_STEPS_PER_CHAIN:.0e} (over a day per chain even at 100 ns a "
            "step); lower draws or thin")
    need = record_bytes(chains, draws if held is None else held, tune, dim, keep_warmup, dense)
    have = available_memory()
    if have is not None and need > have:
        parts = [f"chains={chains}", f"draws={draws}", f"dim={dim}"]
        if keep_warmup:
            parts.append(f"tune={tune} (warmup draws kept)")
        raise ValueError(
            f"{', '.join(parts)} need {need / GIB:,.1f} GiB for the draws and their "
            f"statistics, and {have / GIB:,.1f} GiB is available: lower chains or draws, "
            "thin more, or stream the draws to a store (store=)")
    return need
