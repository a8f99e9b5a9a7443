"""Sample-based distribution metrics (lcsample.metrics) against exact answers.

Statistical checks use fixed seeds and a tolerance of Z = 4.5 standard errors, the errors
either derived in closed form (stated next to each test) or measured as the metric's noise
floor between independent exact sample sets.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.linalg import sqrtm
from scipy.stats import multivariate_normal, norm

from lcsample.metrics import (
    gaussian_kl,
    gaussian_w2,
    histogram_tv,
    mmd_rbf,
    mode_weights,
    noise_floor,
    sliced_w2,
    w2_exact,
)

Z = 4.5
finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


def standard_normal_sampler(d):
    return lambda n, seed: np.random.default_rng(seed).standard_normal((n, d))


def spd_matrices(d):
    """Random SPD matrices B Bᵀ + 0.1 I from entries of B in [-2, 2]."""
    entries = arrays(np.float64, (d, d), elements=st.floats(-2, 2, allow_nan=False))
    return entries.map(lambda b: b @ b.T + 0.1 * np.eye(d))


# --- sliced_w2 ---------------------------------------------------------------------------


def test_sliced_w2_mean_shift():
    """N(0, I) against N(δ, I): SW2² = E_θ (θ·δ)² = ‖δ‖²/d, plus the sampling floor.

    Errors of SW2² (d = 3, where (θ·δ)²/‖δ‖² = u² with u uniform on [-1, 1]):
    directions, ‖δ‖² sd(u²) / P^{1/2} with var(u²) = 4/45; sample means, the cross term
    (2/d) δ·(x̄ − ȳ) with sd (2/d) ‖δ‖ (2/n)^{1/2}. The floor (SW2² of two exact sets)
    is a positive bias, allowed for in full.
    """
    d, n, projections = 3, 4000, 2000
    delta = np.array([1.0, -2.0, 0.5])
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, d))
    y = rng.standard_normal((n, d)) + delta
    sw2_squared = sliced_w2(x, y, n_projections=projections, seed=3) ** 2
    norm2 = delta @ delta
    se = np.hypot(norm2 * np.sqrt(4 / 45 / projections), 2 / d * np.sqrt(norm2 * 2 / n))
    floor = noise_floor(
        lambda a, b: sliced_w2(a, b, n_projections=200), standard_normal_sampler(d), n, 3
    )
    assert abs(sw2_squared - norm2 / d) < Z * se + floor.mean**2
    assert floor.mean**2 < 0.01 * norm2 / d  # the floor is small against the signal


def test_sliced_w2_identities():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 4)), rng.standard_normal((200, 4)) * 2
    assert sliced_w2(x, x) == 0.0
    assert sliced_w2(x, y) == pytest.approx(sliced_w2(y, x), rel=1e-12)
    assert sliced_w2(x[rng.permutation(300)], y[rng.permutation(200)]) == pytest.approx(
        sliced_w2(x, y), rel=1e-12
    )
    assert sliced_w2(x, y, seed=1) != sliced_w2(x, y, seed=2)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12).flatmap(lambda n: arrays(np.float64, n, elements=finite)),
    st.integers(1, 12).flatmap(lambda m: arrays(np.float64, m, elements=finite)),
)
def test_sliced_w2_is_exact_w2_in_1d_for_any_sizes(x, y):
    """In d = 1 every direction is ±1, so SW2 = W2. With unequal sizes n, m the empirical
    measures equal the ones that repeat each x_i m/g and each y_j n/g times (g = gcd),
    which have equal sizes and are matched exactly by w2_exact."""
    n, m = x.size, y.size
    g = np.gcd(n, m)
    expected = w2_exact(np.repeat(x, m // g)[:, None], np.repeat(y, n // g)[:, None])
    assert sliced_w2(x[:, None], y[:, None], n_projections=3) == pytest.approx(
        expected, rel=1e-9, abs=1e-9
    )


# --- w2_exact ----------------------------------------------------------------------------


def test_w2_exact_1d_is_sorted_matching():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(400), rng.exponential(size=400)
    expected = np.sqrt(np.mean((np.sort(x) - np.sort(y)) ** 2))
    assert w2_exact(x[:, None], y[:, None]) == pytest.approx(expected, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    arrays(np.float64, (30, 3), elements=finite),
    arrays(np.float64, 3, elements=finite),
    arrays(np.float64, (30, 3), elements=finite),
)
def test_w2_exact_translation_and_symmetry(x, delta, y):
    """W2(μ, μ + δ) = ‖δ‖ for any μ: the cross term averages to 0 over a permutation."""
    assert w2_exact(x, x + delta) == pytest.approx(np.linalg.norm(delta), rel=1e-9, abs=1e-9)
    assert w2_exact(x, y) == pytest.approx(w2_exact(y, x), rel=1e-12, abs=1e-12)


def test_w2_exact_rejects_unequal_or_large_sizes():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="as many samples"):
        w2_exact(rng.standard_normal((10, 2)), rng.standard_normal((11, 2)))
    big = np.zeros((3001, 1))
    with pytest.raises(ValueError, match="W2_EXACT_MAX_N"):
        w2_exact(big, big)


# --- gaussian_w2, gaussian_kl ------------------------------------------------------------


def test_gaussian_w2_closed_forms():
    rng = np.random.default_rng(3)
    b = rng.standard_normal((4, 4))
    cov = b @ b.T + np.eye(4)
    m1, m2 = rng.standard_normal(4), rng.standard_normal(4)
    assert gaussian_w2(m1, cov, m1, cov) < 1e-12
    assert gaussian_w2(m1, cov, m2, cov) == pytest.approx(np.linalg.norm(m1 - m2), rel=1e-10)
    a, c = np.array([0.5, 1.0, 4.0, 9.0]), np.array([2.0, 1.0, 1.0, 0.25])
    expected = np.sqrt(np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(c)) ** 2))
    assert gaussian_w2(m1, np.diag(a), m2, np.diag(c)) == pytest.approx(expected, rel=1e-12)
    # d = 1: W2² = (m1 − m2)² + (s1 − s2)²
    assert gaussian_w2([1.0], [[4.0]], [-1.0], [[0.25]]) == pytest.approx(np.hypot(2, 1.5))
    # a singular covariance (point mass along one axis) is allowed
    assert gaussian_w2([0, 0], np.diag([1.0, 0.0]), [0, 0], np.eye(2)) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(
    spd_matrices(3), spd_matrices(3), spd_matrices(3), arrays(np.float64, (3, 3), elements=finite)
)
def test_gaussian_w2_metric_properties(s1, s2, s3, means):
    m1, m2, m3 = means
    w12, w21 = gaussian_w2(m1, s1, m2, s2), gaussian_w2(m2, s2, m1, s1)
    assert w12 >= 0
    assert w12 == pytest.approx(w21, rel=1e-8, abs=1e-10)
    assert w12 <= gaussian_w2(m1, s1, m3, s3) + gaussian_w2(m3, s3, m2, s2) + 1e-9
    # against the textbook formula with scipy's general matrix square root
    root1 = sqrtm(s1).real
    bures2 = np.trace(s1 + s2 - 2 * sqrtm(root1 @ s2 @ root1).real)
    assert w12**2 == pytest.approx(np.sum((m1 - m2) ** 2) + bures2, rel=1e-7, abs=1e-8)


def test_gaussian_kl_against_1d_formula_and_monte_carlo():
    m1, s1, m2, s2 = 0.3, 1.5, -0.4, 0.8
    expected_1d = np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    assert gaussian_kl([m1], [[s1**2]], [m2], [[s2**2]]) == pytest.approx(expected_1d, rel=1e-12)

    rng = np.random.default_rng(4)
    b1, b2 = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    cov1, cov2 = b1 @ b1.T + np.eye(3), b2 @ b2.T + np.eye(3)
    mean1, mean2 = rng.standard_normal(3), rng.standard_normal(3)
    draws = rng.multivariate_normal(mean1, cov1, size=200_000)
    log_ratio = multivariate_normal(mean1, cov1).logpdf(draws) - multivariate_normal(
        mean2, cov2
    ).logpdf(draws)
    se = log_ratio.std(ddof=1) / np.sqrt(log_ratio.size)
    assert abs(gaussian_kl(mean1, cov1, mean2, cov2) - log_ratio.mean()) < Z * se
    assert gaussian_kl(mean1, cov1, mean1, cov1) == pytest.approx(0.0, abs=1e-12)


# --- mmd_rbf -----------------------------------------------------------------------------


def naive_mmd2(x, y, bandwidth):
    def k(a, b):
        return np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * bandwidth**2))

    kxx, kyy = k(x, x), k(y, y)
    n, m = len(x), len(y)
    return (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * k(x, y).mean()
    )


def test_mmd_rbf_matches_direct_formula_and_median_heuristic():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((40, 2)), rng.standard_normal((30, 2)) + 0.5
    y[:5] = x[:5]  # duplicated points: zero distances are left out of the median
    assert mmd_rbf(x, y, bandwidth=0.7) == pytest.approx(naive_mmd2(x, y, 0.7), rel=1e-12)
    pooled = np.concatenate([x, y])
    distances = np.linalg.norm(pooled[:, None] - pooled[None], axis=-1)
    median = np.median(distances[np.triu_indices(70, 1)][distances[np.triu_indices(70, 1)] > 0])
    assert mmd_rbf(x, y) == pytest.approx(naive_mmd2(x, y, median), rel=1e-12)


def test_mmd_rbf_same_law_unbiased_and_shift_against_population_value():
    """Population MMD² between N(0, I_d) and N(δ, I_d) with bandwidth ℓ:
    2 c (1 − exp(−‖δ‖² / (2(ℓ² + 2)))), c = (ℓ² / (ℓ² + 2))^{d/2}."""
    d, n, bandwidth = 2, 500, 1.0
    sampler = standard_normal_sampler(d)
    floor = noise_floor(lambda a, b: mmd_rbf(a, b, bandwidth), sampler, n, repeats=20)
    assert abs(floor.mean) < Z * floor.sd / np.sqrt(20)  # unbiased under the null

    delta = np.array([0.5, 0.0])
    shifted = noise_floor(
        lambda a, b: mmd_rbf(a, b + delta, bandwidth), sampler, n, repeats=20, seed=1
    )
    c = (bandwidth**2 / (bandwidth**2 + 2)) ** (d / 2)
    truth = 2 * c * (1 - np.exp(-(delta @ delta) / (2 * (bandwidth**2 + 2))))
    assert abs(shifted.mean - truth) < Z * shifted.sd / np.sqrt(20)
    assert shifted.mean > floor.mean + 10 * floor.sd

    # median-heuristic bandwidth: a single same-law pair lies within its floor
    rng = np.random.default_rng(6)
    median_floor = noise_floor(mmd_rbf, sampler, n, repeats=10)
    value = mmd_rbf(rng.standard_normal((n, d)), rng.standard_normal((n, d)))
    assert abs(value - median_floor.mean) < Z * median_floor.sd


# --- mode_weights ------------------------------------------------------------------------


def labels_with_counts(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_mode_weights_exact_values():
    w = np.array([0.1, 0.2, 0.3, 0.4])
    exact = mode_weights(labels_with_counts([10, 20, 30, 40]), w)
    np.testing.assert_allclose(exact.estimated, w)
    assert exact.tv == pytest.approx(0.0, abs=1e-15)
    assert exact.kl == pytest.approx(0.0, abs=1e-15)
    assert exact.emc == pytest.approx(-np.sum(w * np.log(w)) / np.log(4))
    assert exact.forgotten == 0.0
    np.testing.assert_allclose(exact.standard_errors, np.sqrt(w * (1 - w) / 100))

    off = mode_weights(labels_with_counts([20, 20, 30, 30]), w)
    assert off.tv == pytest.approx(0.5 * (0.1 + 0.0 + 0.0 + 0.1))
    assert off.kl == pytest.approx(0.1 * np.log(0.5) + 0.4 * np.log(0.4 / 0.3))

    missing = mode_weights(labels_with_counts([0, 25, 25, 50]), w)
    assert missing.tv == pytest.approx(0.15)
    assert missing.kl == np.inf
    assert missing.emc == pytest.approx(0.75)  # (½ log 4 + ½ log 2) / log 4
    assert missing.forgotten == 0.25

    # a mode with ŵ below 5 % of the smallest weight (here 0.0125) counts as forgotten
    rare = mode_weights(labels_with_counts([13, 387, 300, 300]), np.full(4, 0.25))
    assert rare.forgotten == 0.0
    rare = mode_weights(labels_with_counts([12, 388, 300, 300]), np.full(4, 0.25))
    assert rare.forgotten == 0.25 and np.isfinite(rare.kl)
    assert mode_weights(labels_with_counts([5, 5]), [0.5, 0.5]).emc == pytest.approx(1.0)
    assert mode_weights(labels_with_counts([10, 0]), [0.5, 0.5]).emc == 0.0


def test_mode_weights_binomial_errors_hold_for_exact_labels():
    w = np.array([0.5, 0.3, 0.15, 0.05])
    labels = np.random.default_rng(7).choice(4, size=5000, p=w)
    result = mode_weights(labels, w)
    assert np.all(np.abs(result.estimated - w) < Z * result.standard_errors)


def test_mode_weights_rejects_bad_inputs():
    w = [0.5, 0.5]
    with pytest.raises(ValueError, match="labels"):
        mode_weights(np.array([0, 2]), w)
    with pytest.raises(ValueError, match="labels"):
        mode_weights(np.array([0.0, 1.0]), w)
    with pytest.raises(ValueError, match="labels"):
        mode_weights(np.zeros((2, 2), dtype=int), w)
    with pytest.raises(ValueError, match="weights"):
        mode_weights(np.array([0, 1]), [0.5, 0.6])
    with pytest.raises(ValueError, match="weights"):
        mode_weights(np.array([0, 1]), [1.0, 0.0])


# --- histogram_tv ------------------------------------------------------------------------


def test_histogram_tv_hand_example():
    # p̂ = (¼, ½), one sample in the overflow bin; p = (½, ½), no overflow mass
    assert histogram_tv([0.5, 1.5, 1.5, 5.0], [0.0, 1.0, 2.0], [0.5, 0.5]) == pytest.approx(0.25)
    # exact mass missing from the grid goes to the overflow bin
    assert histogram_tv([0.5, 1.5], [0.0, 1.0, 2.0], [0.25, 0.25]) == pytest.approx(0.5)


def test_histogram_tv_gaussian_1d_floor_and_shift():
    """Exact samples: mean TV over repeats ≈ ½ Σ_b (2 p_b (1 − p_b) / (π n))^{1/2} (normal
    approximation of |p̂_b − p_b|, all n p_b ≥ 30 here, allowed 5 %). A shift s gives the binned TV
    between N(s, 1) and N(0, 1), up to the floor."""
    n, repeats = 20_000, 20
    edges = np.linspace(-3, 3, 25)
    mass = np.diff(norm.cdf(edges))
    all_bins = np.append(mass, 1 - mass.sum())

    def sampler(size, seed):
        return np.random.default_rng(seed).standard_normal((size, 1))

    floor = noise_floor(lambda a, _: histogram_tv(a[:, 0], edges, mass), sampler, n, repeats)
    expected_floor = 0.5 * np.sum(np.sqrt(2 * all_bins * (1 - all_bins) / (np.pi * n)))
    approximation = 0.05 * expected_floor  # the normal approximation of the binomial
    assert abs(floor.mean - expected_floor) < Z * floor.sd / np.sqrt(repeats) + approximation

    shift = 0.2
    shifted_mass = np.diff(norm.cdf(edges - shift))
    shifted_all = np.append(shifted_mass, 1 - shifted_mass.sum())
    truth = 0.5 * np.abs(shifted_all - all_bins).sum()
    x = sampler(n, 123)[:, 0] + shift
    assert abs(histogram_tv(x, edges, mass) - truth) < floor.mean + Z * floor.sd


def test_histogram_tv_gaussian_2d_within_floor():
    n = 20_000
    ex, ey = np.linspace(-2.5, 2.5, 11), np.linspace(-2, 3, 9)
    scale_y = 1.5
    mass = np.outer(np.diff(norm.cdf(ex)), np.diff(norm.cdf(ey, scale=scale_y)))

    def sampler(size, seed):
        return np.random.default_rng(seed).standard_normal((size, 2)) * [1.0, scale_y]

    floor = noise_floor(lambda a, _: histogram_tv(a, [ex, ey], mass), sampler, n, repeats=10)
    assert histogram_tv(sampler(n, 99), [ex, ey], mass) < floor.mean + Z * floor.sd
    # the transposed law is clearly far
    assert histogram_tv(sampler(n, 99)[:, ::-1], [ex, ey], mass) > floor.mean + 10 * floor.sd


def test_histogram_tv_rejects_bad_inputs():
    edges, mass = [0.0, 1.0, 2.0], [0.5, 0.5]
    with pytest.raises(ValueError, match="exact_mass"):
        histogram_tv([0.5], edges, [1.0])
    with pytest.raises(ValueError, match="exact_mass"):
        histogram_tv([0.5], edges, [0.7, 0.7])
    with pytest.raises(ValueError, match="bin_edges"):
        histogram_tv([0.5], [0.0, 2.0, 1.0], mass)
    with pytest.raises(ValueError, match="bin_edges"):
        histogram_tv(np.zeros((3, 2)), [edges], mass)
    with pytest.raises(ValueError, match="x"):
        histogram_tv(np.zeros((3, 2, 1)), edges, mass)


# --- noise_floor -------------------------------------------------------------------------


def test_noise_floor_decreases_with_n():
    """SW2 between two exact sets scales like n^{-1/2}: a factor ≈ 10^{1/2} from 200 to 2000."""
    sampler = standard_normal_sampler(3)

    def metric(a, b):
        return sliced_w2(a, b, n_projections=200)

    small, large = noise_floor(metric, sampler, 200), noise_floor(metric, sampler, 2000)
    assert large.mean < small.mean / 2
    assert small.values.shape == (5,) and small.sd > 0
    np.testing.assert_array_equal(noise_floor(metric, sampler, 200).values, small.values)


def test_noise_floor_uses_distinct_seeds():
    seen = []

    def sampler(n, seed):
        seen.append(seed)
        return np.zeros((n, 1))

    noise_floor(lambda a, b: 0.0, sampler, 3, repeats=4, seed=9)
    assert len(set(seen)) == 8 and all(isinstance(s, int) for s in seen)
    with pytest.raises(ValueError, match="repeats"):
        noise_floor(lambda a, b: 0.0, sampler, 3, repeats=1)


# --- input validation --------------------------------------------------------------------


@pytest.mark.parametrize("metric", [sliced_w2, w2_exact, mmd_rbf])
def test_two_sample_metrics_reject_bad_shapes(metric):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((10, 3))
    with pytest.raises(ValueError, match="y must have the dimension of x"):
        metric(x, rng.standard_normal((10, 2)))
    with pytest.raises(ValueError, match="x must be a 2-D array"):
        metric(x[:, 0], x)
    with pytest.raises(ValueError, match="y must be a 2-D array"):
        metric(x, x[None])


def test_scalar_arguments_rejected():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="n_projections"):
        sliced_w2(x, x, n_projections=0)
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_rbf(x, x + 1, bandwidth=-1.0)
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_rbf(x, x)  # all points coincide: the median heuristic is undefined
    with pytest.raises(ValueError, match="at least 2"):
        mmd_rbf(x[:1], x)


@pytest.mark.parametrize("function", [gaussian_w2, gaussian_kl])
def test_gaussian_metrics_reject_bad_shapes(function):
    eye = np.eye(2)
    with pytest.raises(ValueError, match="cov1"):
        function(np.zeros(2), np.eye(3), np.zeros(2), eye)
    with pytest.raises(ValueError, match="mean2"):
        function(np.zeros(2), eye, np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="mean1"):
        function(np.zeros((2, 1)), eye, np.zeros(2), eye)
    with pytest.raises(ValueError, match="cov2"):
        function(np.zeros(2), eye, np.zeros(2), [[1.0, 0.5], [0.0, 1.0]])


def test_gaussian_kl_needs_positive_definite():
    with pytest.raises(ValueError, match="cov2 must be positive definite"):
        gaussian_kl(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, 0.0]))
