"""LinearRegression and PoissonRegression against exact densities, moments and bounds."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import minimize
from scipy.special import roots_hermite
from scipy.stats import multivariate_normal, norm, poisson

from lcsample.targets import Gaussian, LinearRegression, LogisticRegression, PoissonRegression


def finite_difference_gradient(target, x, eps=1e-6):
    grad = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        grad[i] = (target.logdensity_and_gradient(x + e)[0]
                   - target.logdensity_and_gradient(x - e)[0]) / (2 * eps)
    return grad


def laplace_approximation(target):
    """Mode of the target and the Hessian of -log π there, from its own gradient."""
    res = minimize(lambda w: tuple(-v for v in target.logdensity_and_gradient(w)),
                   np.zeros(target.dim), jac=True, method="BFGS", options={"gtol": 1e-10})
    mode, h = res.x, 1e-5
    hessian = np.empty((target.dim, target.dim))
    for j in range(target.dim):
        e = np.zeros(target.dim)
        e[j] = h
        hessian[:, j] = -(target.logdensity_and_gradient(mode + e)[1]
                          - target.logdensity_and_gradient(mode - e)[1]) / (2 * h)
    return mode, 0.5 * (hessian + hessian.T)


def poisson_reference_moments(target, n_grid=301, width=12.0):
    """Posterior moments of a 2-D target by quadrature of exp(log π) on a fine grid.

    The grid is centred at the mode and spans ±``width`` Laplace standard deviations per
    axis; the density is smooth and negligible at the edges (asserted), so the plain grid
    sum converges geometrically in the spacing.

    Returns
    -------
    mean : ndarray, shape (2,)
    cov : ndarray, shape (2, 2)
    log_normalizer : float
        log ∫ exp(log π(w)) dw, zero for a normalized log density.
    """
    assert target.dim == 2
    mode, hessian = laplace_approximation(target)
    half = width * np.sqrt(np.diag(np.linalg.inv(hessian)))
    axes = [np.linspace(c - h, c + h, n_grid) for c, h in zip(mode, half)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    lp = np.array([target.logdensity_and_gradient(w)[0] for w in points])
    weights = np.exp(lp - lp.max()).reshape(n_grid, n_grid)
    edge = np.concatenate([weights[0], weights[-1], weights[:, 0], weights[:, -1]])
    assert edge.max() < 1e-14, "the grid does not cover the posterior mass"
    cell = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
    log_normalizer = lp.max() + np.log(weights.sum() * cell)
    weights = weights.ravel() / weights.sum()
    mean = weights @ points
    centred = points - mean
    return mean, (weights * centred.T) @ centred, log_normalizer


def small_poisson(d, n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, d - 1))])
    w = rng.normal(0.0, 0.5, d)
    return X, rng.poisson(np.exp(X @ w))


def small_linear(d, n=30, seed=0, noise_scale=0.7, prior_scale=1.5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + noise_scale * rng.standard_normal(n)
    return LinearRegression(X, y, noise_scale=noise_scale, prior_scale=prior_scale)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_gradients_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((40, 4))
    targets = [
        LinearRegression(X, rng.standard_normal(40), noise_scale=0.5, prior_scale=2.0),
        PoissonRegression(0.5 * X, rng.poisson(2.0, 40), prior_scale=2.0),
    ]
    w = rng.uniform(-1.5, 1.5, 4)
    for target in targets:
        _, grad = target.check(w)
        np.testing.assert_allclose(grad, finite_difference_gradient(target, w),
                                   rtol=1e-6, atol=1e-6 * np.abs(grad).max())


def test_linear_regression_is_the_exact_gaussian_posterior():
    rng = np.random.default_rng(1)
    n, d, sigma, tau = 50, 4, 0.8, 1.7
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    target = LinearRegression(X, y, noise_scale=sigma, prior_scale=tau)
    precision = X.T @ X / sigma**2 + np.eye(d) / tau**2
    np.testing.assert_allclose(target.precision, precision, rtol=1e-14)
    np.testing.assert_allclose(target.mean, np.linalg.solve(precision, X.T @ y / sigma**2),
                               rtol=1e-12)
    np.testing.assert_allclose(target.cov, np.linalg.inv(precision), rtol=1e-12, atol=1e-15)
    eigenvalues = np.linalg.eigvalsh(precision)
    assert target.smoothness_bound == pytest.approx(eigenvalues[-1], rel=1e-12)
    assert target.strong_convexity_bound == pytest.approx(eigenvalues[0], rel=1e-12)

    exact = multivariate_normal(target.mean, np.linalg.inv(precision))
    points = target.mean + rng.standard_normal((6, d))
    lp = np.array([target.logdensity_and_gradient(w)[0] for w in points])
    np.testing.assert_allclose(lp - lp[0], exact.logpdf(points) - exact.logpdf(points[0]),
                               rtol=1e-10, atol=1e-10)
    # the log density is normalized, not just correct up to a constant
    np.testing.assert_allclose(lp, exact.logpdf(points), rtol=1e-10)


@settings(max_examples=50, deadline=None)
@given(
    X=st.integers(1, 4).flatmap(lambda d: st.integers(1, 8).flatmap(
        lambda n: arrays(np.float64, (n, d), elements=st.floats(-10, 10)))),
    noise_scale=st.floats(0.1, 10),
    prior_scale=st.floats(0.1, 10),
)
def test_linear_regression_cov_inverts_precision(X, noise_scale, prior_scale):
    y = np.ones(X.shape[0])
    target = LinearRegression(X, y, noise_scale=noise_scale, prior_scale=prior_scale)
    d = X.shape[1]
    np.testing.assert_array_equal(target.cov, target.cov.T)
    np.linalg.cholesky(target.cov)  # raises unless positive definite
    condition = target.smoothness_bound / target.strong_convexity_bound
    np.testing.assert_allclose(target.cov @ target.precision, np.eye(d),
                               atol=100 * np.finfo(float).eps * condition)


def test_poisson_log_density_matches_scipy():
    X, y = small_poisson(3, n=40, seed=2)
    tau = 1.3
    target = PoissonRegression(X, y, prior_scale=tau)
    points = np.random.default_rng(3).normal(0.0, 0.7, (6, 3))

    def log_joint(w):
        return poisson.logpmf(y, np.exp(X @ w)).sum() + norm(0.0, tau).logpdf(w).sum()

    lp = np.array([target.logdensity_and_gradient(w)[0] for w in points])
    expected = np.array([log_joint(w) for w in points])
    np.testing.assert_allclose(lp - lp[0], expected - expected[0], rtol=1e-10, atol=1e-9)
    assert target.mean is None and target.cov is None and target.smoothness_bound is None
    assert target.strong_convexity_bound == 1 / tau**2


def test_reference_moments_recover_exact_gaussian_moments():
    # the quadrature oracle, run on a posterior whose moments and normalizer are known
    target = small_linear(2, n=8)
    mean, cov, log_normalizer = poisson_reference_moments(target)
    np.testing.assert_allclose(mean, target.mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cov, target.cov, rtol=1e-9, atol=1e-12)
    assert log_normalizer == pytest.approx(0.0, abs=1e-10)


def test_poisson_reference_moments_are_exact():
    X, y = small_poisson(2, n=15, seed=4)
    target = PoissonRegression(X, y, prior_scale=1.0)
    mean, cov, _ = poisson_reference_moments(target)

    # Independent check: Gauss–Hermite quadrature of scipy's density in the Laplace frame.
    mode, hessian = laplace_approximation(target)
    chol = np.linalg.cholesky(np.linalg.inv(hessian))
    nodes, node_weights = roots_hermite(80)
    t = np.stack(np.meshgrid(nodes, nodes, indexing="ij"), axis=-1).reshape(-1, 2)
    w = mode + np.sqrt(2.0) * t @ chol.T
    log_joint = (poisson.logpmf(y, np.exp(w @ X.T)).sum(axis=1)
                 + norm.logpdf(w).sum(axis=1) + (t**2).sum(axis=1))
    weights = np.outer(node_weights, node_weights).ravel() * np.exp(log_joint - log_joint.max())
    weights /= weights.sum()
    gh_mean = weights @ w
    gh_cov = (weights * (w - gh_mean).T) @ (w - gh_mean)
    np.testing.assert_allclose(mean, gh_mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cov, gh_cov, rtol=1e-7)

    # Stein's identities hold only under the exact, normalized posterior:
    # E[∇log π] = 0 and E[∇log π (w - μ)ᵀ] = -I.
    grads = np.array([target.logdensity_and_gradient(v)[1] for v in w])
    np.testing.assert_allclose(weights @ grads, 0.0, atol=1e-8)
    np.testing.assert_allclose((weights * grads.T) @ (w - gh_mean), -np.eye(2), atol=1e-8)
    # and the posterior is not Gaussian, so the moments carry information beyond Laplace
    assert np.abs(mean - mode).max() > 1e-3


@pytest.mark.parametrize("make, match", [
    (lambda X, y: PoissonRegression(X, -y), "y"),
    (lambda X, y: PoissonRegression(X, y + 0.5), "y"),
    (lambda X, y: PoissonRegression(X, np.where(y > 1, np.nan, y)), "y"),
    (lambda X, y: PoissonRegression(X, y[:-1]), "y"),
    (lambda X, y: PoissonRegression(X[0], y), "X"),
    (lambda X, y: PoissonRegression(np.where(X > 1, np.inf, X), y), "X"),
    (lambda X, y: PoissonRegression(X, y, prior_scale=0.0), "prior_scale"),
    (lambda X, y: PoissonRegression(X, y, prior_scale=np.inf), "prior_scale"),
    (lambda X, y: LinearRegression(X, y[:-1]), "y"),
    (lambda X, y: LinearRegression(X, np.where(y > 1, np.nan, y)), "y"),
    (lambda X, y: LinearRegression(X[:, :, None], y), "X"),
    (lambda X, y: LinearRegression(np.zeros((0, 3)), y[:0]), "X"),
    (lambda X, y: LinearRegression(np.where(X > 1, np.nan, X), y), "X"),
    (lambda X, y: LinearRegression(X, y, noise_scale=-1.0), "noise_scale"),
    (lambda X, y: LinearRegression(X, y, prior_scale=0.0), "prior_scale"),
])
def test_bad_input_names_the_argument(make, match):
    X, y = small_poisson(3, n=20, seed=5)
    y = y + 1.0  # strictly positive, so -y is negative
    with pytest.raises(ValueError, match=rf"^{match} "):
        make(X, y)


@pytest.mark.parametrize("make", [
    lambda rng: Gaussian(rng.standard_normal(3), cov=rng.uniform(0.5, 2.0, 3)),
    lambda rng: Gaussian(rng.standard_normal(3), precision=np.diag(rng.uniform(0.5, 2.0, 3))),
    lambda rng: LogisticRegression(rng.standard_normal((20, 3)), rng.integers(0, 2, 20)),
    lambda rng: small_linear(3),
    lambda rng: PoissonRegression(*small_poisson(3)),
])
def test_every_builtin_reports_what_is_known(make):
    rng = np.random.default_rng(6)
    target = make(rng)
    target.check(rng.standard_normal(target.dim))
    for attr in ("mean", "cov", "smoothness_bound", "strong_convexity_bound"):
        assert hasattr(target, attr)
    if target.mean is not None:
        assert target.mean.shape == (target.dim,)
        assert target.cov.shape == (target.dim, target.dim)
    m, big_l = target.strong_convexity_bound, target.smoothness_bound
    assert isinstance(m, float) and m > 0
    assert big_l is None or (isinstance(big_l, float) and big_l >= m)


def test_gaussian_bounds_are_precision_eigenvalues():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((4, 4))
    cov = a @ a.T + np.eye(4)
    eigenvalues = 1.0 / np.linalg.eigvalsh(cov)
    for target in (Gaussian(np.zeros(4), cov=cov),
                   Gaussian(np.zeros(4), precision=np.linalg.inv(cov))):
        assert target.smoothness_bound == pytest.approx(eigenvalues.max(), rel=1e-10)
        assert target.strong_convexity_bound == pytest.approx(eigenvalues.min(), rel=1e-10)
    diagonal = Gaussian(np.zeros(3), cov=np.array([0.5, 2.0, 4.0]))
    assert diagonal.smoothness_bound == 2.0 and diagonal.strong_convexity_bound == 0.25


def test_sampler_recovers_the_poisson_posterior_with_default_settings():
    # a non-Gaussian, log-concave posterior with exact moments by quadrature
    from helpers import batch_means_se

    import lcsample

    rng = np.random.default_rng(4)
    X = np.column_stack([np.ones(40), rng.standard_normal(40)])
    y = rng.poisson(np.exp(X @ np.array([0.5, -0.4])))
    target = PoissonRegression(X, y)
    mean, cov, _ = poisson_reference_moments(target)
    res = lcsample.sample(target, draws=4000, seed=11, progressbar=False)
    assert res.n_divergences == 0
    for i in range(2):
        x = res.posterior[:, :, i]
        sd = np.sqrt(cov[i, i])
        # 4.5 batch-means standard errors plus the documented allowances: an O(h²) mean
        # bias of 2 % of a standard deviation, and the 1 % stiff-direction variance error
        assert abs(x.mean() - mean[i]) < 4.5 * batch_means_se(x) + 0.02 * sd
        sq = (x - mean[i]) ** 2
        assert abs(sq.mean() / cov[i, i] - 1) < 4.5 * batch_means_se(sq) / cov[i, i] + 0.01
