"""Rank-normalized split R-hat and bulk effective sample size (Vehtari et al. 2021).

The convergence checks after every run need these two numbers per coordinate. ArviZ
computes the same ones, but importing it and its first call cost about 3.5 s in a fresh
process, ten times a typical run's sampling; here they take NumPy and SciPy operations
over all coordinates at once, plus one small cached numba loop for the truncation of the
autocorrelation sum. ``tests/test_convergence.py`` checks both against ArviZ.

Both statistics work on the draws after rank normalization: the pooled draws of a
coordinate are replaced by the normal quantiles of their (average) ranks,
Φ⁻¹((r − 3/8)/(S + 1/4)), and each chain is split in halves, so that a chain that drifts
counts as two that disagree.
"""

import numpy as np
from scipy.special import ndtri

from .._jit import kernel, precompiled

__all__ = ["bulk_ess", "rank_rhat"]


def _split_chains(draws):
    """Each chain's two halves as chains (the middle draw of an odd length dropped).

    draws (m, n, d) -> (2m, n // 2, d).
    """
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, draws.shape[1] - half:]], axis=0)


def _average_ranks(values):
    """1-based ranks along each row of (k, S), ties sharing their average rank.

    Sorted once per row; a run of equal values spans positions first..last of the sorted
    row and each of them gets rank (first + last)/2 + 1 (scipy.stats.rankdata's "average",
    without that module's import cost).
    """
    n = values.shape[1]
    order = np.argsort(values, axis=1)  # ties are grouped below: any order of them works
    ordered = np.take_along_axis(values, order, axis=1)
    position = np.arange(n)
    starts = np.ones(ordered.shape, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones(ordered.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, position, n)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(ordered.shape)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def _rank_normalize(draws):
    """Normal scores of the pooled ranks, per coordinate; same shape (m, n, d)."""
    m, n, d = draws.shape
    # coordinates as contiguous rows: sorting along them is several times faster
    ranks = _average_ranks(np.ascontiguousarray(draws.reshape(m * n, d).T))
    return ndtri((ranks.T - 0.375) / (m * n + 0.25)).reshape(m, n, d)


def _rhat(chains):
    """Potential scale reduction of chains (m, n, d), per coordinate."""
    n = chains.shape[1]
    within = chains.var(axis=1, ddof=1).mean(axis=0)
    between_over_n = chains.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(((n - 1) / n * within + between_over_n) / within)


def rank_rhat(draws):
    """Rank-normalized split R-hat per coordinate: the larger of the bulk and tail values.

    Parameters
    ----------
    draws : ndarray, shape (chains, draws, d)
        Finite; at least 2 chains and 4 draws.

    Returns
    -------
    ndarray, shape (d,)
        NaN for a coordinate constant within every chain.
    """
    split = _split_chains(np.asarray(draws, dtype=float))
    folded = np.abs(split - np.median(split.reshape(-1, split.shape[2]), axis=0))
    # a coordinate constant in every chain gives 0/0 in both: NaN, which fmax keeps
    return np.fmax(_rhat(_rank_normalize(split)), _rhat(_rank_normalize(folded)))


def bulk_ess(draws):
    """Bulk effective sample size per coordinate, summed over chains.

    Parameters
    ----------
    draws : ndarray, shape (chains, draws, d)
        Finite; at least 4 draws.

    Returns
    -------
    ndarray, shape (d,)
        The number of split draws for a coordinate constant within every chain.
    """
    split = _rank_normalize(_split_chains(np.asarray(draws, dtype=float)))
    m, n, _ = split.shape
    acov = _autocovariance(split)  # (m, n, d)
    mean_var = acov[:, 0].mean(axis=0) * n / (n - 1)
    var_plus = mean_var * (n - 1) / n
    if m > 1:
        var_plus = var_plus + split.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus  # (n, d)
    ess = _geyer_ess(np.ascontiguousarray(rho.T), m * n)
    return np.where(_constant(split), float(m * n), ess)  # as ArviZ: no autocorrelation


def _autocovariance(chains):
    """Biased autocovariances at every lag along axis 1, by FFT (zero-padded)."""
    n = chains.shape[1]
    centered = chains - chains.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centered, n=size, axis=1)
    return np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n] / n


def _constant(chains):
    """Coordinates with no variation within any chain, shape (d,)."""
    return ~(np.ptp(chains, axis=1) > 0).any(axis=0)


@precompiled
@kernel
def _geyer_ess(rho, total):
    """ESS from autocorrelations rho (d, n) by Geyer's initial monotone sequence.

    Lag pairs ρ_{2k−1} + ρ_{2k} are kept while their sum is non-negative (the initial
    positive sequence), then lowered where a pair exceeds the one before it (monotone);
    τ = −1 + 2·Σ_{t ≤ T} ρ_t + ρ_{T+1} with the last even lag added while positive, and
    floored at 1/log10(total), as Stan and ArviZ do.
    """
    d, n = rho.shape
    out = np.empty(d)
    for j in range(d):
        r = np.zeros(n)
        r[0], r[1] = 1.0, rho[j, 1]
        even, odd = 1.0, rho[j, 1]
        t = 1
        while t < n - 3 and even + odd > 0.0:
            even, odd = rho[j, t + 1], rho[j, t + 2]
            if even + odd >= 0.0:
                r[t + 1], r[t + 2] = even, odd
            t += 2
        last = t - 2
        if even > 0.0:
            r[last + 1] = even
        t = 1
        while t <= last - 2:
            if r[t + 1] + r[t + 2] > r[t - 1] + r[t]:
                r[t + 1] = r[t + 2] = (r[t - 1] + r[t]) / 2.0
            t += 2
        tau = -1.0 + 2.0 * np.sum(r[:last + 1]) + r[last + 1]
        out[j] = total / max(tau, 1.0 / np.log10(total))
        if np.isnan(rho[j]).any():
            out[j] = np.nan
    return out
