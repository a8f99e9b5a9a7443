"""Accuracy of a run against known moments: the squared bias b² of first and second moments.

b²_x(n) = mean_i (Ê_n[x_i] - E[x_i])² / Var[x_i] and b²_x²(n) likewise for x_i², with
Var[x_i²] ≈ 2σ⁴ + 4μ²σ² (exact for a Gaussian), where Ê_n pools the first n draws of all
chains. "Gradient evaluations to b² < 0.01" is the cost measure used to compare samplers
(warmup included); see ``benchmarks/accuracy.py``.

Sample-based distances between distributions, for samplers whose target is known only
through exact samples (a Gaussian mixture) or in closed form (a Gaussian):

- ``sliced_w2``: sliced 2-Wasserstein distance (random 1-D projections, exact 1-D W2 by
  sorting); any sample sizes, scales to large n and d.
- ``w2_exact``: exact W2 between two empirical measures of equal size (assignment problem).
- ``mmd_rbf``: unbiased MMD² with a Gaussian kernel, median-heuristic bandwidth.
- ``histogram_tv``: total variation between binned samples and exact bin masses (d = 1, 2).
- ``mode_weights``: recovery of mixture weights from component labels (TV, KL, EMC,
  forgotten modes).
- ``gaussian_w2``, ``gaussian_kl``: closed forms between Gaussians (exact-law checks,
  no sampling noise).

A sample-based metric is never zero between two finite sample sets of the same law:
``noise_floor`` measures its value between two independent exact sample sets of the same
size, which is the level below which a sampler's error cannot be seen.
"""

from typing import NamedTuple

import numpy as np
from scipy.linalg import LinAlgError, cholesky, solve_triangular
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist, pdist

__all__ = [
    "squared_bias",
    "grads_to_accuracy",
    "sliced_w2",
    "w2_exact",
    "gaussian_w2",
    "gaussian_kl",
    "mmd_rbf",
    "ModeWeights",
    "mode_weights",
    "histogram_tv",
    "NoiseFloor",
    "noise_floor",
]

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


# ---------------------------------------------------------------------------------------
# Distribution metrics
# ---------------------------------------------------------------------------------------

_BLOCK_ELEMENTS = 2**22  # floats per temporary block (32 MiB) in sliced_w2 and mmd_rbf
W2_EXACT_MAX_N = 3000  # largest sample size w2_exact accepts
_MEDIAN_MAX_POINTS = 4000  # pooled points used by the median heuristic


def _samples(a, name):
    """``a`` as a float array of shape (n, d), or ValueError naming it."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of samples, shape (n, d); got shape {a.shape} "
            "(reshape 1-D samples with a[:, None])"
        )
    if a.shape[0] == 0:
        raise ValueError(f"{name} has no samples")
    return a


def _sample_pair(x, y):
    """Two sample arrays of the same dimension d."""
    x, y = _samples(x, "x"), _samples(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"y must have the dimension of x: x has shape {x.shape}, y has shape {y.shape}"
        )
    return x, y


def _quantile_grid(n, m):
    """Exact 1-D W2² between empirical measures of sizes n and m as a weighted sum.

    The quantile functions of the two measures are step functions on (0, 1] with steps at
    i/n and j/m. On each piece of the merged grid both are constant, so
    W2² = sum_k width_k (x_(ix_k) - y_(iy_k))² for the sorted samples x_(.), y_(.).
    Grid levels are kept as integers over the common denominator n·m (no rounding).

    Returns
    -------
    ix, iy : ndarray of int, shape (L,)
    width : ndarray, shape (L,)
    """
    levels = np.union1d(np.arange(1, n + 1) * m, np.arange(1, m + 1) * n)
    width = np.diff(levels, prepend=0) / (n * m)
    return -(-levels // m) - 1, -(-levels // n) - 1, width


def sliced_w2(x, y, n_projections=1000, seed=0):
    """Sliced 2-Wasserstein distance between two empirical measures.

    SW2(μ, ν) = (E_θ W2²(θ#μ, θ#ν))^{1/2} with θ uniform on the unit sphere, the
    expectation replaced by the mean over ``n_projections`` random directions (the
    semantics of POT's ``ot.sliced_wasserstein_distance(x, y, n_projections=..., p=2)``;
    the directions themselves differ from POT's for the same seed). Each 1-D W2 is exact:
    sorted samples, matched by quantiles on the merged grid {i/n} ∪ {j/m} when n ≠ m.

    Parameters
    ----------
    x : ndarray, shape (n, d)
    y : ndarray, shape (m, d)
    n_projections : int
        Number of random directions; their Monte Carlo error is relative, of order
        n_projections^{-1/2}.
    seed : int
        Seed of the directions (the same seed gives the same directions for any x, y).

    Returns
    -------
    float
    """
    x, y = _sample_pair(x, y)
    if int(n_projections) != n_projections or n_projections < 1:
        raise ValueError(f"n_projections must be a positive integer, got {n_projections!r}")
    n, d = x.shape
    m = y.shape[0]
    theta = np.random.default_rng(seed).standard_normal((int(n_projections), d))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    ix, iy, width = _quantile_grid(n, m)
    step = max(1, _BLOCK_ELEMENTS // (n + m + ix.size))
    w2_squared = np.empty(theta.shape[0])
    for start in range(0, theta.shape[0], step):
        directions = theta[start:start + step].T
        x_proj = np.sort(x @ directions, axis=0)
        y_proj = np.sort(y @ directions, axis=0)
        w2_squared[start:start + step] = width @ (x_proj[ix] - y_proj[iy]) ** 2
    return float(np.sqrt(w2_squared.mean()))


def w2_exact(x, y):
    """Exact 2-Wasserstein distance between two empirical measures of equal size.

    With uniform weights 1/n on both sides, the optimal transport plan can be taken to be a
    permutation (Birkhoff), so W2² = min_σ (1/n) Σ_i ‖x_i − y_σ(i)‖², solved by
    ``scipy.optimize.linear_sum_assignment`` on the squared distances. Time O(n³), memory
    O(n²).

    Parameters
    ----------
    x, y : ndarray, shape (n, d)
        n ≤ ``W2_EXACT_MAX_N`` (3000).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When the sizes differ (the assignment would no longer be the optimal plan; use
        ``sliced_w2``, or subsample to equal sizes) or exceed ``W2_EXACT_MAX_N`` (the
        n × n cost matrix and the O(n³) assignment become too expensive).
    """
    x, y = _sample_pair(x, y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"y must have as many samples as x ({x.shape[0]}), got {y.shape[0]}: with "
            "unequal sizes the optimal plan splits mass and is not an assignment"
        )
    if x.shape[0] > W2_EXACT_MAX_N:
        raise ValueError(
            f"x and y have {x.shape[0]} samples, more than W2_EXACT_MAX_N = {W2_EXACT_MAX_N}: "
            "the exact assignment costs O(n³) time and O(n²) memory; use sliced_w2 or "
            "subsample"
        )
    cost = cdist(x, y, "sqeuclidean")
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))


def _gaussian(mean, cov, which):
    """``mean`` (d,) and symmetric ``cov`` (d, d) as float arrays, or ValueError."""
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if mean.ndim != 1:
        raise ValueError(f"mean{which} must have shape (d,), got {mean.shape}")
    d = mean.shape[0]
    if cov.shape != (d, d):
        raise ValueError(f"cov{which} must have shape ({d}, {d}) like mean{which}, got {cov.shape}")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * np.abs(cov).max(initial=0.0)):
        raise ValueError(f"cov{which} must be symmetric")
    return mean, cov


def _gaussian_pair(mean1, cov1, mean2, cov2):
    mean1, cov1 = _gaussian(mean1, cov1, "1")
    mean2, cov2 = _gaussian(mean2, cov2, "2")
    if mean1.shape != mean2.shape:
        raise ValueError(
            f"mean2 must have the dimension of mean1: shapes {mean1.shape} and {mean2.shape}"
        )
    return mean1, cov1, mean2, cov2


def _psd_sqrt(cov):
    """Symmetric square root of a positive semidefinite matrix (eigenvalues clipped at 0)."""
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def gaussian_w2(mean1, cov1, mean2, cov2):
    """2-Wasserstein distance between N(mean1, cov1) and N(mean2, cov2), in closed form.

    W2² = ‖m1 − m2‖² + tr(S1 + S2 − 2 (S1^{1/2} S2 S1^{1/2})^{1/2}). The trace term (the
    squared Bures distance) is computed without cancellation as ‖A − B U‖_F², with
    A = S1^{1/2}, B = S2^{1/2} and U the orthogonal polar factor that maximizes
    tr(A B U) (from the SVD of A B). The result is ≥ 0, and for equal arguments it is
    0 up to rounding that scales like ε‖S‖^{1/2} (about 1e-12 at ‖S‖ = 1e4), where the
    trace formula as written loses half the digits, (ε‖S‖)^{1/2}.

    Parameters
    ----------
    mean1, mean2 : ndarray, shape (d,)
    cov1, cov2 : ndarray, shape (d, d)
        Symmetric positive semidefinite (tiny negative eigenvalues from rounding are
        clipped to 0).

    Returns
    -------
    float
    """
    mean1, cov1, mean2, cov2 = _gaussian_pair(mean1, cov1, mean2, cov2)
    root1, root2 = _psd_sqrt(cov1), _psd_sqrt(cov2)
    left, _, right_t = np.linalg.svd(root1 @ root2)
    rotation = right_t.T @ left.T
    bures_squared = np.sum((root1 - root2 @ rotation) ** 2)
    return float(np.sqrt(np.sum((mean1 - mean2) ** 2) + bures_squared))


def _cholesky(cov, name):
    try:
        return cholesky(cov, lower=True)
    except LinAlgError:
        raise ValueError(f"{name} must be positive definite") from None


def gaussian_kl(mean1, cov1, mean2, cov2):
    """Kullback-Leibler divergence KL(N(mean1, cov1) ‖ N(mean2, cov2)), in closed form.

    KL = ½ [tr(S2⁻¹ S1) + (m2 − m1)ᵀ S2⁻¹ (m2 − m1) − d + log det S2 − log det S1], computed
    from Cholesky factors. Pinsker's inequality turns it into a total-variation bound:
    TV ≤ (KL / 2)^{1/2}.

    Parameters
    ----------
    mean1, mean2 : ndarray, shape (d,)
    cov1, cov2 : ndarray, shape (d, d)
        Symmetric positive definite.

    Returns
    -------
    float
    """
    mean1, cov1, mean2, cov2 = _gaussian_pair(mean1, cov1, mean2, cov2)
    chol1, chol2 = _cholesky(cov1, "cov1"), _cholesky(cov2, "cov2")
    trace_term = np.sum(solve_triangular(chol2, chol1, lower=True) ** 2)
    mahalanobis = np.sum(solve_triangular(chol2, mean2 - mean1, lower=True) ** 2)
    log_det_ratio = 2 * (np.log(np.diag(chol2)).sum() - np.log(np.diag(chol1)).sum())
    return float(0.5 * (trace_term + mahalanobis - mean1.shape[0] + log_det_ratio))


def _rbf_sum(a, b, bandwidth):
    """Σ_ij exp(−‖a_i − b_j‖² / (2 bandwidth²)), in blocks of rows of ``a``."""
    rows = max(1, _BLOCK_ELEMENTS // b.shape[0])
    total = 0.0
    for start in range(0, a.shape[0], rows):
        squared = cdist(a[start:start + rows], b, "sqeuclidean")
        total += np.exp(squared / (-2.0 * bandwidth**2)).sum()
    return total


def mmd_rbf(x, y, bandwidth=None):
    """Unbiased estimate of the squared maximum mean discrepancy, Gaussian kernel.

    With k(z, z′) = exp(−‖z − z′‖² / (2ℓ²)),
    MMD² = Σ_{i≠i′} k(x_i, x_i′) / (n(n−1)) + Σ_{j≠j′} k(y_j, y_j′) / (m(m−1))
    − 2 Σ_ij k(x_i, y_j) / (nm).
    The estimate is unbiased for a fixed ℓ, so it fluctuates around 0 (and can be negative)
    when x and y come from the same law. Kernel sums run in blocks: memory stays bounded,
    time is O((n + m)² d).

    Parameters
    ----------
    x : ndarray, shape (n, d)
    y : ndarray, shape (m, d)
        n, m ≥ 2.
    bandwidth : float, optional
        ℓ. Default: the median heuristic, the median of the nonzero pairwise distances
        ‖z − z′‖ over the pooled sample x ∪ y (over a fixed random subset of 4000 pooled
        points when there are more). Pass a fixed ℓ when comparing several samplers.

    Returns
    -------
    float
    """
    x, y = _sample_pair(x, y)
    n, m = x.shape[0], y.shape[0]
    if min(n, m) < 2:
        raise ValueError(f"x and y need at least 2 samples each, got n = {n}, m = {m}")
    if bandwidth is None:
        pooled = np.concatenate([x, y])
        if pooled.shape[0] > _MEDIAN_MAX_POINTS:
            subset = np.random.default_rng(0).choice(pooled.shape[0], _MEDIAN_MAX_POINTS, False)
            pooled = pooled[subset]
        distances = pdist(pooled)
        distances = distances[distances > 0]
        if distances.size == 0:
            raise ValueError("bandwidth: all pooled samples coincide; pass a bandwidth")
        bandwidth = float(np.median(distances))
    elif not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth!r}")
    # k(z, z) = 1: subtracting n (m) removes the diagonal from the within-sample sums
    within_x = (_rbf_sum(x, x, bandwidth) - n) / (n * (n - 1))
    within_y = (_rbf_sum(y, y, bandwidth) - m) / (m * (m - 1))
    return float(within_x + within_y - 2 * _rbf_sum(x, y, bandwidth) / (n * m))


class ModeWeights(NamedTuple):
    """Mixture-weight recovery; see ``mode_weights``."""

    estimated: np.ndarray
    tv: float
    kl: float
    emc: float
    forgotten: float
    standard_errors: np.ndarray


def mode_weights(labels, weights):
    """How well a sample reproduces the weights of a mixture's components.

    Each sample carries the label k̂ of the component it is assigned to (typically
    argmax_k log N(x; μ_k, Σ_k)); ŵ_k = #{i : k̂_i = k} / n.

    Parameters
    ----------
    labels : ndarray of int, shape (n,)
        Component labels in 0, ..., K − 1.
    weights : ndarray, shape (K,)
        True component weights, positive, summing to 1.

    Returns
    -------
    ModeWeights
        ``estimated`` : ndarray, shape (K,), ŵ.
        ``tv`` : ``½ Σ_k |ŵ_k − w_k|``, with the ½ (total variation between the weight
        vectors, in [0, 1]; the sde_sampler fork's ``tv_weights`` omits the ½).
        ``kl`` : Σ_k w_k log(w_k / ŵ_k), inf when a mode received no sample.
        ``emc`` : entropic mode coverage −Σ_k ŵ_k log ŵ_k / log K (0 log 0 = 0); 1 when all
        modes are covered evenly, 0 when one mode takes every sample; 1 when K = 1.
        ``forgotten`` : fraction of modes with ŵ_k < 0.05 · min_k w_k.
        ``standard_errors`` : ndarray, shape (K,), sqrt(w_k (1 − w_k) / n), the binomial
        standard deviation of ŵ_k for exact i.i.d. samples.
    """
    labels = np.asarray(labels)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or weights.size == 0:
        raise ValueError(f"weights must have shape (K,), got {weights.shape}")
    if np.any(weights <= 0) or abs(weights.sum() - 1) > 1e-6:
        raise ValueError(f"weights must be positive and sum to 1, got sum {weights.sum()}")
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must have shape (n,) with n ≥ 1, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    k = weights.size
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must lie in 0, ..., {k - 1} (K = weights.size)")
    n = labels.size
    estimated = np.bincount(labels, minlength=k) / n
    with np.errstate(divide="ignore"):
        kl = float(np.sum(weights * np.log(weights / estimated)))
    present = estimated[estimated > 0]
    emc = float(-np.sum(present * np.log(present)) / np.log(k)) if k > 1 else 1.0
    return ModeWeights(
        estimated=estimated,
        tv=float(0.5 * np.abs(estimated - weights).sum()),
        kl=kl,
        emc=emc,
        forgotten=float(np.mean(estimated < 0.05 * weights.min())),
        standard_errors=np.sqrt(weights * (1 - weights) / n),
    )


def histogram_tv(x, bin_edges, exact_mass):
    """Total variation between the binned sample and exact bin masses, with an overflow bin.

    ``TV = ½ (Σ_b |p̂_b − p_b| + |p̂_out − p_out|)``, where p̂_b is the fraction of the samples in
    bin b, p_b the exact mass of bin b, and the overflow bin holds what lies outside the
    grid: p̂_out = 1 − Σ_b p̂_b, p_out = 1 − Σ_b p_b. Bins are [e_k, e_{k+1}) except the last
    along each axis, which is closed (numpy's convention); for a law with a density the
    exact masses are unaffected. Intended for d = 1, 2 (the grid has Π_i B_i bins).

    Its noise floor is its value for exact samples of the same size: for n samples it is
    about ½ Σ_b (2 p_b (1 − p_b) / (π n))^{1/2}, the sum running over the overflow bin too.

    Parameters
    ----------
    x : ndarray, shape (n,) or (n, d)
    bin_edges : ndarray, shape (B + 1,), when x has shape (n,); otherwise a sequence of d
        arrays of shapes (B_1 + 1,), ..., (B_d + 1,). Strictly increasing.
    exact_mass : ndarray, shape (B,) or (B_1, ..., B_d)
        Exact probability of each bin (e.g. differences of the normal CDF at the edges,
        or products of them across axes); nonnegative, summing to at most 1.

    Returns
    -------
    float
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x, bin_edges = x[:, None], [bin_edges]
    elif x.ndim != 2:
        raise ValueError(f"x must have shape (n,) or (n, d), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("x has no samples")
    if len(bin_edges) != x.shape[1]:
        raise ValueError(
            f"bin_edges must hold one edge array per dimension of x ({x.shape[1]}), "
            f"got {len(bin_edges)}"
        )
    edges = [np.asarray(e, dtype=np.float64) for e in bin_edges]
    for e in edges:
        if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
            raise ValueError("bin_edges must be strictly increasing 1-D arrays of ≥ 2 edges")
    exact_mass = np.asarray(exact_mass, dtype=np.float64)
    bins = tuple(e.size - 1 for e in edges)
    if exact_mass.shape != bins:
        raise ValueError(
            f"exact_mass must have shape {bins} (bins per axis), got {exact_mass.shape}"
        )
    if np.any(exact_mass < 0) or exact_mass.sum() > 1 + 1e-9:
        raise ValueError("exact_mass must be nonnegative with total at most 1")
    counts, _ = np.histogramdd(x, bins=edges)
    empirical = counts / x.shape[0]
    overflow_gap = (1 - empirical.sum()) - max(0.0, 1 - exact_mass.sum())
    return float(0.5 * (np.abs(empirical - exact_mass).sum() + abs(overflow_gap)))


class NoiseFloor(NamedTuple):
    """A metric between independent exact sample sets; see ``noise_floor``."""

    mean: float
    sd: float
    values: np.ndarray


def noise_floor(metric, sampler, n, repeats=5, seed=0):
    """Value of a two-sample metric between two independent exact sample sets of size n.

    A sampler's metric value is only meaningful above this floor (for W2, of order
    n^{-1/d}; for sliced W2 and MMD, of order n^{-1/2}).

    Parameters
    ----------
    metric : callable
        ``metric(x, y) -> float`` for x, y of shape (n, d), e.g. ``sliced_w2``, ``w2_exact``,
        ``mmd_rbf`` (wrap others with functools.partial or a lambda; a one-sample metric
        such as ``histogram_tv`` may ignore y).
    sampler : callable
        ``sampler(n, seed) -> ndarray, shape (n, d)``, exact draws from the target; called
        with 2 · repeats distinct integer seeds derived from ``seed``.
    n : int
        Size of each sample set.
    repeats : int
        Number of independent pairs, ≥ 2.
    seed : int

    Returns
    -------
    NoiseFloor
        ``mean`` and ``sd`` (ddof = 1) of the metric over the repeats, and the ``values``,
        ndarray of shape (repeats,).
    """
    if int(repeats) != repeats or repeats < 2:
        raise ValueError(f"repeats must be an integer ≥ 2, got {repeats!r}")
    seeds = np.random.SeedSequence(seed).generate_state(2 * int(repeats))
    values = np.array(
        [
            metric(sampler(n, int(seeds[2 * r])), sampler(n, int(seeds[2 * r + 1])))
            for r in range(int(repeats))
        ],
        dtype=np.float64,
    )
    return NoiseFloor(mean=float(values.mean()), sd=float(values.std(ddof=1)), values=values)
