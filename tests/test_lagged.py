"""``method="rmd-lagged"``: the lagged randomized midpoint against an independent NumPy step
and against its exact stationary law.

The reference step is test_step's RM-ULMC step with its midpoint predicted from the
gradient at the previous midpoint (at x for the first step); it is written with NumPy from
the formulas, so a wrong lag (the gradient at x, or at the new point), a missing
preconditioner on the lagged gradient, or a wrong midpoint velocity makes these tests fail.
"""

import warnings

import numba
import numpy as np
import pytest
from helpers import batch_means_se
from hypothesis import given, settings
from hypothesis import strategies as st
from test_step import (
    MASSES,
    ROWS_GAMMA,
    ROWS_H,
    ROWS_STARTS,
    V0,
    X0,
    _grad,
    _pair,
    _phi,
    _target,
    factors,
    lockstep_rows,
)

import lcsample
from lcsample.kernels.compiled import run_chain
from lcsample.kernels.exact import stationary_covariance
from lcsample.kernels.step import RMD_LAGGED
from lcsample.mcmc.warmup.step_size import stationary_bias, step_size_for_bias


def reference_lagged_run(seed, x, v, h, g, mass, n_steps):
    """``n_steps`` lagged steps in NumPy from (x, v) with the gradient at x.

    Returns x, v, the last midpoint, the velocity there and the gradient there.
    """
    L, U = factors(mass)
    sigma = np.sqrt(2 * g)
    rng = np.random.default_rng(seed)
    lagged = _grad(x)  # the first step predicts from the gradient at its start
    for _ in range(n_steps):
        a = rng.random() * h
        z = rng.standard_normal((x.size, 4))
        i1, a1 = _pair(a, g, z[:, 0], z[:, 1])
        i2, a2 = _pair(h - a, g, z[:, 2], z[:, 3])
        w2, w3 = a1 + _phi(h - a, g) * i1 + a2, np.exp(-g * (h - a)) * i1 + i2
        xm = x + _phi(a, g) * v + (a - _phi(a, g)) / g * U @ lagged + sigma * L @ a1
        vm = np.exp(-g * a) * v + _phi(a, g) * U @ lagged + sigma * L @ i1
        lagged = _grad(xm)
        gm = U @ lagged
        x, v = (x + _phi(h, g) * v + h * _phi(h - a, g) * gm + sigma * L @ w2,
                np.exp(-g * h) * v + h * np.exp(-g * (h - a)) * gm + sigma * L @ w3)
    return x, v, xm, vm, lagged


def _kinetic(mass, v):
    _, U = factors(mass)
    return 0.5 * v @ np.linalg.solve(U, v)


@pytest.mark.parametrize("mass", list(MASSES))
def test_compiled_lagged_chain_is_the_reference_step(mass):
    target, h, g = _target(), 0.3, 1.3
    lp, grad0 = target.logdensity_and_gradient(X0)
    x, v, gr, x_at = X0.copy(), V0.copy(), grad0.copy(), X0.copy()
    draws, lps, energy = np.empty((3, 4)), np.empty(3), np.empty(3)
    n, lp_end, _ = run_chain(target.logdensity_and_grad, target.args, RMD_LAGGED, h, g,
                             MASSES[mass]().kernel_args, None, 2, x, v, gr, x_at, lp,
                             np.random.default_rng(11), draws, lps, energy)
    assert n == 3
    xr, vr, xm, vm, gm = reference_lagged_run(11, X0, V0, h, g, mass, 6)
    for got, want in [(x, xr), (v, vr), (draws[-1], xr), (x_at, xm), (gr, gm)]:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    # the draw's lp and energy are those of its last midpoint, the last evaluated point
    lp_mid = target.logdensity_and_gradient(xm)[0]
    assert lp_end == lps[-1] == pytest.approx(lp_mid, rel=1e-12)
    assert energy[-1] == pytest.approx(_kinetic(mass, vm) - lp_mid, rel=1e-12)


@pytest.mark.parametrize("mass", list(MASSES))
def test_lockstep_lagged_rows_are_the_reference_step(mass):
    # one call of the batched gradient per step, each row as the reference
    state, calls = lockstep_rows(RMD_LAGGED, mass, 5, lagged=True)
    assert calls == [3] * 5
    starts, h, g = ROWS_STARTS, ROWS_H, ROWS_GAMMA
    for i in range(3):
        xr, vr, xm, vm, gm = reference_lagged_run(20 + i, starts[i], V0, h[i], g[i], mass, 5)
        for got, want in [(state.x[i], xr), (state.v[i], vr), (state.x_at[i], xm),
                          (state.v_at[i], vm), (state.g[i], gm)]:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("m,h,gamma,u", [(1.0, 0.9, 1.0, 1.0), (4.0, 0.25, 0.5, 1.0),
                                         (25.0, 0.15, 1.0, 0.5)])
def test_empirical_stationary_variance_matches_the_exact_lagged_law(m, h, gamma, u):
    d, draws = 1000, 4000
    target = lcsample.targets.Gaussian(np.zeros(d), np.full(d, 1.0 / m))
    exact = stationary_covariance(m, h, gamma, u, "rmd-lagged")
    rng = np.random.default_rng(5)
    start = rng.standard_normal((2, d)) * np.sqrt(exact[0, 0])
    res = lcsample.sample(target, draws=draws, tune=0, chains=2, seed=1, method="rmd-lagged",
                          step_size=h, friction=gamma, inverse_mass_matrix=u,
                          initial_positions=start, progressbar=False)
    sq = (res.posterior[:, draws // 10:] ** 2).mean(axis=2) * m  # coordinate-averaged m·x²
    se = batch_means_se(sq)
    assert abs(sq.mean() - exact[0, 0] * m) < 5 * se
    # the test tells the lagged law from the Shen–Lee step's at the same h
    assert abs(stationary_covariance(m, h, gamma, u, "rmd")[0, 0] * m - sq.mean()) > 5 * se


def test_the_lagged_step_is_longer_for_the_same_accuracy():
    # one gradient a step, and on a Gaussian a longer step than RM-ULMC's for 1 %
    for ratio, longer in [(1.0, 1.5), (0.5, 1.6), (0.1, 1.05)]:
        h_rmd = step_size_for_bias(1.0, ratio, "rmd", 0.01)
        h_lag = step_size_for_bias(1.0, ratio, "rmd-lagged", 0.01)
        assert h_lag > longer * h_rmd
    assert step_size_for_bias(1.0, 1.0, "rmd-lagged", 0.01) == pytest.approx(0.915, abs=5e-3)


@settings(max_examples=40, deadline=None)
@given(friction=st.floats(0.02, 3.0), tol=st.sampled_from([0.003, 0.01, 0.05]))
def test_the_tuned_lagged_step_is_the_first_to_reach_the_accuracy(friction, tol):
    # the lagged bias changes sign at small steps: the step returned must be the first
    # crossing of |bias| = tol, with every shorter step within it
    h = step_size_for_bias(1.0, friction, "rmd-lagged", tol)
    assert abs(stationary_bias(1.0, h, friction, "rmd-lagged")) <= tol
    assert abs(stationary_bias(1.0, 1.001 * h, friction, "rmd-lagged")) > tol  # bisection's
    for shorter in np.linspace(0.05, 0.99, 12) * h:
        assert abs(stationary_bias(1.0, shorter, friction, "rmd-lagged")) < tol


def test_a_resumed_lagged_run_raises_no_false_concavity_warning(tmp_path):
    # a resumed lagged chain's gradient is at a midpoint its saved state does not hold;
    # pairing it with the saved position would fake a non-concave Gaussian
    target = lcsample.targets.Gaussian(np.zeros(5), cov=np.linspace(0.5, 2.0, 5))
    kwargs = dict(draws=100, seed=4, method="rmd-lagged", progressbar=False,
                  compute_convergence_checks=False)
    first = lcsample.sample(target, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lcsample.sample(target, draws=100, tune=0, method="rmd-lagged",
                        initial_state=first.last_state, progressbar=False,
                        compute_convergence_checks=False)
        lcsample.sample(target, store=tmp_path / "s.zarr", **kwargs)
        lcsample.sample(target, store=tmp_path / "s.zarr", resume=True, **kwargs)


@numba.njit
def _walled_gaussian(x, grad_out, wall):
    for i in range(x.size):
        grad_out[i] = -x[i]
    return -0.5 * (x @ x) if x[0] <= wall else np.nan


def test_a_lagged_chain_at_a_wall_is_stopped_and_told_to_use_rmd():
    # the lagged step evaluates midpoints only: where the target is non-finite somewhere
    # a chain stops there and the warning says that the Shen–Lee step evaluates its draws
    target = lcsample.Target(_walled_gaussian, 2, args=(2.5,))
    with pytest.warns(RuntimeWarning, match="method='rmd', which does"):
        res = lcsample.sample(target, draws=400, tune=0, chains=4, seed=3, progressbar=False,
                              initial_positions=np.zeros(2), step_size=0.9, friction=1.0,
                              inverse_mass_matrix=1.0, method="rmd-lagged")
    div = res.sample_stats["diverging"]
    assert div.any()
    for c in range(4):  # NaN exactly where flagged, and flagged from the stop on
        np.testing.assert_array_equal(np.isnan(res.posterior[c]).any(axis=1), div[c])
