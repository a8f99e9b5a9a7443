"""The analytic diffusion testbed against truth computed independently.

Scores against finite differences of the density, the compiled score against the NumPy
one, Tweedie against a posterior mean assembled from SciPy densities and linear solves,
exact samples against closed-form moments, and the Gaussian flow map against the
probability-flow ODE it solves.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax
from scipy.stats import multivariate_normal

from lcsample.diffusion.process import alpha, sigma2
from lcsample.diffusion.testbed import (
    GaussianData,
    GaussianMixture,
    grid_mixture,
    ill_conditioned_gaussian,
    two_modes,
)

TIMES = [0.0, 1e-3, 0.1, 1.0, 5.0]
seeds = st.integers(0, 2**32 - 1)


def _random_mixture(seed, isotropic, n_comp=3, d=3):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.2, 1.0, n_comp)
    means = 2.0 * rng.standard_normal((n_comp, d))
    if isotropic:
        return GaussianMixture(weights / weights.sum(), means,
                               scales=rng.uniform(0.3, 2.0, n_comp))
    a = rng.standard_normal((n_comp, d, d))
    covs = 0.5 * a @ a.transpose(0, 2, 1) + 0.1 * np.eye(d)
    return GaussianMixture(weights / weights.sum(), means, covs=covs)


def _random_gaussian(seed, d=4):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d))
    return GaussianData(rng.standard_normal(d), a @ a.T + 0.05 * np.eye(d))


def _component_covs(mix):
    if mix.isotropic:
        return mix.scales[:, None, None] ** 2 * np.eye(mix.dim)
    return mix.covs


def _moment_z(x, mean, cov):
    """Largest |z| of the sample mean and of the sample covariance entries.

    Deviations are taken from the true mean, so each product's expectation is exactly the
    covariance entry; its standard error comes from the products' own spread.
    """
    n = x.shape[0]
    dev = x - mean
    z_mean = dev.mean(axis=0) / np.sqrt(np.diag(cov) / n)
    prods = dev[:, :, None] * dev[:, None, :]
    z_cov = (prods.mean(axis=0) - cov) / (prods.std(axis=0) / np.sqrt(n))
    return max(np.abs(z_mean).max(), np.abs(z_cov).max())


# -- score ------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=seeds, isotropic=st.booleans(), t=st.sampled_from(TIMES))
def test_score_is_the_gradient_of_logpdf_t(seed, isotropic, t):
    mix = _random_mixture(seed, isotropic)
    x = mix.sample_t(4, t, seed)
    h = 1e-5
    fd = np.empty_like(x)
    for j in range(mix.dim):
        step = np.zeros(mix.dim)
        step[j] = h
        fd[:, j] = (mix.logpdf_t(x + step, t) - mix.logpdf_t(x - step, t)) / (2 * h)
    score = mix.score(x, t)
    np.testing.assert_allclose(score, fd, rtol=1e-6, atol=1e-6 * (1 + np.abs(score).max()))


def test_logpdf_t_is_the_mixture_of_scipy_normals():
    mix = _random_mixture(3, isotropic=False)
    x = mix.sample_t(5, 0.4, 0)
    a, s2 = alpha(0.4), sigma2(0.4)
    expected = np.log(sum(
        w * multivariate_normal(a * m, a * a * c + s2 * np.eye(mix.dim)).pdf(x)
        for w, m, c in zip(mix.weights, mix.means, mix.covs, strict=True)))
    np.testing.assert_allclose(mix.logpdf_t(x, 0.4), expected, rtol=1e-12)


@pytest.mark.parametrize("isotropic", [True, False])
def test_per_row_times_match_one_time_at_a_time(isotropic):
    mix = _random_mixture(7, isotropic)
    t = np.array(TIMES)
    x = mix.sample_t(t.size, t, 1)
    rows = np.vstack([mix.score(x[i:i + 1], t[i]) for i in range(t.size)])
    # not bitwise: BLAS may sum a batch's products in another order
    np.testing.assert_allclose(mix.score(x, t), rows, rtol=1e-13, atol=1e-15)
    logp = np.concatenate([mix.logpdf_t(x[i:i + 1], t[i]) for i in range(t.size)])
    np.testing.assert_allclose(mix.logpdf_t(x, t), logp, rtol=1e-13)


def test_score_far_from_every_mode_is_finite_and_points_home():
    # log terms near -1e8 would underflow a plain softmax to 0/0
    mix = _random_mixture(2, isotropic=True)
    x = np.full((1, mix.dim), 1e4)
    for t in (1e-3, 1.0):
        score = mix.score(x, t)
        assert np.isfinite(score).all() and (score < 0).all()


@pytest.mark.parametrize("make", [
    lambda: _random_mixture(11, isotropic=True, n_comp=4, d=5),
    lambda: _random_mixture(12, isotropic=False, n_comp=4, d=5),
    lambda: ill_conditioned_gaussian(6, condition=1e4),
    lambda: grid_mixture(8),
], ids=["isotropic", "full", "gaussian", "grid"])
def test_score_kernel_equals_score(make):
    mix = make()
    rng = np.random.default_rng(0)
    t = np.repeat([0.0, 1e-3, 0.05, 0.7, 5.0, 20.0], 5)
    x = mix.sample_t(t.size, t, rng)
    x[-3:] += 30.0 * rng.standard_normal((3, mix.dim))  # far from every mode
    out = np.empty_like(x)
    mix.score_kernel(x, t, out, *mix.score_args)
    expected = mix.score(x, t)
    # relative to each row's largest entry: tiny entries of a large score carry its rounding
    scale = np.abs(expected).max(axis=1, keepdims=True)
    assert (np.abs(out - expected) <= 1e-12 * scale).all()


def test_score_kernel_is_chosen_by_the_constructor():
    iso, full = _random_mixture(0, True), _random_mixture(0, False)
    assert iso.score_kernel is not full.score_kernel
    assert len(iso.score_args) == 3 and len(full.score_args) == 4
    assert all(isinstance(a, np.ndarray) for a in iso.score_args + full.score_args)


# -- Tweedie ----------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(seed=seeds, isotropic=st.booleans(), t=st.sampled_from(TIMES))
def test_denoise_is_the_exact_posterior_mean(seed, isotropic, t):
    mix = _random_mixture(seed, isotropic)
    x = mix.sample_t(4, t, seed)
    a, s2, eye = alpha(t), sigma2(t), np.eye(mix.dim)
    logr, post = [], []
    for w, m, c in zip(mix.weights, mix.means, _component_covs(mix), strict=True):
        ct = a * a * c + s2 * eye
        logr.append(np.log(w) + multivariate_normal(a * m, ct).logpdf(x))
        # X_0 | X_t = x, component k: μ + α Σ C^{-1} (x - α μ)
        post.append(m + a * np.linalg.solve(ct, (x - a * m).T).T @ c)
    r = softmax(np.stack(logr, axis=1).reshape(x.shape[0], -1), axis=1)
    expected = np.einsum("nk,knd->nd", r, np.stack(post))
    np.testing.assert_allclose(mix.denoise(x, t), expected, rtol=1e-9,
                               atol=1e-9 * (1 + np.abs(expected).max()))


# -- exact samples and moments ----------------------------------------------------------


@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("t", [0.0, 0.5, 2.0])
def test_sample_t_matches_the_marginal_moments(isotropic, t):
    mix = _random_mixture(5, isotropic, d=4)
    x = mix.sample_t(20_000, t, 123)
    assert _moment_z(x, *mix.marginal(t)) <= 4.5


def test_sample_t_with_per_row_times():
    mix = _random_mixture(6, isotropic=False, d=3)
    t = np.tile([0.2, 1.5], 10_000)
    x = mix.sample_t(t.size, t, 9)
    for ti in (0.2, 1.5):
        assert _moment_z(x[t == ti], *mix.marginal(ti)) <= 4.5


def test_mixture_moments_are_exact():
    mix = _random_mixture(4, isotropic=True, n_comp=2, d=2)
    (w1, w2), (m1, m2), (s1, s2) = mix.weights, mix.means, mix.scales
    mean = w1 * m1 + w2 * m2
    second = w1 * (s1**2 * np.eye(2) + np.outer(m1, m1)) + w2 * (s2**2 * np.eye(2)
                                                                  + np.outer(m2, m2))
    np.testing.assert_allclose(mix.mean, mean, rtol=1e-14)
    np.testing.assert_allclose(mix.cov, second - np.outer(mean, mean), rtol=1e-12)
    mean_t, cov_t = mix.marginal(0.3)
    np.testing.assert_allclose(mean_t, alpha(0.3) * mean, rtol=1e-14)
    np.testing.assert_allclose(cov_t, alpha(0.3) ** 2 * mix.cov + sigma2(0.3) * np.eye(2),
                               rtol=1e-14)


def test_sample_is_reproducible_and_returns_components():
    mix = _random_mixture(8, isotropic=False)
    x, comp = mix.sample(50, 4, return_components=True)
    np.testing.assert_array_equal(x, mix.sample(50, 4))
    np.testing.assert_array_equal(mix.sample(50, np.random.default_rng(4)), x)
    assert comp.shape == (50,) and set(comp) <= set(range(mix.n_components))
    assert mix.sample(0, 1).shape == (0, mix.dim)


# -- Gaussian data and its flow map -----------------------------------------------------


def test_gaussian_score_is_the_closed_form_and_a_one_component_mixture():
    g = _random_gaussian(1)
    t = np.array([0.0, 1e-3, 0.3, 5.0])
    x = g.sample_t(4, t, 2)
    mean, cov = g.means[0], g.cov
    closed = np.stack([
        -np.linalg.solve(alpha(ti) ** 2 * cov + sigma2(ti) * np.eye(4), xi - alpha(ti) * mean)
        for xi, ti in zip(x, t, strict=True)])
    np.testing.assert_allclose(g.score(x, t), closed, rtol=1e-10, atol=1e-12)
    mix = GaussianMixture([1.0], [mean], covs=[cov])
    np.testing.assert_allclose(g.score(x, t), mix.score(x, t), rtol=1e-14, atol=1e-14)
    # isotropic kind against the full-covariance kind
    iso = GaussianData(mean, 0.49 * np.eye(4))
    one = GaussianMixture([1.0], [mean], scales=[0.7])
    np.testing.assert_allclose(iso.score(x, t), one.score(x, t), rtol=1e-13)
    assert np.array_equal(g.mean, mean) and np.array_equal(g.cov, mix.cov)


def test_gaussian_marginal_is_the_exact_law():
    g = _random_gaussian(3)
    mean_t, cov_t = g.marginal(0.7)
    np.testing.assert_allclose(mean_t, alpha(0.7) * g.mean, rtol=1e-15)
    np.testing.assert_allclose(cov_t, alpha(0.7) ** 2 * g.cov + sigma2(0.7) * np.eye(4),
                               rtol=1e-15)
    x = g.sample_t(6, 0.7, 0)
    np.testing.assert_allclose(g.logpdf_t(x, 0.7),
                               multivariate_normal(mean_t, cov_t).logpdf(x), rtol=1e-12)


times = st.floats(0.0, 4.0)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, big=times, mid=times, small=times)
def test_flow_composes(seed, big, mid, small):
    g = _random_gaussian(seed)
    x = g.sample_t(3, big, seed)
    np.testing.assert_allclose(g.flow(g.flow(x, big, mid), mid, small), g.flow(x, big, small),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(g.flow(x, big, big), x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("t", [0.0, 0.05, 1.0])
def test_flow_pushes_p_T_to_p_t(t):
    g = ill_conditioned_gaussian(4, condition=100.0)
    g = GaussianData(np.arange(4.0), g.cov)  # a mean, so that the α_t m shift is tested too
    x = g.flow(g.sample_t(20_000, 3.0, 31), 3.0, t)
    assert _moment_z(x, *g.marginal(t)) <= 4.5


@settings(max_examples=25, deadline=None)
@given(seed=seeds, t=st.floats(0.01, 3.0))
def test_flow_solves_the_probability_flow_ode(seed, t):
    # d x_t/dt = -x_t - ∇log p_t(x_t): forward-time form of the reverse PF-ODE
    # dY/ds = Y + score
    g = _random_gaussian(seed)
    big = 4.0
    x = g.sample_t(3, big, seed)
    h = 1e-5
    dxdt = (g.flow(x, big, t + h) - g.flow(x, big, t - h)) / (2 * h)
    y = g.flow(x, big, t)
    expected = -y - g.score(y, t)
    np.testing.assert_allclose(dxdt, expected, rtol=1e-5,
                               atol=1e-6 * (1 + np.abs(expected).max()))


# -- presets ----------------------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 8])
def test_grid_mixture_layout(d):
    mix = grid_mixture(d)
    assert (mix.n_components, mix.dim) == (25, d) and mix.isotropic
    np.testing.assert_array_equal(mix.weights, np.full(25, 1 / 25))
    np.testing.assert_array_equal(mix.scales, np.ones(25))
    assert mix.means[0, :2].tolist() == [-16.0, -16.0]
    assert mix.means[1, :2].tolist() == [-16.0, -8.0]  # i major, as torch.cartesian_prod
    np.testing.assert_array_equal(mix.means, np.tile(mix.means[:, :2], (1, d // 2)))
    assert sorted(map(tuple, mix.means[:, :2] / 8)) == [(i, j) for i in range(-2, 3)
                                                        for j in range(-2, 3)]


@pytest.mark.parametrize("d", [1, 10])
def test_two_modes_layout(d):
    mix = two_modes(d, separation=6.0)
    np.testing.assert_allclose(mix.weights, [2 / 3, 1 / 3], rtol=1e-15)
    a = 3.0 / np.sqrt(d)
    np.testing.assert_allclose(mix.means, [np.full(d, -a), np.full(d, a)], rtol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(mix.means[1] - mix.means[0]), 6.0, rtol=1e-14)
    np.testing.assert_array_equal(mix.scales, np.ones(2))


def test_ill_conditioned_gaussian_spectrum():
    g = ill_conditioned_gaussian(6, condition=1e3)
    eigs = np.linalg.eigvalsh(g.cov)
    np.testing.assert_allclose(eigs, np.geomspace(1e-3, 1.0, 6), rtol=1e-10)
    np.testing.assert_array_equal(g.mean, np.zeros(6))
    assert np.abs(g.cov - np.diag(np.diag(g.cov))).max() > 0.01  # rotated, not diagonal
    np.testing.assert_array_equal(ill_conditioned_gaussian(6, condition=1e3).cov, g.cov)


@pytest.mark.parametrize("mix", [grid_mixture(2), grid_mixture(80), two_modes(1),
                                 two_modes(50)], ids=["grid2", "grid80", "two1", "two50"])
def test_mode_assign_recovers_the_component(mix):
    x, comp = mix.sample(20_000, 17, return_components=True)
    assert np.mean(mix.mode_assign(x) == comp) > 0.999


def test_mode_assign_ignores_the_weights():
    # equal-covariance modes: the boundary is the midpoint whatever the weights
    mix = GaussianMixture([0.99, 0.01], [[-1.0], [1.0]], scales=[1.0, 1.0])
    np.testing.assert_array_equal(mix.mode_assign([[-0.01], [0.01]]), [0, 1])


# -- bad inputs -------------------------------------------------------------------------

_M = np.zeros((2, 2))
_BAD = [
    (lambda: GaussianMixture([0.5, 0.6], _M, scales=[1, 1]), "weights"),
    (lambda: GaussianMixture([1.5, -0.5], _M, scales=[1, 1]), "weights"),
    (lambda: GaussianMixture([[0.5, 0.5]], _M, scales=[1, 1]), "weights"),
    (lambda: GaussianMixture([1.0], _M, scales=[1]), "means"),
    (lambda: GaussianMixture([0.5, 0.5], np.zeros(2), scales=[1, 1]), "means"),
    (lambda: GaussianMixture([0.5, 0.5], [[0, np.nan], [0, 0]], scales=[1, 1]), "means"),
    (lambda: GaussianMixture([0.5, 0.5], _M), "covs and scales"),
    (lambda: GaussianMixture([0.5, 0.5], _M, covs=np.ones((2, 2, 2)), scales=[1, 1]),
     "covs and scales"),
    (lambda: GaussianMixture([0.5, 0.5], _M, scales=[1, 0]), "scales"),
    (lambda: GaussianMixture([0.5, 0.5], _M, scales=[1, 1, 1]), "scales"),
    (lambda: GaussianMixture([0.5, 0.5], _M, covs=np.ones((2, 3, 3))), "covs"),
    (lambda: GaussianMixture([0.5, 0.5], _M, covs=[np.eye(2), [[1, 0.5], [0, 1]]]),
     r"covs\[1\]"),
    (lambda: GaussianMixture([0.5, 0.5], _M, covs=[[[1, 2], [2, 1]], np.eye(2)]),
     r"covs\[0\]"),
    (lambda: GaussianData(np.zeros((1, 2)), np.eye(2)), "mean"),
    (lambda: GaussianData(np.zeros(2), np.eye(3)), "cov"),
    (lambda: GaussianData(np.zeros(2), -np.eye(2)), "cov"),
    (lambda: grid_mixture(3), "d"),
    (lambda: grid_mixture(0), "d"),
    (lambda: two_modes(0), "d"),
    (lambda: two_modes(2, separation=0.0), "separation"),
    (lambda: ill_conditioned_gaussian(1), "d"),
    (lambda: ill_conditioned_gaussian(3, condition=0.5), "condition"),
]


@pytest.mark.parametrize("build, name", _BAD)
def test_bad_constructor_arguments_are_named(build, name):
    with pytest.raises(ValueError, match=name):
        build()


@pytest.mark.parametrize("call, name", [
    (lambda g: g.score(np.zeros((3, 3)), 0.1), "x"),
    (lambda g: g.score(np.zeros(2), 0.1), "x"),
    (lambda g: g.denoise(np.zeros((3, 2)), -0.1), "t"),
    (lambda g: g.logpdf_t(np.zeros((3, 2)), np.ones(2)), "t"),
    (lambda g: g.score(np.zeros((3, 2)), np.nan), "t"),
    (lambda g: g.mode_assign(np.zeros((3, 1))), "x"),
    (lambda g: g.sample(-1), "n"),
    (lambda g: g.sample(2.0), "n"),
    (lambda g: g.sample_t(3, [0.1, 0.2]), "t"),
    (lambda g: g.marginal(-1.0), "t"),
    (lambda g: g.flow(np.zeros((3, 2)), -1.0, 0.5), "t_from"),
    (lambda g: g.flow(np.zeros((3, 2)), 1.0, np.ones(2)), "t_to"),
])
def test_bad_call_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=name):
        call(GaussianData(np.zeros(2), np.eye(2)))
