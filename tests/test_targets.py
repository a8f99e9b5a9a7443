"""Targets: gradients against finite differences, and the check at the initial point."""

import numba
import numpy as np
import pytest

import lcsample
from lcsample.targets import Gaussian, LogisticRegression


def finite_difference_gradient(target, x, eps=1e-6):
    grad = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        grad[i] = (target.logdensity_and_gradient(x + e)[0] - target.logdensity_and_gradient(x - e)[0]) / (2 * eps)
    return grad


def random_spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T + d * np.eye(d)


@pytest.mark.parametrize("make", [
    lambda rng: Gaussian(rng.standard_normal(5), cov=random_spd(rng, 5)),
    lambda rng: Gaussian(rng.standard_normal(5), precision=random_spd(rng, 5)),
    lambda rng: Gaussian(rng.standard_normal(5), cov=rng.uniform(0.5, 2, 5)),
    lambda rng: LogisticRegression(rng.standard_normal((40, 5)), rng.integers(0, 2, 40), prior_scale=2.0),
])
def test_gradient_matches_finite_differences(make):
    rng = np.random.default_rng(0)
    target = make(rng)
    x = rng.standard_normal(5)
    lp, grad = target.check(x)
    np.testing.assert_allclose(grad, finite_difference_gradient(target, x), rtol=1e-6, atol=1e-6)


def test_gaussian_log_density_is_normalized():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(1)
    mean, cov = rng.standard_normal(4), random_spd(rng, 4)
    x = rng.standard_normal(4)
    for target in (Gaussian(mean, cov=cov), Gaussian(mean, precision=np.linalg.inv(cov))):
        assert target.logdensity_and_gradient(x)[0] == pytest.approx(
            multivariate_normal(mean, cov).logpdf(x), rel=1e-10)
        np.testing.assert_allclose(target.cov, cov, rtol=1e-10)
    diag = Gaussian(mean, cov=np.diag(cov))
    assert diag.logdensity_and_gradient(x)[0] == pytest.approx(
        multivariate_normal(mean, np.diag(np.diag(cov))).logpdf(x), rel=1e-12)


def test_logistic_regression_log_density_and_bounds():
    X, y = lcsample.datasets.load_german_credit()
    assert X.shape == (1000, 25) and y.sum() == 300
    target = LogisticRegression(X, y)
    w = np.linspace(-0.5, 0.5, 25)
    eta = X @ w
    expected = np.sum(y * eta - np.logaddexp(0, eta)) - 0.5 * w @ w
    assert target.logdensity_and_gradient(w)[0] == pytest.approx(expected, rel=1e-12)
    # inference_gym's documented bound L ≤ 1 + λ_max(XᵀX)/4 = 630.6
    assert target.smoothness_bound == pytest.approx(630.6, abs=0.1)
    # extreme logits do not overflow
    assert np.isfinite(target.logdensity_and_gradient(np.full(25, 300.0))[0])


@numba.njit
def _grad_too_short(x, grad_out):
    for i in range(x.size - 1):
        grad_out[i] = -x[i]
    return -0.5 * x @ x


@numba.njit
def _grad_too_long(x, grad_out, n):
    for i in range(n):
        grad_out[i] = 0.0
    return 0.0


@numba.njit
def _nonfinite(x, grad_out):
    grad_out[:] = -x
    return np.log(x[0])


@numba.njit
def _returns_array(x, grad_out):
    grad_out[:] = -x
    return x


@numba.njit
def _matrix_model(x, grad_out, A):
    # a design matrix of the wrong width for dim: numba raises inside compiled code
    r = A @ x
    grad_out[:] = 0.0
    return -0.5 * r @ r


def _plain_python(x, grad_out):
    grad_out[:] = -x
    return -0.5 * np.sum(x * x)


def _uncompilable(x, grad_out):
    grad_out[:] = -x
    return float({"a": x}["a"].sum() * 0 + len(object.__dir__(x)) * 0)


def test_check_names_each_broken_contract():
    x = np.ones(3)
    with pytest.raises(ValueError, match="unwritten"):
        lcsample.Target(_grad_too_short, 3).check(x)
    with pytest.raises(ValueError, match="past the end"):
        lcsample.Target(_grad_too_long, 3, args=(5,)).check(x)
    with pytest.raises(ValueError, match="non-finite log density"):
        lcsample.Target(_nonfinite, 3).check(-x)
    with pytest.raises(TypeError, match="float"):
        lcsample.Target(_returns_array, 3).check(x)
    with pytest.raises(TypeError, match="could not be compiled by numba"):
        lcsample.Target(_uncompilable, 3).check(x)
    with pytest.raises(ValueError, match="raised at the initial point.*incompatible"):
        lcsample.Target(_matrix_model, 3, args=(np.ones((4, 5)),)).check(x)
    with pytest.raises(ValueError, match="dim"):
        lcsample.Target(_plain_python, 0)
    with pytest.raises(ValueError, match="args"):
        lcsample.Target(_plain_python, 3, args=[1])


def test_plain_python_function_is_compiled():
    target = lcsample.Target(_plain_python, 3)
    lp, grad = target.check(np.array([1.0, 2.0, 3.0]))
    assert lp == -7.0
    np.testing.assert_array_equal(grad, [-1.0, -2.0, -3.0])


def test_sample_reports_bad_initial_positions():
    target = lcsample.Target(_nonfinite, 3)
    with pytest.raises(ValueError, match=r"initial_positions\[1\].*non-finite"):
        lcsample.sample(target, initial_positions=[[1.0, 1, 1], [-1.0, 1, 1]], chains=2,
                        progressbar=False)


def _imports_inside(x, grad_out):
    import math  # numba cannot compile an import statement

    grad_out[:] = -x
    return -0.5 * math.fsum(x * x)


def test_unsupported_bytecode_is_reported_as_compile_failure():
    with pytest.raises(TypeError, match="could not be compiled by numba"):
        lcsample.Target(_imports_inside, 3).check(np.ones(3))
