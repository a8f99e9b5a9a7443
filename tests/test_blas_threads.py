"""One BLAS thread while chains advance (lcsample._blas): what a target sees, and draws
that do not depend on ``cores`` for a target that calls BLAS."""

import numpy as np
import pytest

import lcsample

threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl is not installed")


def _blas_threads():
    return {info["num_threads"] for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"}


def test_a_target_sees_one_blas_thread_during_warmup_and_sampling():
    seen = []

    def batch(X):  # a batched target: it runs in the calling thread, in lockstep
        seen.append(_blas_threads())
        return -0.5 * (X**2).sum(axis=1), -X

    outside = _blas_threads()
    lcsample.sample(lcsample.Target.from_batch(batch, 3), draws=20, tune=30, chains=2, seed=0,
                    progressbar=False, compute_convergence_checks=False)
    # the sampling's calls (20 draws, 2 gradient rounds each) and the warmup's are limited;
    # the initialization and the retunes between the phases run outside the loops
    assert all(s == {1} for s in seen[-40:])
    assert sum(s == {1} for s in seen) >= 40 + 30
    assert _blas_threads() == outside  # restored after the run


def test_draws_of_a_blas_target_do_not_depend_on_cores():
    """A logistic regression (20,000 rows: OpenBLAS splits its products between threads)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20_000, 5))
    y = (rng.random(20_000) < 1 / (1 + np.exp(-X @ np.ones(5) / 2))).astype(float)
    target = lcsample.targets.LogisticRegression(X, y)
    kw = dict(draws=50, tune=60, chains=2, seed=4, progressbar=False,
              compute_convergence_checks=False)
    one = lcsample.sample(target, cores=1, **kw)
    two = lcsample.sample(target, cores=2, **kw)
    np.testing.assert_array_equal(np.asarray(one.posterior), np.asarray(two.posterior))
