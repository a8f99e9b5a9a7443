"""Warmup pieces against exact answers, and the warmup's invariants (hypothesis)."""

import numba
import numpy as np
import pytest
from helpers import batch_means_se
from hypothesis import given, settings
from hypothesis import strategies as st

import lcsample
from lcsample.kernels.exact import stationary_covariance
from lcsample.mcmc.warmup.curvature import diagonal_curvature, extreme_curvatures, hessian
from lcsample.mcmc.warmup.loop import (
    AUTO_THIN_MAX,
    AUTO_TUNE_RANGE,
    auto_thin,
    auto_tune,
    window_schedule,
)
from lcsample.mcmc.warmup.mass import InverseMass, Welford, thresholded_variances
from lcsample.mcmc.warmup.starts import ModeSearch, find_mode, jittered_starts, polish_mode
from lcsample.mcmc.warmup.step_size import (
    STIFF_VARIANCE_BIAS,
    energy_error,
    energy_target,
    step_size_for_bias,
)

QUIET = dict(progressbar=False, compute_convergence_checks=False)


def _correlated_gaussian(d, seed=0, log_range=2.0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = (q * np.logspace(0, log_range, d)) @ q.T
    cov = 0.5 * (cov + cov.T)
    return lcsample.targets.Gaussian(rng.standard_normal(d), cov=cov)


def test_mode_and_hessian_of_a_gaussian_are_exact():
    t = _correlated_gaussian(8)
    mode = find_mode(t.logdensity_and_gradient, np.zeros(8))
    assert mode.converged
    np.testing.assert_allclose(mode.x, t.mean, atol=1e-6 * np.sqrt(np.diag(t.cov)).max())
    # forward differences of a linear gradient are exact up to round-off
    np.testing.assert_allclose(hessian(t.logdensity_and_gradient, mode.x, mode.gradient),
                               t.precision, rtol=1e-6, atol=1e-8 * np.abs(t.precision).max())


def test_linear_regression_mode_is_the_posterior_mean():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 5))
    t = lcsample.targets.LinearRegression(X, X @ np.ones(5) + rng.standard_normal(60))
    mode = find_mode(t.logdensity_and_gradient, np.full(5, 3.0))
    np.testing.assert_allclose(mode.x, t.mean, atol=1e-7)


@pytest.mark.parametrize("d", [5, 64])
def test_diagonal_curvature_of_a_diagonal_gaussian_is_exact(d):
    # unit vectors (d ≤ 32) and Rademacher probes (d > 32) are both exact on a diagonal H
    precision = np.linspace(0.5, 40.0, d)
    t = lcsample.targets.Gaussian(np.zeros(d), precision=precision)
    x = np.full(d, 0.3)
    curv, n = diagonal_curvature(t.logdensity_and_gradient, x, t.logdensity_and_gradient(x)[1],
                                 np.random.default_rng(0))
    np.testing.assert_allclose(curv, precision, rtol=1e-6)
    assert n == min(d, 32)


@pytest.mark.parametrize("dense", [False, True])
def test_lanczos_finds_the_extreme_curvatures_of_the_preconditioned_target(dense):
    t = _correlated_gaussian(10, log_range=1.0)
    mass = InverseMass(t.cov if dense else np.diag(t.cov))
    x = t.mean + 1.0  # away from the mode: the known gradient there enters each product
    lam_min, lam_max, n = extreme_curvatures(t.logdensity_and_gradient, x, mass,
                                             np.random.default_rng(0))
    assert n <= 11  # one evaluation at x and one per Lanczos iteration
    root = np.linalg.cholesky(t.cov) if dense else np.diag(np.sqrt(np.diag(t.cov)))
    exact = np.linalg.eigvalsh(root.T @ t.precision @ root)
    assert lam_min == pytest.approx(exact[0], rel=1e-4)
    assert lam_max == pytest.approx(exact[-1], rel=1e-4)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 6))
def test_lanczos_stops_early_only_with_the_extremes_within_two_percent(seed, n_outliers):
    # a bulk of curvatures near 1 with a few outliers (what a good mass leaves): the
    # extremes converge in a few iterations; stopping early must leave them within the
    # documented 2 % (EXTREME_TOLERANCE) of the exact ones
    rng = np.random.default_rng(seed)
    precision = rng.uniform(0.8, 1.25, 200)
    precision[:n_outliers] = np.exp(rng.uniform(-3, 3, n_outliers))
    t = lcsample.targets.Gaussian(np.zeros(200), precision=precision)
    lam_min, lam_max, n = extreme_curvatures(t.logdensity_and_gradient, np.full(200, 0.5),
                                             InverseMass(np.ones(200)), rng)
    if n < 21:  # stopped before its 20 iterations
        assert lam_min == pytest.approx(precision.min(), rel=0.02)
        assert lam_max == pytest.approx(precision.max(), rel=0.02)
    if n_outliers <= 2:
        assert n <= 15


def test_lanczos_forward_differences_match_the_hessian_of_a_curved_target():
    # a logistic regression's Hessian varies with x: a forward difference is off by
    # O(eps) relative, far inside what the step size needs
    X, y = lcsample.datasets.load_german_credit()
    target = lcsample.targets.LogisticRegression(X, y)
    x = np.random.default_rng(1).normal(0.0, 0.3, target.dim)
    lp, g = target.logdensity_and_gradient(x)
    exact = np.linalg.eigvalsh(hessian(target.logdensity_and_gradient, x, g))
    lam_min, lam_max, _ = extreme_curvatures(target.logdensity_and_gradient, x,
                                             InverseMass(np.ones(target.dim)),
                                             np.random.default_rng(0))
    assert lam_max == pytest.approx(exact[-1], rel=1e-3)
    assert lam_min == pytest.approx(exact[0], rel=1e-2)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=2, max_size=6), st.booleans())
def test_inverse_mass_root_factors_the_matrix(log_scales, dense):
    d = len(log_scales)
    scales = np.exp(log_scales)
    rng = np.random.default_rng(d)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    matrix = (q * scales) @ q.T if dense else scales
    mass = InverseMass(0.5 * (matrix + matrix.T) if dense else matrix)
    full = mass.matrix if dense else np.diag(mass.matrix)
    root = mass.root(np.eye(d))
    np.testing.assert_allclose(root @ root.T, full, rtol=1e-10, atol=1e-12 * np.abs(full).max())
    w = rng.standard_normal(d)
    np.testing.assert_allclose(mass.root_transpose(w), root.T @ w, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.booleans())
def test_welford_merges_blocks_into_the_exact_covariance(sizes, dense):
    rng = np.random.default_rng(sum(sizes))
    blocks = [rng.standard_normal((n, 3)) * [1.0, 10.0, 1e-3] + 5.0 for n in sizes]
    acc = Welford(3, dense=dense)
    for block in blocks:
        acc.update(block)
    data = np.concatenate(blocks)
    assert acc.n == data.shape[0]
    np.testing.assert_allclose(acc.mean, data.mean(axis=0), rtol=1e-12)
    if data.shape[0] > 1:
        exact = np.cov(data.T) if dense else data.var(axis=0, ddof=1)
        np.testing.assert_allclose(acc.covariance(), exact, rtol=1e-9, atol=1e-15)


def _window_stats(variances, chains=4, n=50, seed=0):
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(chains):
        acc = Welford(variances.size)
        acc.update(rng.standard_normal((n, variances.size)) * np.sqrt(variances))
        stats.append(acc)
    return stats


def test_a_window_that_agrees_with_the_mass_leaves_it_as_it_is():
    # N(0, I_1000), 4 chains of 50 independent draws, the mass already right: the raw
    # window variances would spread the preconditioned curvature to ~[0.7, 1.6]
    previous = np.ones(1000)
    stats = _window_stats(previous)
    raw = np.concatenate([[c.covariance() for c in stats]]).mean(axis=0)
    assert raw.max() / raw.min() > 1.8
    np.testing.assert_array_equal(thresholded_variances(previous, stats), previous)


def test_a_window_that_disagrees_moves_the_mass_toward_the_draws():
    # ten coordinates four times wider than the mass says: they move most of the way
    # (log 4 = 1.39 less a threshold of ~0.4), the other 990 stay
    truth = np.ones(1000)
    truth[:10] = 4.0
    new = thresholded_variances(np.ones(1000), _window_stats(truth, seed=1))
    np.testing.assert_array_equal(new[10:], 1.0)
    assert (new[:10] > 2.0).all() and (new[:10] < 4.0 * 1.5).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(2, 30), st.floats(-3, 3), st.integers(0, 2**16))
def test_thresholded_variances_lie_between_the_mass_and_the_window(chains, n, log_scale, seed):
    # the update shrinks each log ratio toward 0 and never past it, and commutes with a
    # change of units (draws × c, mass × c²)
    rng = np.random.default_rng(seed)
    previous = np.exp(rng.normal(0.0, 1.0, 20))
    stats = _window_stats(np.exp(rng.normal(0.0, 1.0, 20)), chains, n, seed)
    new = thresholded_variances(previous, stats)
    pooled = Welford(20)
    for c in stats:
        pooled.merge(c.n, c.mean, c.m2)
    lo = np.minimum(previous, pooled.covariance())
    hi = np.maximum(previous, pooled.covariance())
    assert (new >= lo * (1 - 1e-12)).all() and (new <= hi * (1 + 1e-12)).all()
    scale = np.exp(log_scale)
    scaled = []
    for c in stats:
        acc = Welford(20)
        acc.merge(c.n, c.mean * scale, c.m2 * scale**2)
        scaled.append(acc)
    np.testing.assert_allclose(thresholded_variances(previous * scale**2, scaled),
                               new * scale**2, rtol=1e-9)


def test_a_rough_mode_is_polished_by_a_newton_step():
    # κ = 10³ Gaussian in d = 100: plain L-BFGS needs ~180 evaluations to its gtol; the
    # rough search, the Hessian there and the Newton step reach the mean in a few
    t = _correlated_gaussian(100, log_range=3.0)
    x0 = np.random.default_rng(0).uniform(-2, 2, 100)
    full = find_mode(t.logdensity_and_gradient, x0)
    rough = find_mode(t.logdensity_and_gradient, x0, rough_nats=0.5)
    assert not rough.converged and rough.n_grads < full.n_grads / 5
    mass = InverseMass(t.cov)
    polished, trusted = polish_mode(t.logdensity_and_gradient, rough, mass)
    assert trusted and polished.converged and polished.n_grads <= 4
    np.testing.assert_allclose(polished.x, t.mean, atol=1e-6 * np.sqrt(np.diag(t.cov)).max())


def test_a_newton_step_far_from_the_mode_is_not_trusted():
    # a mass that is not the Hessian at the rough point (10⁴ times too much curvature, as
    # where a funnel's curvature changes on the way): the polished mode lies many of its
    # standard deviations from the Newton point, and the Hessian must be taken again
    t = lcsample.targets.LogisticRegression(*lcsample.datasets.load_german_credit())
    x = np.full(t.dim, 0.5)
    lp, g = t.logdensity_and_gradient(x)
    rough = ModeSearch(x, lp, g, 1, False, "rough")
    tiny = InverseMass(np.full(t.dim, 1e-4))  # a curvature 10⁴ too large
    polished, trusted = polish_mode(t.logdensity_and_gradient, rough, tiny)
    assert polished.logdensity > lp and not trusted


def test_auto_thin_is_half_the_autocorrelation_time_of_the_softest_direction():
    # 2γ/(λ_min h) steps; on N(0, I) at the tuned h = 0.595, γ = 1: 3.4 steps, thin 2
    assert auto_thin([{"lam_min": 1.0}], 0.595, 1.0) == 2
    assert auto_thin([{"lam_min": 1.0}], 2.0, 1.0) == 1
    assert auto_thin([{"lam_min": 0.01}, {"note": "no positive curvature"}], 0.5, 0.1) == AUTO_THIN_MAX
    assert auto_thin([], 0.1, 1.0) == 1  # nothing estimated: every step


@pytest.mark.parametrize("method", ["rmd", "ulmc", "rmd-lagged"])
def test_energy_target_is_the_energy_error_at_the_theory_step(method):
    # Monte Carlo of the probe on N(0, I_d) from the exact law: Var ΔH / d of one step
    d, n = 50, 2000
    t = lcsample.targets.Gaussian(np.zeros(d), cov=np.ones(d))
    h = step_size_for_bias(1.0, 1.0, method, 0.01)  # the theory route on N(0, I): γ = 1
    rng = np.random.default_rng(0)
    deltas = np.array([energy_error(t.logdensity_and_gradient, rng.standard_normal(d),
                                    InverseMass(np.ones(d)), h, method, rng, 1)[0][0]
                       for _ in range(n)])
    # the sample variance's standard error, from the sample fourth moment
    var = deltas.var(ddof=1)
    se = np.sqrt((np.mean((deltas - deltas.mean()) ** 4) - var**2) / n)
    assert abs(var / d - energy_target(method, 0.01)) < 4.5 * se / d


def test_step_size_for_bias_meets_the_accuracy_exactly():
    for method, tol in [("rmd", 0.01), ("rmd", 0.1), ("ulmc", 0.05)]:
        h = step_size_for_bias(3.0, 1.2, method, tol)
        err = stationary_covariance(3.0, h, 1.2, 1.0, method)[0, 0] * 3.0 - 1.0
        assert err == pytest.approx(tol, rel=5e-3)


def test_auto_tune_counts_relaxation_times_within_bounds():
    assert auto_tune([{"step_size": 0.1, "lam_min": 0.04}]) == 500  # 10 / (0.1 · 0.2)
    assert auto_tune([{"step_size": 1.0, "lam_min": 1.0}]) == AUTO_TUNE_RANGE[0]
    assert auto_tune([{"step_size": 1e-3, "lam_min": 1e-4}]) == AUTO_TUNE_RANGE[1]


@settings(max_examples=8, deadline=None)
@given(st.lists(st.floats(-4, 4), min_size=3, max_size=3), st.sampled_from(["diag", "dense"]),
       st.sampled_from(["theory", "adaptive"]))
def test_preconditioned_isotropic_gaussian_tunes_the_same_whatever_the_scaling(log_scales, mass, tuning):
    # N(0, diag(s²)) with the mass started from the curvature at the mode is exactly the
    # standard Gaussian in preconditioned coordinates, so h and γ must not depend on s
    runs = []
    for scales in (np.ones(3), np.exp(log_scales)):
        t = lcsample.targets.Gaussian(np.zeros(3), cov=scales**2)
        res = lcsample.sample(t, draws=5, tune=0, chains=2, seed=4, inverse_mass_matrix=mass,
                              tuning=tuning, **QUIET)
        runs.append((res.attrs["step_size"][0], res.attrs["friction"][0]))
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-4)


def test_warmup_choices_are_reproducible_from_the_seed_whatever_the_cores():
    # d > 200, condition 10: a diagonal mass corrected by Lanczos, rescaled by windows
    t = _correlated_gaussian(300, log_range=1.0)
    a = lcsample.sample(t, draws=20, seed=9, cores=1, **QUIET)
    b = lcsample.sample(t, draws=20, seed=9, cores=2, **QUIET)
    assert a.attrs["inverse_mass_matrix"] == "low_rank"
    assert a.tuning_history == b.tuning_history
    np.testing.assert_array_equal(a.last_state.inverse_mass_matrix, b.last_state.inverse_mass_matrix)
    np.testing.assert_array_equal(a.posterior, b.posterior)


def test_smaller_target_accuracy_gives_a_smaller_step():
    t = _correlated_gaussian(5)
    steps = [lcsample.sample(t, draws=5, tune=0, seed=1, target_accuracy=acc, **QUIET).attrs["step_size"][0]
             for acc in (0.1, 0.01, 0.001)]
    assert steps[0] > steps[1] > steps[2]


def test_auto_mass_is_dense_up_to_200_dimensions():
    for d, kind in ((200, "dense"), (201, "diag")):
        t = lcsample.targets.Gaussian(np.zeros(d), cov=np.ones(d))
        assert lcsample.sample(t, draws=2, tune=0, chains=1, seed=0, **QUIET).attrs["inverse_mass_matrix"] == kind


def test_auto_mass_turns_dense_above_200_only_where_the_diagonal_leaves_it_ill_conditioned():
    # d = 240, a rotated Gaussian of condition 10^3: under a diagonal mass the first
    # curvature estimate sees λ_max/λ_min ≫ 100, so the warmup takes the inverse Hessian
    # (exact here: the preconditioned target becomes N(0, I)); an isotropic one stays diag
    rotated = _correlated_gaussian(240, log_range=3.0)
    res = lcsample.sample(rotated, draws=400, seed=1, **QUIET)
    assert res.attrs["inverse_mass_matrix"] == "dense"
    first, second = res.tuning_history[:2]
    assert first["step"] == second["step"] == 0 and first.get("note_mass") == "dense"
    assert first["lam_max"] / first["lam_min"] > 100 and second["lam_max"] / second["lam_min"] < 2
    # the stiffest direction's variance within its Monte Carlo error of the exact 1
    evals, evecs = np.linalg.eigh(rotated.cov)
    z = (res.posterior - rotated.mean) @ evecs[:, 0] / np.sqrt(evals[0])
    means = np.array([b.mean() for chain in z**2 for b in np.array_split(chain, 10)])
    assert abs(means.mean() - 1.0) < 4 * means.std(ddof=1) / np.sqrt(means.size)
    iso = lcsample.targets.Gaussian(np.zeros(300), cov=np.ones(300))
    res = lcsample.sample(iso, draws=20, seed=1, **QUIET)
    assert res.attrs["inverse_mass_matrix"] == "diag" and len(res.tuning_history) >= 1
    assert all(e.get("note_mass") is None for e in res.tuning_history)


def test_jittered_starts_are_overdispersed_in_laplace_units():
    t = _correlated_gaussian(4)
    mass = InverseMass(t.cov)
    center = ModeSearch(t.mean, *t.check(t.mean), 1, True, "")
    starts, lp, grad = jittered_starts(center, mass,
                                       [np.random.default_rng(s) for s in range(2000)], t.check)
    np.testing.assert_array_equal(lp, [t.check(x)[0] for x in starts])
    white = np.linalg.solve(np.linalg.cholesky(t.cov), (starts - t.mean).T).T
    # uniform(-2, 2) per whitened coordinate: in the cube, sd 2/√3 > 1 (the posterior's)
    assert np.abs(white).max() <= 2.0
    np.testing.assert_allclose(white.std(axis=0), 2 / np.sqrt(3), rtol=0.05)


def test_sample_records_the_mode_search():
    t = _correlated_gaussian(4)
    res = lcsample.sample(t, draws=2, tune=0, seed=2, **QUIET)
    assert res.attrs["init"] == "mode" and res.attrs["mode_converged"]
    assert res.attrs["mode_logdensity"] == pytest.approx(t.logdensity_and_gradient(t.mean)[0], abs=1e-8)
    assert res.attrs["init_grad_evals"] > 4  # mode search plus the Hessian's 4 columns


@numba.njit
def _narrow_student_t(x, grad_out, nu, scale):
    # far in its tails (|x| ≫ scale) the curvature of -log π is negative
    lp = 0.0
    for i in range(x.shape[0]):
        r = x[i] / scale
        lp += -0.5 * (nu + 1.0) * np.log1p(r * r / nu)
        grad_out[i] = -(nu + 1.0) * r / (nu + r * r) / scale
    return lp


def test_no_positive_curvature_is_reported_and_the_mode_start_avoids_it():
    target = lcsample.Target(_narrow_student_t, 3, args=(5.0, 1e-3))
    with pytest.warns(RuntimeWarning, match="Warmup reported that it did not converge"):
        lost = lcsample.sample(target, draws=200, seed=0, init="uniform", progressbar=False)
    assert not lost.attrs["warmup_converged"]
    assert lost.tuning_history[0]["note"] == "no positive curvature"
    found = lcsample.sample(target, draws=1000, seed=0, **QUIET)
    assert found.attrs["warmup_converged"]
    # Student-t(ν = 5): Var = scale²·ν/(ν - 2); 4.5 batch-means SEs (ν > 4, so x² has a
    # variance) plus the 1 % stiff-direction allowance
    var = 1e-6 * 5 / 3
    sq = (found.posterior**2).mean(axis=2) / var
    assert abs(sq.mean() - 1) < 4.5 * batch_means_se(sq) + STIFF_VARIANCE_BIAS


def test_warmup_convergence_looks_at_the_retunes_after_windows():
    from lcsample.mcmc.warmup.loop import warmup_converged

    start = {"step": 0, "step_size": 0.8}
    # the first window may move h (Laplace start → window variances): not a failure
    assert warmup_converged([start, {"step": 45, "step_size": 0.4}])
    assert warmup_converged([start, {"step": 100, "step_size": 0.5}, {"step": 200, "step_size": 0.6}])
    assert not warmup_converged([start, {"step": 100, "step_size": 0.5}, {"step": 200, "step_size": 0.2}])
    assert not warmup_converged([start, {"step": 100, "step_size": 0.5, "note": "no positive curvature"}])


def test_adaptive_friction_is_not_underdamped_by_a_small_window_in_high_dimension():
    # d = 1000, a few hundred window draws: the sample covariance's top eigenvalue is
    # noise-inflated ~(1 + √(d/n))² (γ would be ~0.13); the route falls back to the
    # curvature of the preconditioned target, γ = √λ_min
    t = lcsample.targets.Gaussian(np.zeros(1000), cov=np.ones(1000))
    res = lcsample.sample(t, draws=5, seed=0, tuning="adaptive", **QUIET)
    lam_min = res.tuning_history[-1]["lam_min"]
    assert res.attrs["friction"][0] == pytest.approx(np.sqrt(lam_min), rel=1e-12)
    assert lam_min > 0.25


@settings(max_examples=200, deadline=None)
@given(tune=st.integers(0, 5000), windows=st.booleans())
def test_window_schedule_covers_the_warmup_with_growing_windows(tune, windows):
    segments = window_schedule(tune, windows)
    assert sum(n for n, _ in segments) == tune
    assert all(n > 0 for n, _ in segments)
    lengths = [n for n, ends_window in segments if ends_window]
    # Stan's schedule: each adaptation window at least as long as the one before it
    assert all(b >= a for a, b in zip(lengths, lengths[1:], strict=False))
    if not windows or tune < 20:
        assert not lengths
