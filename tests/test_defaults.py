"""Default settings pass their own checks (issue 16, item 4), and the automatic thin.

With ``thin=None`` (the default) the sampling phase keeps every k-th step, k from the
tuned dynamics (:func:`lcsample.mcmc.warmup.loop.auto_thin`). At ``thin=1`` a default run
on N(0, I₁₀₀) or German credit warned of R-hat > 1.01 in 2 of 10 seeds: one step is ~0.2
of an effective draw, too little for 1,000 draws to settle R-hat on 100 coordinates.
"""

import warnings

import numpy as np
import pytest

import lcsample
from lcsample.mcmc.warmup.loop import auto_thin

QUIET = dict(progressbar=False, compute_convergence_checks=False)


def _targets():
    return {
        "gaussian_100": lcsample.targets.Gaussian(np.zeros(100), cov=np.eye(100)),
        "german_credit": lcsample.targets.LogisticRegression(
            *lcsample.datasets.load_german_credit()),
    }


@pytest.mark.parametrize("name", ["gaussian_100", "german_credit"])
def test_default_runs_come_back_without_convergence_warnings(name):
    target = _targets()[name]
    for seed in range(10):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lcsample.sample(target, seed=seed, progressbar=False)
        texts = [str(w.message) for w in caught]
        assert not [t for t in texts if "convergence checks" in t], (seed, texts)


def test_the_automatic_thin_is_an_explicit_thin_chosen_after_the_warmup():
    target = lcsample.targets.Gaussian(np.zeros(20), cov=np.eye(20))
    # the Shen–Lee step, whose shorter step makes a thin of 2 here (the lagged one's is 1)
    auto = lcsample.sample(target, draws=200, seed=4, method="rmd", **QUIET)
    thin = auto.attrs["thin"]
    assert thin == auto_thin(auto.tuning_history, auto.attrs["step_size"][0],
                             auto.attrs["friction"][0]) == 2
    given = lcsample.sample(target, draws=200, seed=4, thin=thin, method="rmd", **QUIET)
    np.testing.assert_array_equal(auto.posterior, given.posterior)
    assert (auto.sample_stats["n_steps"] == 2 * thin).all()
    # a continuation keeps the run's thin, and equals the longer run
    first = lcsample.sample(target, draws=100, seed=4, method="rmd", **QUIET)
    rest = lcsample.sample(target, draws=100, initial_state=first.last_state, method="rmd",
                           **QUIET)
    assert first.last_state.thin == rest.attrs["thin"] == thin
    np.testing.assert_array_equal(np.concatenate([first.posterior, rest.posterior], axis=1),
                                  auto.posterior)


def test_thin_must_be_a_positive_integer_or_none():
    target = lcsample.targets.Gaussian(np.zeros(2), cov=np.eye(2))
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="thin"):
            lcsample.sample(target, draws=2, thin=bad, **QUIET)
