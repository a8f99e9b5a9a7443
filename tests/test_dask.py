"""Runs on a real Dask ``LocalCluster`` (worker processes on loopback) and other executors.

Every test compares with the same run made locally: the draws must be identical, bit for
bit, whichever worker ran which chain or chunk, and whatever happened to the workers.
"""

import concurrent.futures
import os
import signal
import threading
import time
import warnings

import numba
import numpy as np
import pytest

import lcsample
from lcsample import diffusion

distributed = pytest.importorskip("distributed", reason="needs the [dask] extra")

QUIET = dict(progressbar=False, compute_convergence_checks=False)


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own start-up notes
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
        with distributed.Client(cluster) as c:
            yield c
        cluster.close()


@pytest.fixture(scope="module")
def gaussian():
    return lcsample.targets.Gaussian(np.zeros(4), cov=np.array([0.5, 1.0, 2.0, 4.0]))


def _batched_normal(X):
    G = -X / np.array([0.5, 1.0, 2.0, 4.0])
    return 0.5 * (G * X).sum(axis=1), G


@numba.njit
def _slow_normal(x, grad_out, reps):
    lp = 0.0
    for _ in range(reps):  # ~40 µs a gradient: the run lasts long enough to kill a worker
        lp = 0.0
        for i in range(x.shape[0]):
            grad_out[i] = -x[i]
            lp -= 0.5 * x[i] * x[i]
    return lp


def _same(local, remote):
    np.testing.assert_array_equal(np.asarray(remote.posterior), local.posterior)
    for name, values in local.sample_stats.items():
        np.testing.assert_array_equal(remote.sample_stats[name], values, name)
    np.testing.assert_array_equal(remote.n_grad_evals, local.n_grad_evals)
    assert remote.attrs["step_size"].tolist() == local.attrs["step_size"].tolist()


@pytest.mark.parametrize("method", ["rmd", "ulmc", "rmd-tv", "rmd-picard", "rmd-lagged"])
def test_a_run_on_a_cluster_has_the_draws_of_a_local_run(client, gaussian, method):
    kwargs = dict(draws=200, chains=3, seed=9, method=method, **QUIET)
    _same(lcsample.sample(gaussian, **kwargs), lcsample.sample(gaussian, executor=client,
                                                               **kwargs))


def test_a_batched_target_on_a_cluster_has_the_draws_of_a_local_run(client):
    target = lcsample.Target.from_batch(_batched_normal, 4)
    kwargs = dict(draws=150, chains=4, seed=2, **QUIET)
    _same(lcsample.sample(target, **kwargs), lcsample.sample(target, executor=client, **kwargs))


def test_any_concurrent_futures_executor_gives_the_same_draws(client, gaussian):
    kwargs = dict(draws=150, chains=3, seed=4, **QUIET)
    local = lcsample.sample(gaussian, **kwargs)
    _same(local, lcsample.sample(gaussian, executor=client.get_executor(), **kwargs))
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        _same(local, lcsample.sample(gaussian, executor=pool, **kwargs))


def test_a_worker_killed_mid_run_does_not_change_the_draws(client):
    target = lcsample.Target(_slow_normal, 3, args=(np.int64(400),))
    kwargs = dict(draws=4000, chains=4, seed=6, tune=100, **QUIET)
    local = lcsample.sample(target, **kwargs)
    killed = []

    def kill_a_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    time.sleep(0.5)  # the worker processes import lcsample for the first task meanwhile
    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    remote = lcsample.sample(target, executor=client, **kwargs)
    killer.join()
    assert killed, "no worker was busy: nothing was killed"
    _same(local, remote)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_a_target_that_raises_on_a_worker_raises_the_same_error_here(client):
    def picky(X):
        if (X[:, 0] > 1.5).any():
            raise FloatingPointError("x[0] above 1.5")
        return _batched_normal(X)

    target = lcsample.Target.from_batch(picky, 4)
    kwargs = dict(draws=2000, chains=2, seed=1, check_gradient=False, **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FloatingPointError, match="x\\[0\\] above 1.5"):
            lcsample.sample(target, **kwargs)
        with pytest.raises(FloatingPointError, match="x\\[0\\] above 1.5"):
            lcsample.sample(target, executor=client, **kwargs)


def test_an_executor_of_the_wrong_type_is_refused_by_name(gaussian):
    with pytest.raises(ValueError, match="executor must be a dask.distributed.Client"):
        lcsample.sample(gaussian, executor="tcp://127.0.0.1:8786", **QUIET)
    with pytest.raises(ValueError, match="executor must be"):
        diffusion.sample(lambda x, t: -x, dim=2, num_samples=4, executor=object(),
                         progressbar=False)


def test_a_target_that_cannot_travel_is_refused_by_name():
    lock = threading.Lock()  # a lock cannot be pickled, by cloudpickle or pickle

    def guarded(X):
        with lock:
            return _batched_normal(X)

    target = lcsample.Target.from_batch(guarded, 4)
    with concurrent.futures.ThreadPoolExecutor(2) as pool, pytest.raises(
            ValueError, match="executor: the target cannot be sent to the workers"):
        lcsample.sample(target, executor=pool, check_gradient=False, **QUIET)


@pytest.mark.parametrize("picard", [None, 4])
def test_diffusion_on_a_cluster_has_the_samples_of_a_local_call(client, picard):
    mixture = diffusion.grid_mixture(4)
    kwargs = dict(dim=mixture.dim, num_samples=37, steps=12, seed=5, method="rm-uld",
                  score_args=mixture.score_args, picard_steps=picard, progressbar=False)
    x_local, info_local = diffusion.sample(mixture.score_kernel, **kwargs)
    x_remote, info = diffusion.sample(mixture.score_kernel, executor=client, **kwargs)
    np.testing.assert_array_equal(x_remote, x_local)
    assert info["nfe"] == info_local["nfe"] and info["chunks"] == 2
    if picard:
        assert info["converged"] and info["rounds"] <= info_local["rounds"]
