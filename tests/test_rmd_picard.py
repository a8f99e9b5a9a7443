"""method="rmd-picard": Picard blocks of RM-ULMC against the sequential chain and the truth."""

import numpy as np
import pytest
from scipy.stats import ortho_group

import lcsample
from lcsample.kernels.exact import stationary_covariance

QUIET = dict(progressbar=False, compute_convergence_checks=False)


def _rotated(d=12, kappa=100.0):
    """A Gaussian with variances logspace(0, log10 κ) in a random basis, jitted and batched."""
    q = ortho_group.rvs(d, random_state=1)
    variances = np.logspace(0, np.log10(kappa), d)
    cov = (q * variances) @ q.T
    mean = np.linspace(-1.0, 1.0, d)
    jitted = lcsample.targets.Gaussian(mean, cov)
    precision = np.linalg.inv(cov)
    log_norm = jitted.args[-1]

    def batch(X):
        R = X - mean
        G = -R @ precision
        return log_norm + 0.5 * np.einsum("ij,ij->i", G, R), G

    return jitted, lcsample.Target.from_batch(batch, d), q, variances


@pytest.mark.parametrize("kwargs", [
    {},
    {"inverse_mass_matrix": "diag"},
    {"thin": 3, "draws": 60},
    {"tuning": "adaptive"},
    {"picard_steps": 3},
])
def test_exact_picard_blocks_give_the_sequential_draws(kwargs):
    # α and the normals of a block are drawn first, in the sequential order, and held
    # fixed; with tolerance 0 every block runs to its fixed point: the "rmd" chain itself
    jitted, batched, _, _ = _rotated()
    kwargs = {"draws": 150, "seed": 9, "chains": 3, **kwargs}
    picard = {"picard_steps": kwargs.pop("picard_steps")} if "picard_steps" in kwargs else {}
    seq = lcsample.sample(jitted, method="rmd", **kwargs, **QUIET)
    for target in (jitted, batched):
        par = lcsample.sample(target, method="rmd-picard", tolerance=0.0, **picard, **kwargs,
                              **QUIET)
        # two gradient implementations: their round-off differs, and reaches the Laplace
        # mass through finite differences at the rough mode (1e-5 steps where |∇log π| is
        # still ~100: ~1e-9 relative), and from there the draws (measured 6.4e-9)
        atol = 0.0 if target is jitted else 2e-8
        np.testing.assert_allclose(par.posterior, seq.posterior, rtol=0, atol=atol)
        np.testing.assert_allclose(par.sample_stats["lp"], seq.sample_stats["lp"], atol=1e-9)
        assert par.attrs["tune"] == seq.attrs["tune"]
        np.testing.assert_array_equal(par.attrs["picard_unconverged_blocks"], 0)
        # fewer sequential rounds than the sequential chain's gradient evaluations
        assert (par.attrs["n_rounds"] < seq.n_grad_evals).all()


def test_default_tolerance_is_accurate_along_the_stiffest_direction():
    # the default blocks stop at a 1e-3 (in posterior sd) residual; the draws must still
    # have the exact stationary law of RM-ULMC at the tuned (h, γ) within Monte Carlo
    # error, stiffest direction included (docs/theory.md §8, "Where the bias shows")
    jitted, _, q, variances = _rotated(d=8, kappa=100.0)
    res = lcsample.sample(jitted, method="rmd-picard", draws=6000, chains=4, seed=2,
                          inverse_mass_matrix=np.diag(jitted.cov).copy(), **QUIET)
    seq = lcsample.sample(jitted, method="rmd", draws=6000, chains=4, seed=2,
                          inverse_mass_matrix=np.diag(jitted.cov).copy(), **QUIET)
    z = (res.posterior.reshape(-1, 8) - jitted.mean) @ q  # eigen-coordinates
    z_seq = (seq.posterior.reshape(-1, 8) - jitted.mean) @ q
    # the chain is autocorrelated: standard errors from ArviZ-free batch means
    def batch_se(values, batches=40):
        means = np.array([b.mean() for b in np.array_split(values, batches)])
        return means.std(ddof=1) / np.sqrt(batches)
    for j in (0, 7):  # softest and stiffest directions
        var_par, var_seq = np.mean(z[:, j] ** 2), np.mean(z_seq[:, j] ** 2)
        se = batch_se(z[:, j] ** 2) + batch_se(z_seq[:, j] ** 2)
        assert abs(var_par - var_seq) < 4.5 * se
        # and both within 4.5 SE plus the tuned 1 % allowance of the truth
        assert abs(var_par / variances[j] - 1) < 4.5 * batch_se(z[:, j] ** 2) / variances[j] + 0.015
    assert (res.attrs["n_rounds"] < seq.n_grad_evals).all()
    assert (res.n_grad_evals > seq.n_grad_evals).all()  # parallelism is paid in gradients


def test_exact_stationary_law_of_the_blocks_matches_the_oracle():
    # fixed h, γ, unit mass on N(0, diag(1, 1/9)): draws with the default tolerance have
    # the RM-ULMC stationary variance of lcsample.kernels.exact within Monte Carlo error
    target = lcsample.targets.Gaussian(np.zeros(2), np.array([1.0, 1.0 / 9.0]))
    h, gamma = 0.25, 2.0
    res = lcsample.sample(target, method="rmd-picard", draws=20000, tune=0, chains=4, seed=5,
                          step_size=h, friction=gamma, inverse_mass_matrix=1.0,
                          initial_positions=np.zeros(2), **QUIET)
    x = res.posterior[:, 500:].reshape(-1, 2)
    for j, m in enumerate((1.0, 9.0)):
        exact_var = stationary_covariance(m, h, gamma)[0, 0]
        chunks = np.array_split(x[:, j] ** 2, 50)
        se = np.std([c.mean() for c in chunks], ddof=1) / np.sqrt(50)
        assert abs(np.mean(x[:, j] ** 2) - exact_var) < 4.5 * se


def test_round_cap_is_counted_not_hidden():
    jitted, _, _, _ = _rotated()
    res = lcsample.sample(jitted, method="rmd-picard", draws=64, tune=0, chains=2, seed=1,
                          max_rounds=2, step_size=0.5, friction=1.0, **QUIET)
    assert (res.attrs["picard_unconverged_blocks"] > 0).all()
    assert (res.attrs["picard_blocks"] == 8).all()  # 64 steps in blocks of 8
    assert (res.attrs["n_rounds"] <= 2 * 8).all()
    assert np.isfinite(res.posterior).all()


def test_gradient_accounting_adds_up():
    jitted, _, _, _ = _rotated()
    res = lcsample.sample(jitted, method="rmd-picard", draws=80, tune=40, chains=2, seed=3,
                          discard_tuned_samples=False, **QUIET)
    spent = (res.sample_stats["n_steps"].sum(axis=1)
             + res.warmup["sample_stats"]["n_steps"].sum(axis=1))
    # everything else is the shared mode search and curvature estimates, the same as "rmd"
    seq = lcsample.sample(jitted, method="rmd", draws=80, tune=40, chains=2, seed=3,
                          discard_tuned_samples=False, **QUIET)
    seq_spent = (seq.sample_stats["n_steps"].sum(axis=1)
                 + seq.warmup["sample_stats"]["n_steps"].sum(axis=1))
    np.testing.assert_array_equal(res.n_grad_evals - spent, seq.n_grad_evals - seq_spent)
    assert (res.sample_stats["n_steps"] >= 2).all()


def test_nonfinite_wall_stops_the_chain_where_the_sequential_chain_stops():
    def batch(X):
        lp = -0.5 * (X**2).sum(axis=1)
        lp[X[:, 0] > 1.5] = np.nan  # chains that wander above x0 = 1.5 meet a NaN wall
        return lp, -X

    target = lcsample.Target.from_batch(batch, 2)
    kw = dict(draws=600, tune=0, seed=1, step_size=0.5, friction=1.0, inverse_mass_matrix=1.0,
              initial_positions=np.zeros(2), **QUIET)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        seq = lcsample.sample(target, method="rmd", **kw)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        par = lcsample.sample(target, method="rmd-picard", tolerance=0.0, **kw)
    np.testing.assert_array_equal(par.sample_stats["diverging"], seq.sample_stats["diverging"])
    np.testing.assert_array_equal(par.posterior, seq.posterior)
    np.testing.assert_array_equal(par.last_state.position, seq.last_state.position)


@pytest.mark.parametrize("kwargs,name", [
    ({"picard_steps": 4}, "picard_steps"),
    ({"tolerance": 1e-3}, "tolerance"),
    ({"max_rounds": 3}, "max_rounds"),
    ({"method": "rmd-picard", "picard_steps": 0}, "picard_steps"),
    ({"method": "rmd-picard", "tolerance": -1.0}, "tolerance"),
    ({"method": "rmd-picard", "tolerance": "small"}, "tolerance"),
    ({"method": "rmd-picard", "max_rounds": 0}, "max_rounds"),
    ({"method": "rmd-parallel"}, "rmd-picard"),  # the old name says the new one
])
def test_bad_parallel_arguments_are_named(kwargs, name):
    jitted, _, _, _ = _rotated(d=3)
    with pytest.raises(ValueError, match=name):
        lcsample.sample(jitted, draws=10, **kwargs, **QUIET)


def test_the_warmup_tunes_the_same_step_as_the_sequential_chain():
    # a Picard chain's stored gradient comes from a nearby point at a positive tolerance:
    # curvature estimates that took it for the gradient at the chain's position saw a
    # 1e-5 curvature and shrank the step 30-fold; on a Gaussian the curvature is the same
    # everywhere, so both methods must tune the same step and friction after each window
    jitted, _, _, _ = _rotated(d=6, kappa=4.0)
    kwargs = dict(draws=10, chains=2, seed=11, tune=60, **QUIET)
    par = lcsample.sample(jitted, method="rmd-picard", **kwargs)
    seq = lcsample.sample(jitted, method="rmd", **kwargs)
    assert len(par.tuning_history) == len(seq.tuning_history) > 1
    for ours, theirs in zip(par.tuning_history, seq.tuning_history, strict=True):
        assert ours["step_size"] == pytest.approx(theirs["step_size"], rel=1e-6)
        assert ours["friction"] == pytest.approx(theirs["friction"], rel=1e-6)
