"""Saying when a model is not log-concave (issue 14, item 4): a funnel, a heavy tail, an
improper flat direction and the centered eight schools each get their warning, naming the
variable; log-concave targets get none, and R-hat's advice follows what was found."""

import warnings

import numba
import numpy as np
import pytest

import lcsample
from lcsample import Variable
from lcsample.mcmc.concavity import check_concavity

QUIET = dict(progressbar=False)


@numba.njit
def _funnel(x, g):
    # Neal's funnel: v ~ N(0, 3²), x_i | v ~ N(0, e^v)
    v, d = x[0], x.shape[0]
    s = np.sum(x[1:] ** 2)
    g[0] = -v / 9.0 - 0.5 * (d - 1) + 0.5 * s * np.exp(-v)
    for i in range(1, d):
        g[i] = -x[i] * np.exp(-v)
    return -v * v / 18.0 - 0.5 * (d - 1) * v - 0.5 * s * np.exp(-v)


@numba.njit
def _student(x, g, nu):
    lp = 0.0
    for i in range(x.shape[0]):
        lp += -0.5 * (nu + 1) * np.log1p(x[i] ** 2 / nu)
        g[i] = -(nu + 1) * x[i] / (nu + x[i] ** 2)
    return lp


@numba.njit
def _flat(x, g):
    # x[1] appears nowhere: no prior, no data, an improper posterior
    g[0], g[1] = -x[0], 0.0
    return -0.5 * x[0] ** 2


@numba.njit
def _eight_schools_centered(x, g, y, s):
    # mu ~ N(0, 5²), tau ~ half-Cauchy(5) sampled as log tau, theta_j ~ N(mu, tau²)
    mu, log_tau = x[0], x[1]
    tau = np.exp(log_tau)
    u = (tau / 5.0) ** 2
    lp = -0.5 * mu * mu / 25.0 - np.log1p(u) + log_tau
    g[0], g[1] = -mu / 25.0, -2.0 * u / (1.0 + u) + 1.0
    for j in range(8):
        r = (x[2 + j] - mu) / tau
        e = (y[j] - x[2 + j]) / s[j]
        lp += -0.5 * r * r - log_tau - 0.5 * e * e
        g[0] += r / tau
        g[1] += r * r - 1.0
        g[2 + j] = -r / tau + e / s[j]
    return lp


EIGHT = (np.array([28.0, 8, -3, 7, -1, 1, 18, 12]), np.array([15.0, 10, 16, 11, 9, 11, 10, 18]))


def _warnings_of(target, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = lcsample.sample(target, seed=0, **kwargs, **QUIET)
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize("target, named", [
    (lcsample.Target(_funnel, 4, variables=[Variable("v"), Variable("x", (3,))]), "v"),
    (lcsample.Target(_student, 3, args=(1.5,)), "x["),
])
def test_a_funnel_and_a_heavy_tail_are_called_not_log_concave_by_name(target, named):
    result, texts = _warnings_of(target)
    found = [t for t in texts if t.startswith("the target is not log-concave where")]
    assert len(found) == 1 and f"made mostly of {named}" in found[0]
    assert "reparameterize" in found[0] and "run longer" not in found[0]
    assert result.attrs["concavity_pair_failures"] > 0
    rhat = [t for t in texts if "[rhat]" in t]
    assert all("run longer" not in t for t in rhat)


@pytest.mark.parametrize("target, named", [
    (lcsample.Target(_flat, 2), "x[1]"),
    (lcsample.Target(_eight_schools_centered, 10, args=EIGHT,
                     variables=[Variable("mu"), Variable("tau", transform="log"),
                                Variable("theta", (8,))]), "tau"),
])
def test_no_curvature_at_the_mode_is_called_out_by_name(target, named):
    result, texts = _warnings_of(target)
    found = [t for t in texts if t.startswith("the log density is flat, or curves upward")]
    assert len(found) == 1 and f"along {named} at its mode" in found[0]
    assert result.attrs["flat_directions"] == named
    assert not any("different optima" in t for t in texts)  # no spurious modes on a ridge
    assert all("run longer" not in t for t in texts if "[rhat]" in t)


@pytest.mark.parametrize("make", [
    lambda: lcsample.targets.Gaussian(np.zeros(4), cov=np.array([1.0, 4.0, 0.01, 9.0])),
    lambda: lcsample.targets.LinearRegression(*_regression_data(False)),
    lambda: lcsample.targets.LogisticRegression(*_regression_data(True)),
    lambda: lcsample.targets.PoissonRegression(*_counts()),
])
def test_log_concave_targets_raise_no_false_alarm(make):
    result, texts = _warnings_of(make(), compute_convergence_checks=False)
    assert texts == []
    assert result.attrs["concavity_pair_failures"] == 0 and result.attrs["concavity_failures"] == 0
    assert "flat_directions" not in result.attrs


def _regression_data(binary):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 3))
    y = X @ np.array([1.0, -0.5, 0.25]) + rng.standard_normal(100)
    return X, (y > 0).astype(float) if binary else y


def _counts():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((100, 3)) * 0.3
    return X, rng.poisson(np.exp(X @ np.array([1.0, -0.5, 0.25]))).astype(float)


def test_the_pair_test_is_exact_on_a_gaussian_and_fails_on_a_convex_function():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 2))
    concave = lcsample.Target.from_batch(lambda X: (-0.5 * (X**2).sum(1), -X), 2)
    convex = lcsample.Target.from_batch(lambda X: (0.5 * (X**2).sum(1), X), 2)
    ok = check_concavity(concave, x, -0.5 * (x**2).sum(1), -x)
    assert ok.n_failed == 0 and ok.n_pairs == 30
    bad = check_concavity(convex, x, 0.5 * (x**2).sum(1), x)
    # for +½|x|², every ordered pair of distinct points breaks the tangent inequality by
    # exactly ½|x_i - x_j|²
    gaps = 0.5 * ((x[:, None] - x[None]) ** 2).sum(-1)
    assert bad.n_failed == 30 and bad.worst_gap == pytest.approx(gaps.max())
    assert bad.curvature == pytest.approx(1.0, rel=1e-4)


def test_tuning_from_extreme_curvatures_and_chains_that_never_move_are_named():
    from lcsample.mcmc.warmup.step_size import CURVATURE_RANGE, extreme_curvature_warning

    target = lcsample.Target(_eight_schools_centered, 10, args=EIGHT,
                             variables=[Variable("mu"), Variable("tau", transform="log"),
                                        Variable("theta", (8,))])
    # started uniformly, the centered eight schools tunes a step in the thousands
    result, texts = _warnings_of(target, init="uniform")
    found = [t for t in texts if "nothing like it is at its mode" in t]
    assert len(found) == 1 and "a longer run will" in found[0]
    assert result.attrs["step_size"][0] > 100
    low, high = CURVATURE_RANGE
    assert extreme_curvature_warning(low, high, 0.5, 1.0) is None
    assert extreme_curvature_warning(low / 2, 1.0, 0.5, 1.0) is not None
    assert extreme_curvature_warning(1.0, 2 * high, 0.5, 1.0) is not None


def test_a_chain_that_never_moves_is_reported_stuck():
    from lcsample.mcmc.diagnostics import convergence_checks

    result = lcsample.sample(lcsample.targets.Gaussian(np.zeros(2), cov=np.ones(2)),
                             draws=200, seed=0, progressbar=False,
                             compute_convergence_checks=False)
    result.posterior[2] = result.posterior[2, 0]  # chain 2 frozen at its first draw
    stuck = [d for d in convergence_checks(result) if d.kind == "stuck"]
    assert len(stuck) == 1 and stuck[0].chains == (2,)
    assert "did not move" in stuck[0].message and "longer run will not help" in stuck[0].message


def test_many_chains_test_at_most_256_states():
    """The pairwise test costs O(n²d): with 300 chains it takes 256 of their states
    (evenly over chains and times), not 300 × 3 (80 % of a GB of pairs at d = 1,000)."""
    target = lcsample.targets.Gaussian(np.zeros(2), cov=np.ones(2))
    res = lcsample.sample(target, draws=40, chains=300, seed=0, progressbar=False,
                          compute_convergence_checks=False)
    assert res.attrs["concavity_pairs"] == 256 * 255
    assert res.attrs["concavity_pair_failures"] == 0
