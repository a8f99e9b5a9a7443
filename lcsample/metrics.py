"""Accuracy of a run against known moments: the squared bias b² of first and second moments.

b²_x(n) = mean_i (Ê_n[x_i] - E[x_i])² / Var[x_i] and b²_x²(n) likewise for x_i², with
Var[x_i²] ≈ 2σ⁴ + 4μ²σ² (exact for a Gaussian), where Ê_n pools the first n draws of all
chains. "Gradient evaluations to b² < 0.01" is the cost measure used to compare samplers
(warmup included); see ``benchmarks/accuracy.py``.
"""

import numpy as np

__all__ = ["squared_bias", "grads_to_accuracy"]

_CHUNK = 64  # draws per chunk of the running sums (bounds memory at d = 10,000)


def squared_bias(posterior, mean, sd):
    """b²_x and b²_x² of the pooled running estimates after each draw.

    Parameters
    ----------
    posterior : ndarray, shape (chains, draws, d)
    mean, sd : ndarray, shape (d,)
        True posterior means and standard deviations.

    Returns
    -------
    b2_x, b2_x2 : ndarray, shape (draws,)
    """
    posterior = np.asarray(posterior, dtype=np.float64)
    mean, sd = np.asarray(mean, dtype=np.float64), np.asarray(sd, dtype=np.float64)
    chains, n, _ = posterior.shape
    var_x, second = sd**2, mean**2 + sd**2
    var_x2 = 2 * sd**4 + 4 * mean**2 * sd**2
    s1, s2 = np.zeros_like(mean), np.zeros_like(mean)
    b_x, b_x2 = np.empty(n), np.empty(n)
    for start in range(0, n, _CHUNK):
        block = posterior[:, start:start + _CHUNK]
        c1 = s1 + np.cumsum(block.sum(axis=0), axis=0)
        c2 = s2 + np.cumsum((block**2).sum(axis=0), axis=0)
        count = chains * np.arange(start + 1, start + block.shape[1] + 1)[:, None]
        b_x[start:start + block.shape[1]] = (((c1 / count) - mean) ** 2 / var_x).mean(axis=1)
        b_x2[start:start + block.shape[1]] = (((c2 / count) - second) ** 2 / var_x2).mean(axis=1)
        s1, s2 = c1[-1], c2[-1]
    return b_x, b_x2


def grads_to_accuracy(result, mean, sd, threshold=0.01, curves=None):
    """Gradient evaluations per chain until b² < threshold for x and x², and stays there.

    Per chain: the shared initialization (``attrs["init_grad_evals"]``, counted in full
    for every chain, as if each chain had done it alone), the chain's warmup, and its
    draws up to the crossing; averaged over chains.

    Parameters
    ----------
    result : SamplingResult
    mean, sd : ndarray, shape (d,)
    threshold : float
    curves : tuple of ndarray, optional
        ``squared_bias(result.posterior, mean, sd)`` when already computed.

    Returns
    -------
    float or None
        None when the run ends above the threshold.
    """
    b_x, b_x2 = squared_bias(result.posterior, mean, sd) if curves is None else curves
    above = np.flatnonzero((b_x >= threshold) | (b_x2 >= threshold) | ~np.isfinite(b_x + b_x2))
    n = 0 if above.size == 0 else above[-1] + 1
    if n >= b_x.shape[0]:
        return None
    per_draw = result.sample_stats["n_steps"]
    warmup = result.n_grad_evals - per_draw.sum(axis=1)
    used = warmup + per_draw[:, : n + 1].sum(axis=1)
    return float(result.attrs.get("init_grad_evals", 0) + used.mean())
