"""The sample() API: reproducibility, shapes, resuming, bad input, divergences, Ctrl-C."""

import _thread
import threading
import time
import warnings

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lcsample

TARGET = lcsample.targets.Gaussian(np.array([1.0, -2.0, 0.5]), np.array([1.0, 4.0, 0.25]))
FIXED = dict(step_size=0.3, friction=1.5, inverse_mass_matrix=1.0)


def run(**kwargs):
    opts = dict(draws=50, tune=30, chains=3, seed=4, progressbar=False)
    opts.update(kwargs)
    return lcsample.sample(TARGET, **opts)


@pytest.mark.parametrize("method", ["rmd", "ulmc", "rmd-lagged"])
def test_same_seed_same_draws_any_cores(method):
    a = run(method=method, cores=1)
    b = run(method=method, cores=2)
    c = run(method=method, cores=3)
    np.testing.assert_array_equal(a.posterior, b.posterior)
    np.testing.assert_array_equal(a.posterior, c.posterior)
    np.testing.assert_array_equal(a.sample_stats["lp"], c.sample_stats["lp"])
    assert not np.array_equal(a.posterior, run(method=method, seed=5).posterior)


def test_recorded_seed_repeats_an_unseeded_run():
    a = run(seed=None)
    assert isinstance(a.attrs["seed"], (int, str))  # text above 2**63, as ArviZ stores it
    b = run(seed=a.attrs["seed"])
    np.testing.assert_array_equal(a.posterior, b.posterior)


def test_shapes_and_stats():
    # the Shen–Lee step, which evaluates the target at its draws (rmd-lagged: test_lagged)
    res = run(draws=40, tune=25, chains=2, thin=3, discard_tuned_samples=False, method="rmd")
    assert res.posterior.shape == (2, 40, 3)
    assert res.warmup["posterior"].shape == (2, 25, 3)
    for name, dtype in [("lp", float), ("diverging", bool), ("step_size", float),
                        ("friction", float), ("n_steps", np.int64)]:
        assert res.sample_stats[name].shape == (2, 40)
        assert res.sample_stats[name].dtype == dtype
        assert res.warmup["sample_stats"][name].shape == (2, 25)
    # thin=3 RM steps per draw, 2 gradients each
    assert (res.sample_stats["n_steps"] == 6).all()
    # every gradient is accounted for: initial check, curvature estimates, steps
    total = res.sample_stats["n_steps"].sum(axis=1) + res.warmup["sample_stats"]["n_steps"].sum(axis=1)
    np.testing.assert_array_equal(total + 1, res.n_grad_evals)
    # lp is the log density of the stored draw
    lp = [TARGET.logdensity_and_gradient(x)[0] for x in res.posterior[1, :5]]
    np.testing.assert_allclose(res.sample_stats["lp"][1, :5], lp, rtol=1e-12)
    assert set(res.timing) == {"compile", "initialization", "warmup", "sampling", "checks",
                               "total"}
    assert res.attrs["is_calibrated"] is False and res.attrs["seed"] == 4


def test_fixed_parameters_are_used_as_given():
    res = run(tune=0, **FIXED)
    assert (res.sample_stats["step_size"] == 0.3).all()
    assert (res.sample_stats["friction"] == 1.5).all()
    np.testing.assert_array_equal(res.last_state.inverse_mass_matrix, 1.0)
    # tuning still may adapt what was not fixed
    res = run(tune=200, step_size=0.3)
    assert (res.sample_stats["step_size"] == 0.3).all()
    assert not np.allclose(res.last_state.inverse_mass_matrix, 1.0)


def test_resume_continues_exactly():
    whole = run(draws=60, tune=40)
    first = run(draws=25, tune=40)
    # no tune given: a continued run does no warmup
    rest = lcsample.sample(TARGET, draws=35, chains=3, initial_state=first.last_state,
                           progressbar=False)
    np.testing.assert_array_equal(np.concatenate([first.posterior, rest.posterior], axis=1),
                                  whole.posterior)
    assert (rest.sample_stats["step_size"] == first.sample_stats["step_size"][:, :1]).all()


def test_initial_positions_are_used():
    x0 = np.array([[5.0, 5.0, 5.0], [-5.0, 0.0, 1.0]])
    res = lcsample.sample(TARGET, draws=1, tune=0, chains=2, initial_positions=x0,
                          progressbar=False, discard_tuned_samples=False, **FIXED)
    # one step of size 0.3 from x0 stays near x0
    assert np.abs(res.posterior[:, 0] - x0).max() < 2.0


INVALID = {
    "draws": [0, -1, 2.5, True],
    "tune": [-1, 1.5],
    "chains": [0, -2, "4"],
    "thin": [0, 1.5],
    "cores": [0, -1],
    "step_size": [0.0, -0.1, np.nan, np.inf, "big"],
    "friction": [0.0, -1.0, np.nan],
    "inverse_mass_matrix": [0.0, -1.0, [1.0, 2.0], [1.0, np.nan, 1.0], [[1.0]], "full",
                            -np.eye(3), [[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]],
    "initial_positions": [[1.0, 2.0], [[1.0, 2.0, np.inf]] * 3, np.zeros((2, 3))],
    "method": ["nuts", ""],
    "seed": [-1, 1.5],
    "tuning": ["nuts", None],
    "target_accuracy": [0.0, 1.0, -0.1, np.nan],
    "init": ["jitter", None],
    "corrector_steps": [0, 2.5],
    "corrector_step_size": [0.0, -1.0],
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([(k, v) for k, vals in INVALID.items() for v in vals]))
def test_invalid_arguments_are_rejected_by_name(case):
    name, value = case
    kwargs = {"progressbar": False, "chains": 3, name: value}
    with pytest.raises(ValueError, match=name):
        lcsample.sample(TARGET, **kwargs)


@settings(max_examples=15, deadline=None)
@given(chains=st.integers(1, 3), draws=st.integers(1, 30), thin=st.integers(1, 3),
       seed=st.integers(0, 2**32))
def test_shapes_and_reproducibility_property(chains, draws, thin, seed):
    kwargs = dict(draws=draws, tune=0, chains=chains, thin=thin, seed=seed, progressbar=False, **FIXED)
    a = lcsample.sample(TARGET, **kwargs)
    assert a.posterior.shape == (chains, draws, 3)
    assert np.isfinite(a.posterior).all()
    np.testing.assert_array_equal(a.posterior, lcsample.sample(TARGET, cores=1, **kwargs).posterior)


@numba.njit
def _walled_gaussian(x, grad_out, wall):
    # NaN beyond a wall: a chain that crosses it must be stopped, never recorded as NaN silently
    for i in range(x.size):
        grad_out[i] = -x[i]
    if x[0] > wall:
        return np.nan
    return -0.5 * (x @ x)


def test_nonfinite_chain_is_stopped_flagged_and_reported():
    target = lcsample.Target(_walled_gaussian, 2, args=(2.5,))
    with pytest.warns(RuntimeWarning, match=r"chain \d+ reached a non-finite state at sampling"):
        res = lcsample.sample(target, draws=400, tune=0, chains=4, seed=3, progressbar=False,
                              initial_positions=np.zeros(2), method="rmd", **FIXED)
    div = res.sample_stats["diverging"]
    stopped = div.any(axis=1)
    assert 0 < stopped.sum() < 4  # this seed stops some chains and not others
    for c in range(4):
        nan_rows = np.isnan(res.posterior[c]).any(axis=1)
        np.testing.assert_array_equal(nan_rows, div[c])  # NaN exactly where flagged
        if stopped[c]:
            first = np.argmax(div[c])
            assert div[c, first:].all() and np.isfinite(res.posterior[c, :first]).all()
            assert (res.posterior[c, :first, 0] <= 2.5).all()
    assert res.n_divergences == stopped.sum()
    assert np.isfinite(res.last_state.position).all()


@numba.njit
def _slow_gaussian(x, grad_out, work):
    acc = 0.0
    for _ in range(work):  # a costly model
        acc += 1e-300
    for i in range(x.size):
        grad_out[i] = -x[i]
    return -0.5 * (x @ x) + acc


def test_ctrl_c_returns_draws_so_far():
    target = lcsample.Target(_slow_gaussian, 2, args=(20_000,))
    kwargs = dict(tune=0, chains=2, seed=8, progressbar=False, compute_convergence_checks=False, **FIXED)
    lcsample.sample(target, draws=2, **kwargs)  # compile first
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    with pytest.warns(RuntimeWarning, match="interrupted"):
        res = lcsample.sample(target, draws=1_000_000, **kwargs)
    timer.cancel()
    n = res.posterior.shape[1]
    assert 0 < n < 1_000_000 and np.isfinite(res.posterior).all()
    # what came back is exactly the start of the uninterrupted run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = lcsample.sample(target, draws=min(n, 500), **kwargs)
    np.testing.assert_array_equal(res.posterior[:, : min(n, 500)], ref.posterior)


def test_ctrl_c_on_a_batched_target_returns_draws_so_far():
    def slow(X):
        time.sleep(2e-4)
        return -0.5 * (X**2).sum(axis=1), -X

    target = lcsample.Target.from_batch(slow, 2)
    kwargs = dict(tune=0, chains=2, seed=8, progressbar=False, compute_convergence_checks=False, **FIXED)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    with pytest.warns(RuntimeWarning, match="interrupted"):
        res = lcsample.sample(target, draws=1_000_000, **kwargs)
    timer.cancel()
    n = res.posterior.shape[1]
    assert 0 < n < 1_000_000 and np.isfinite(res.posterior).all()
    ref = lcsample.sample(target, draws=min(n, 200), **kwargs)
    np.testing.assert_array_equal(res.posterior[:, : min(n, 200)], ref.posterior)


def test_convergence_problems_are_warned_in_one_block_and_returned():
    target = lcsample.targets.Gaussian(np.zeros(3), cov=np.ones(3))
    with pytest.warns(RuntimeWarning, match="convergence checks") as record:
        res = lcsample.sample(target, draws=30, chains=2, seed=0, progressbar=False)
    assert sum("convergence checks" in str(w.message) for w in record) == 1
    kinds = {d.kind for d in res.diagnostics()}
    assert "ess" in kinds  # 30 draws per chain cannot give 100 effective draws per chain
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lcsample.sample(target, draws=30, chains=2, seed=0, progressbar=False,
                        compute_convergence_checks=False)
