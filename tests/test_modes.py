"""Several modes (issue 18, item 1): the tangent test, the survey's searches, chains
spread over distinct optima with a warning, and log-concave targets left as they were."""

import warnings

import arviz as az
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lcsample
from lcsample.mcmc.warmup.mass import InverseMass
from lcsample.mcmc.warmup.modes import PROBES, survey_modes, tangent_gaps
from lcsample.mcmc.warmup.starts import find_mode

QUIET = dict(progressbar=False, compute_convergence_checks=False)


@numba.njit
def _two_modes(x, grad_out, mu):
    # log of ½N(mu, I) + ½N(-mu, I), up to a constant, computed stably
    a = -0.5 * np.sum((x - mu) ** 2)
    b = -0.5 * np.sum((x + mu) ** 2)
    top = max(a, b)
    wa, wb = np.exp(a - top), np.exp(b - top)
    for i in range(x.shape[0]):
        grad_out[i] = (-(x[i] - mu[i]) * wa - (x[i] + mu[i]) * wb) / (wa + wb)
    return top + np.log(wa + wb)


@numba.njit
def _cauchy(x, grad_out, scale):
    # independent Cauchy coordinates: one mode, not log-concave beyond |x| = scale
    u = x / scale
    for i in range(x.shape[0]):
        grad_out[i] = -2.0 * u[i] / (1.0 + u[i] * u[i]) / scale
    return -np.sum(np.log1p(u * u))


def _separated(d, half_distance):
    mu = np.zeros(d)
    mu[0] = half_distance
    return mu


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_the_tangent_gap_of_a_gaussian_is_half_its_mahalanobis_square(d, seed):
    # log π(x) + ∇log π(x)·(m - x) - log π(m) = ½ (m - x)ᵀ P (m - x) exactly for a Gaussian
    # of precision P, whatever m: a sign or a transposition in the test breaks this
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d))
    precision = a @ a.T + 0.1 * np.eye(d)
    center, m = rng.standard_normal(d), rng.standard_normal(d)
    x = rng.standard_normal((5, d)) * 3

    def logdensity(y):
        return -0.5 * (y - center) @ precision @ (y - center)

    lp = np.array([logdensity(y) for y in x])
    grad = -(x - center) @ precision
    gaps, scale = tangent_gaps(x, lp, grad, m, logdensity(m))
    expected = 0.5 * np.einsum("ij,jk,ik->i", m - x, precision, m - x)
    np.testing.assert_allclose(gaps, expected, rtol=1e-9, atol=1e-9 * scale.max())


def test_the_survey_of_a_gaussian_costs_one_newton_step_per_probe():
    # with the exact inverse Hessian, each probe's first step lands on the mode
    cov = np.array([[2.0, 0.9, 0.0], [0.9, 1.0, 0.3], [0.0, 0.3, 0.5]])
    target = lcsample.targets.Gaussian(np.array([1.0, -1.0, 0.5]), cov=cov)
    mode = find_mode(target.logdensity_and_gradient, np.zeros(3))
    starts = np.array([[0.5, 0.0, 0.0], [1.0, -1.0, 1.0]])
    lp, grad = zip(*(target.check(x) for x in starts), strict=True)
    survey = survey_modes(target, mode, InverseMass(cov), starts, np.array(lp),
                          np.array(grad), np.random.default_rng(0))
    assert len(survey.optima) == 1 and survey.n_failed == 0
    assert survey.n_points == 2 + PROBES and survey.n_grads == 2 * PROBES


@pytest.mark.parametrize("d, batched", [(2, False), (10, False), (5, True)])
def test_two_modes_are_found_warned_and_shown_by_rhat(d, batched):
    # 10 standard deviations apart: a barrier of 12.5 nats that no chain crosses in the run
    mu = _separated(d, 5.0)
    if batched:
        def both(X):
            lp, G = np.empty(len(X)), np.empty_like(X)
            for i, x in enumerate(X):
                lp[i] = _two_modes(x, G[i], mu)
            return lp, G
        target = lcsample.Target.from_batch(both, d)
    else:
        target = lcsample.Target(_two_modes, d, args=(mu,))
    with pytest.warns(RuntimeWarning, match=r"not log-concave.*2 different optima.*10 away"):
        res = lcsample.sample(target, draws=300, tune=200, chains=4, seed=1, **QUIET)
    assert res.attrs["modes_found"] == 2
    # the mixture's optima sit at ±mu up to e^{-50}; chains 0, 2 start at one, 1, 3 at the other
    first = res.posterior[:, :, 0].mean(axis=1)
    assert np.all(np.abs(np.abs(first) - 5.0) < 0.5)
    assert np.sign(first[0]) == np.sign(first[2]) == -np.sign(first[1]) == -np.sign(first[3])
    assert float(az.rhat(res.posterior[:, :, 0])) > 1.1


def test_a_log_concave_target_has_one_optimum_and_no_warning():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X @ np.array([1.0, -0.5, 0.0, 2.0]) + rng.logistic(size=200) > 0).astype(float)
    builtin = lcsample.targets.LogisticRegression(X, y)
    # the same function as a user's target: surveyed, and its gradient checked
    target = lcsample.Target(builtin.logdensity_and_grad, builtin.dim, args=builtin.args)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = lcsample.sample(target, draws=50, tune=100, seed=3, **QUIET)
        known = lcsample.sample(builtin, draws=50, tune=100, seed=3, **QUIET)
    assert res.attrs["modes_found"] == 1 and res.attrs["concavity_failures"] == 0
    assert res.attrs["concavity_points"] == res.attrs["chains"] + PROBES
    # the built-in one is concave by construction, its gradient tested: neither is redone,
    # and the chains' draws are the same (the survey and the check have their own streams)
    assert known.attrs["modes_found"] == 1 and known.attrs["concavity_points"] == 0
    survey_and_check = res.attrs["init_grad_evals"] - known.attrs["init_grad_evals"]
    assert survey_and_check >= PROBES + 16
    np.testing.assert_array_equal(np.asarray(known.posterior), np.asarray(res.posterior))


def test_one_mode_that_is_not_log_concave_is_counted_but_not_warned_as_several():
    # probes beyond |x| ≈ 2 scale units lie above the tangent plane at the mode
    target = lcsample.Target(_cauchy, 1, args=(0.25,))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*different optima")
        res = lcsample.sample(target, draws=20, tune=50, seed=0, **QUIET)
    assert res.attrs["modes_found"] == 1
    assert res.attrs["concavity_failures"] > 0


def test_user_starts_and_uniform_starts_are_not_surveyed():
    mu = _separated(2, 3.0)
    target = lcsample.Target(_two_modes, 2, args=(mu,))
    for kwargs in ({"init": "uniform"}, {"initial_positions": np.array([3.0, 0.0])}):
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*different optima")
            res = lcsample.sample(target, draws=10, tune=20, seed=0, **kwargs, **QUIET)
        assert "modes_found" not in res.attrs


@numba.njit
def _unequal_modes(x, grad_out, mu, log_weight):
    # log of N(mu, I) + e^{log_weight} N(-mu, I): the second peak log_weight nats lower
    a = -0.5 * np.sum((x - mu) ** 2)
    b = log_weight - 0.5 * np.sum((x + mu) ** 2)
    top = max(a, b)
    wa, wb = np.exp(a - top), np.exp(b - top)
    for i in range(x.shape[0]):
        grad_out[i] = (-(x[i] - mu[i]) * wa - (x[i] + mu[i]) * wb) / (wa + wb)
    return top + np.log(wa + wb)


@pytest.mark.parametrize("log_weight, reported", [(-10.0, True), (-30.0, False)])
def test_an_optimum_with_negligible_mass_is_not_reported(log_weight, reported):
    # 20 nats (d = 2 < 20) below the highest: e^-20 of its mass at equal widths
    target = lcsample.Target(_unequal_modes, 2, args=(_separated(2, 5.0), log_weight))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = lcsample.sample(target, draws=50, tune=50, seed=1, **QUIET)
    several = any("different optima" in str(w.message) for w in caught)
    assert several == reported and res.attrs["modes_found"] == (2 if reported else 1)
