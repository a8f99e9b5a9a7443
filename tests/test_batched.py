"""Batched Python targets (Target.from_batch) against the jitted path, and their checks."""

import numpy as np
import pytest

import lcsample

QUIET = dict(progressbar=False, compute_convergence_checks=False)


def _pair():
    """The same Gaussian as a jitted target and as a batched NumPy function."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    precision = a @ a.T + np.eye(6)
    mean = np.linspace(-1, 1, 6)
    jitted = lcsample.targets.Gaussian(mean, precision=precision)
    log_norm = jitted.args[-1]

    def batch(X):
        R = X - mean
        G = -R @ precision
        return log_norm + 0.5 * np.einsum("ij,ij->i", G, R), G

    return jitted, lcsample.Target.from_batch(batch, 6)


@pytest.mark.parametrize("kwargs", [
    {},
    {"method": "ulmc"},
    {"method": "rmd-tv", "draws": 40},
    {"inverse_mass_matrix": "diag"},
    {"tuning": "adaptive"},
    {"thin": 3, "draws": 50},
])
def test_batched_target_gives_the_jitted_draws(kwargs):
    jitted, batched = _pair()
    kwargs = {"draws": 200, "seed": 7, **kwargs}
    a = lcsample.sample(jitted, **kwargs, **QUIET)
    b = lcsample.sample(batched, **kwargs, **QUIET)
    # same kernels, same streams; only the two gradient implementations round differently
    np.testing.assert_allclose(b.posterior, a.posterior, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b.sample_stats["lp"], a.sample_stats["lp"], rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(b.n_grad_evals, a.n_grad_evals)
    assert b.attrs["tune"] == a.attrs["tune"]
    np.testing.assert_allclose(b.last_state.velocity, a.last_state.velocity, atol=1e-9)


def test_batched_chain_that_goes_nonfinite_is_stopped_like_a_jitted_one():
    def batch(X):
        lp = -0.5 * (X**2).sum(axis=1)
        # chains that wander above x0 = 1.5 meet a NaN wall
        lp[X[:, 0] > 1.5] = np.nan
        return lp, -X

    target = lcsample.Target.from_batch(batch, 2)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        res = lcsample.sample(target, draws=2000, tune=0, seed=1, step_size=0.5, friction=1.0,
                              inverse_mass_matrix=1.0, initial_positions=np.zeros(2), **QUIET)
    stopped = res.sample_stats["diverging"].any(axis=1)
    assert stopped.any()
    assert np.isnan(res.posterior[res.sample_stats["diverging"]]).all()
    assert np.isfinite(res.posterior[~res.sample_stats["diverging"]]).all()


@pytest.mark.parametrize("fn,match", [
    (lambda X: (np.zeros(X.shape[0] + 1), -X), "must return lp of shape"),
    (lambda X: (np.zeros(X.shape[0]), -X[:, :1]), "must return lp of shape"),
    (lambda X: (np.full(X.shape[0], np.inf), -X), "non-finite log density"),
    (lambda X: (np.zeros(X.shape[0]), np.full_like(X, np.nan)), "non-finite gradient"),
    (lambda X: 1 / 0, "raised at the initial point"),
])
def test_broken_batched_functions_get_a_clear_error(fn, match):
    with pytest.raises(ValueError, match=match):
        lcsample.sample(lcsample.Target.from_batch(fn, 3), draws=5, seed=0, **QUIET)


def test_from_batch_validates_its_arguments():
    with pytest.raises(ValueError, match="dim"):
        lcsample.Target.from_batch(lambda X: X, 0)
    with pytest.raises(TypeError, match="callable"):
        lcsample.Target.from_batch(3, 2)
