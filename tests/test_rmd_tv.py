"""The paper's log-concave TV algorithm (method="rmd-tv") against the exact Gaussian law."""

import numpy as np
import pytest
from helpers import batch_means_se

import lcsample
from lcsample.kernels.exact import corrected_variance, stationary_covariance

Z = 4.5


def test_corrector_lowers_the_exact_second_moment_error_at_the_default_settings():
    # a spectrum of curvatures, h tuned for 1 % at the stiffest, corrector defaults
    # (16 steps over 0.5/√L): total |Var·m - 1| is smaller with the corrector
    h = lcsample.mcmc.warmup.step_size.step_size_for_bias(1.0, 2.0, "rmd", 0.01)
    curvatures = np.linspace(0.05, 1.0, 20)
    rm = [abs(stationary_covariance(m, h, 2.0)[0, 0] * m - 1) for m in curvatures]
    tv = [abs(corrected_variance(m, h, 2.0, 16, 0.5 / 16) * m - 1) for m in curvatures]
    assert sum(tv) < sum(rm)
    assert tv[-1] < 0.9 * rm[-1]


def test_corrected_variance_without_corrector_steps_is_the_chain_variance():
    assert corrected_variance(0.7, 0.5, 1.3, 0, 0.1) == pytest.approx(
        stationary_covariance(0.7, 0.5, 1.3)[0, 0], rel=1e-14)


def test_rmd_tv_draws_follow_the_exact_corrected_law():
    # N(0, I_50) at a coarse step (10 % RM variance error) so the corrector's gain is
    # many standard errors wide; all coordinates pooled
    d, h, gamma, steps, step = 50, lcsample.mcmc.warmup.step_size.step_size_for_bias(1.0, 2.0, "rmd", 0.1), 2.0, 16, 1.0 / 16
    target = lcsample.targets.Gaussian(np.zeros(d), cov=np.ones(d))
    fixed = dict(step_size=h, friction=gamma, inverse_mass_matrix=1.0, tune=200, seed=5,
                 progressbar=False, compute_convergence_checks=False, initial_positions=np.zeros(d))
    tv = lcsample.sample(target, draws=3000, method="rmd-tv", corrector_steps=steps,
                         corrector_step_size=step, **fixed)
    rm = lcsample.sample(target, draws=3000, method="rmd", **fixed)
    assert (tv.sample_stats["n_steps"] == 2 + steps).all()
    exact_tv = corrected_variance(1.0, h, gamma, steps, step)
    exact_rm = stationary_covariance(1.0, h, gamma)[0, 0]
    assert exact_tv - 1 < 0.6 * (exact_rm - 1)
    for res, exact in ((tv, exact_tv), (rm, exact_rm)):
        sq = (res.posterior**2).mean(axis=2)  # (chains, draws), coordinates pooled
        assert abs(sq.mean() - exact) < Z * batch_means_se(sq)
    # and the corrected draws are measurably closer to the truth
    sq_tv, sq_rm = (tv.posterior**2).mean(axis=2), (rm.posterior**2).mean(axis=2)
    gap = Z * np.hypot(batch_means_se(sq_tv), batch_means_se(sq_rm))
    assert sq_tv.mean() + gap < sq_rm.mean()


def test_rmd_tv_records_its_corrector_and_counts_its_gradients():
    target = lcsample.targets.Gaussian(np.zeros(3), cov=np.ones(3))
    res = lcsample.sample(target, draws=10, method="rmd-tv", seed=1, progressbar=False,
                          compute_convergence_checks=False)
    steps, step = res.attrs["corrector_steps"], res.attrs["corrector_step_size"]
    assert steps == 16 and step == pytest.approx(0.5 / 16, rel=1e-6)  # L = 1 after Laplace
    # the automatic thin on N(0, I): 2 RM-ULMC steps (2 gradients each) per draw
    assert res.attrs["thin"] == 2
    assert (res.sample_stats["n_steps"] == 2 * 2 + steps).all()
    assert res.n_grad_evals.sum() >= res.sample_stats["n_steps"].sum()


def test_corrector_arguments_need_rmd_tv():
    target = lcsample.targets.Gaussian(np.zeros(2), cov=np.ones(2))
    with pytest.raises(ValueError, match="corrector_steps"):
        lcsample.sample(target, draws=2, corrector_steps=4, progressbar=False)
    with pytest.raises(ValueError, match="corrector_step_size"):
        lcsample.sample(target, draws=2, method="rmd-tv", corrector_step_size=-1.0, progressbar=False)
