"""Guards of lcsample.diffusion.sample: each refusal or warning, asserted by its message."""

import warnings

import numpy as np
import pytest

import lcsample.diffusion as diffusion
from lcsample.diffusion.predictors import unit_variance
from lcsample.diffusion.process import T_LIMIT, time_grid


def unit_score(x, t):
    """N(0, I) data: p_t = N(0, I) at every t, so the exact output variance is 1."""
    return -x


QUIET = dict(dim=1, seed=0, progressbar=False)


@pytest.mark.parametrize("predictor,steps", [("ddim", 3), ("exp-euler", 2), ("heun", 5),
                                             ("ddpm", 12), ("rm", 12)])
def test_unit_variance_is_the_sampled_variance_on_unit_gaussian_data(predictor, steps):
    # the guards' measure against the sampler itself: the deterministic predictors are
    # x → m x (start 1: the output is m), the random ones are checked by Monte Carlo
    ts = time_grid(steps, "logsnr", 5.0, 1e-3)
    exact = unit_variance(predictor, ts)
    if predictor in ("ddim", "exp-euler", "heun"):
        x, _ = diffusion.sample(unit_score, num_samples=1, predictor=predictor, ts=ts,
                                x_init=np.ones((1, 1)), **QUIET)
        assert x[0, 0] ** 2 == pytest.approx(exact, rel=1e-12)
        return
    n = 40_000
    x, _ = diffusion.sample(unit_score, num_samples=n, predictor=predictor, ts=ts, **QUIET)
    se = np.std(x[:, 0] ** 2) / np.sqrt(n)
    assert abs(np.mean(x[:, 0] ** 2) - exact) < 4.5 * se
    assert exact > 1.05  # a grid coarse enough for the difference to show


def test_one_step_over_the_default_horizon_is_refused_naming_steps_and_the_fewest():
    # the case: 1 RM step from t = 5 to the end time then default, 10⁻³, gave
    # variance 3e4 on N(0, I) data
    with pytest.raises(ValueError, match=r"steps=1 .* too coarse for predictor='rm'.* 3\.33e\+04 "
                                         r"times .*unstable; steps=9 is the fewest"):
        diffusion.sample(unit_score, num_samples=2, steps=1, predictor="rm", t_min=1e-3,
                         **QUIET)
    ts = [time_grid(k, "logsnr", 5.0, 1e-3) for k in (8, 9)]
    assert unit_variance("rm", ts[0]) > 2 >= unit_variance("rm", ts[1])  # 9 is the fewest
    with pytest.raises(ValueError, match=r"steps=1 .*predictor='ddpm'.*unstable"):
        diffusion.sample(unit_score, num_samples=2, steps=1, predictor="ddpm", t_min=1e-3,
                         **QUIET)


def test_an_inaccurate_grid_is_warned_about_in_both_directions():
    with pytest.warns(RuntimeWarning, match=r"steps=6 .*predictor='rm'.* 10\.2 times the "
                                            r"exact variance; steps=9 is the fewest"):
        diffusion.sample(unit_score, num_samples=2, steps=6, predictor="rm", t_min=1e-3,
                         **QUIET)
    # one DDIM step returns about the posterior mean: the variance collapses
    with pytest.warns(RuntimeWarning, match=r"steps=1 .*predictor='ddim'.* 0\.00264 times.*"
                                            r"steps=6 is the fewest"):
        diffusion.sample(unit_score, num_samples=2, steps=1, predictor="ddim", t_min=1e-3,
                         **QUIET)
    # the default (dpm-pc) on one step: the variance collapses less, but still warned about
    with pytest.warns(RuntimeWarning, match=r"steps=1 .*predictor='dpm-pc'.* 0\.00819 times.*"
                                            r"steps=3 is the fewest"):
        diffusion.sample(unit_score, num_samples=2, steps=1, t_min=1e-3, **QUIET)
    with pytest.warns(RuntimeWarning, match=r"ts is too coarse .*longest: t = 5 to 0\.5"):
        diffusion.sample(unit_score, num_samples=2, ts=[5.0, 0.5, 0.01], predictor="rm",
                         **QUIET)


@pytest.mark.parametrize("predictor", diffusion.PREDICTORS)
def test_default_grids_pass_silently(predictor):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for grid in ("logsnr", "uniform", "karras", "windows"):
            diffusion.sample(unit_score, num_samples=2, predictor=predictor, grid=grid, **QUIET)
        # the score-frozen integrator is exact on N(0, I) data, whatever the grid
        diffusion.sample(unit_score, num_samples=2, predictor="exp-euler", steps=1, **QUIET)


def test_t_max_beyond_float64_is_blamed_with_the_largest_that_works():
    with pytest.raises(ValueError, match=r"t_max must be <= 354\.8, .*got 1000\.0"):
        diffusion.sample(unit_score, num_samples=2, t_max=1e3, **QUIET)
    with pytest.raises(ValueError, match=r"ts must start at t <= 354\.8"):
        diffusion.sample(unit_score, num_samples=2, ts=[400.0, 1.0], **QUIET)
    for kind in ("uniform", "logsnr", "karras", "windows"):
        assert np.isfinite(time_grid(50, kind, T_LIMIT, 1e-3)).all()


def test_a_state_made_non_finite_by_a_step_is_not_blamed_on_the_score():
    def huge(x, t):  # finite at x = 1; the step's (e^4 - 1)·1e307 overflows
        return -1e307 * x

    with pytest.raises(ValueError, match=r"sample 6 became non-finite before the score call"):
        diffusion.sample(huge, num_samples=3, first_sample=5, predictor="exp-euler",
                         x_init=[[0.0], [1.0], [0.0]], ts=[5.0, 1.0, 0.5], **QUIET)


def _unconverged_run(**kwargs):
    # samples 0-2 start at 0, a fixed point of every step: their windows converge in one
    # round; samples 3-5 need more rounds than max_rounds=1 in each of the 3 windows
    x0 = np.zeros((6, 2))
    x0[3:] = np.random.default_rng(0).standard_normal((3, 2))
    return diffusion.sample(unit_score, dim=2, num_samples=6, steps=12, picard_steps=4,
                            max_rounds=1, tolerance=1e-12, x_init=x0, seed=1,
                            progressbar=False, **kwargs)


def test_picard_stopping_before_tolerance_warns_with_counts_and_strict_raises():
    with pytest.warns(RuntimeWarning, match=r"max_rounds=1 before tolerance=1e-12 in 3 window"
                                            r"\(s\), for 3 sample\(s\).*Raise max_rounds") as rec:
        _, info = _unconverged_run()
    assert [w["unconverged_samples"] for w in info["windows"]] == [3, 3, 3]
    assert len(rec) == 1
    with pytest.raises(RuntimeError, match=r"max_rounds=1 .* in 1 window\(s\), for 3 sample"):
        _unconverged_run(strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, info = diffusion.sample(unit_score, dim=2, num_samples=6, steps=12, picard_steps=4,
                                   strict=True, seed=1, progressbar=False)
    assert info["converged"]


@pytest.mark.parametrize("strict", ["yes", 1, None])
def test_strict_must_be_a_bool(strict):
    with pytest.raises(ValueError, match="strict"):
        diffusion.sample(unit_score, num_samples=2, picard_steps=2, strict=strict, **QUIET)


def test_a_non_finite_score_in_a_picard_window_names_the_right_sample():
    # sample 2 of 4 (global 12) is the only one far out; its score turns NaN below t = 4.25.
    # The window's first round scores the queries at t = 4.5 and 4 together: 8 rows, the
    # NaN in row 6, which is sample 2 of the second query, not sample 6
    def score(x, t):
        out = -x
        out[(t < 4.25) & (x[:, 0] > 50.0)] = np.nan
        return out

    x0 = np.zeros((4, 1))
    x0[2] = 100.0
    kw = dict(num_samples=4, first_sample=10, predictor="exp-euler", ts=[5.0, 4.5, 4.0, 3.5],
              x_init=x0, **QUIET)
    with pytest.raises(ValueError, match=r"non-finite values at t = 4 for sample 12 "):
        diffusion.sample(score, picard_steps=3, **kw)
    with pytest.raises(ValueError, match=r"non-finite values at t = 4 for sample 12 "):
        diffusion.sample(score, **kw)  # the sequential loop says the same
