"""Nothing silent (issue 18, first items): sizes refused up front, wrong gradients and
wrong output types caught before sampling, a user's too-large step questioned."""

import time
import warnings

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lcsample
from lcsample._memory import available_memory
from lcsample.kernels.exact import stationary_covariance
from lcsample.mcmc.budget import record_bytes
from lcsample.mcmc.warmup.step_size import large_step_warning, step_size_for_bias

QUIET = dict(progressbar=False, compute_convergence_checks=False)


@numba.njit
def _gaussian(x, grad_out, factor):
    # log density of N(0, I); the gradient is multiplied by ``factor`` (1 = right)
    for i in range(x.shape[0]):
        grad_out[i] = -factor * x[i]
    return -0.5 * np.sum(x * x)


@pytest.mark.parametrize("kwargs, names", [
    ({"draws": 10**12}, "draws"),
    ({"chains": 10**9}, "chains"),
    ({"thin": 10**12}, "thin"),
    ({"draws": 10**9, "thin": 10**4}, "thin"),
])
def test_a_run_too_large_is_refused_before_any_work(kwargs, names):
    target = lcsample.Target(_gaussian, 3, args=(1.0,))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=names):
        lcsample.sample(target, seed=0, **kwargs, **QUIET)
    assert time.perf_counter() - start < 1.0


def test_the_memory_estimate_counts_every_record():
    # posterior 8 B per coordinate; lp, energy, step_size, friction, n_steps 8 B and
    # diverging, nonfinite 1 B per draw; warmup statistics always, warmup draws when kept;
    # a dense mass 3 d² doubles
    assert record_bytes(2, 10, 5, 3, False, False) == 2 * (10 * (42 + 24) + 5 * 42)
    assert record_bytes(2, 10, 5, 3, True, True) == 2 * (10 * 66 + 5 * 66) + 3 * 8 * 9
    have = available_memory()
    assert have is None or have > 0


@pytest.mark.parametrize("batched", [False, True])
def test_a_gradient_off_by_a_factor_two_is_caught(batched):
    if batched:
        target = lcsample.Target.from_batch(lambda X: (-0.5 * (X**2).sum(axis=1), -2.0 * X), 4)
    else:
        target = lcsample.Target(_gaussian, 4, args=(2.0,))
    with pytest.raises(ValueError, match=r"does not match finite differences.*x\[\d\]"):
        lcsample.sample(target, draws=10, tune=0, seed=0, **QUIET)
    # the check can be switched off, and a right gradient passes it
    lcsample.sample(target, draws=10, tune=10, seed=0, check_gradient=False, **QUIET)
    right = lcsample.Target(_gaussian, 4, args=(1.0,))
    res = lcsample.sample(right, draws=10, tune=10, seed=0, **QUIET)
    assert res.attrs["init_grad_evals"] >= 16  # the check's evaluations are counted


def test_built_in_targets_pass_the_gradient_check():
    X, y = lcsample.datasets.load_german_credit()
    for target in (lcsample.targets.LogisticRegression(X, y),
                   lcsample.targets.Gaussian(np.arange(3.0), cov=[[2.0, 0.5, 0], [0.5, 1, 0],
                                                                  [0, 0, 0.3]])):
        lcsample.sample(target, draws=5, tune=5, chains=1, seed=1, **QUIET)


@pytest.mark.parametrize("output, what", [
    (lambda X: (-0.5 * (X**2).sum(axis=1).astype(complex), -X), "log density"),
    (lambda X: (-0.5 * (X**2).sum(axis=1), (-X).astype(complex)), "gradient"),
    (lambda X: (np.zeros(len(X), dtype=int), -X), "log density"),
])
def test_complex_or_integer_batched_outputs_raise(output, what):
    target = lcsample.Target.from_batch(output, 2)
    with pytest.raises(TypeError, match=f"real floating-point {what}"):
        lcsample.sample(target, draws=5, seed=0, **QUIET)


def test_an_integer_log_density_from_a_jitted_function_raises():
    @numba.njit
    def integer_lp(x, grad_out):
        grad_out[:] = -x
        return 0

    with pytest.raises(TypeError, match="as a float"):
        lcsample.sample(lcsample.Target(integer_lp, 2), draws=5, seed=0, **QUIET)


def test_a_user_step_far_too_large_is_questioned():
    target = lcsample.Target(_gaussian, 3, args=(1.0,))
    with pytest.warns(RuntimeWarning, match=r"step_size=3\.9 with friction=2 overstates"):
        lcsample.sample(target, draws=50, tune=0, seed=0, step_size=3.9, friction=2.0,
                        inverse_mass_matrix=1.0, method="rmd", **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sensible step is not questioned
        lcsample.sample(target, draws=50, tune=0, seed=0, step_size=0.5, friction=2.0,
                        inverse_mass_matrix=1.0, **QUIET)


def test_the_step_warning_states_the_exact_bias_and_the_right_step():
    h = 1.5  # a 6.7 % variance error, over 5 × 1 %
    bias = stationary_covariance(1.0, h, 2.0, 1.0, "rmd")[0, 0] - 1.0
    text = large_step_warning(1.0, h, 2.0, "rmd", 0.01)
    assert f"{100 * bias:.3g} %" in text
    assert f"{step_size_for_bias(1.0, 2.0, 'rmd', 0.01):.3g}" in text
    assert large_step_warning(1.0, 0.5, 2.0, "rmd", 0.01) is None
    assert "overstates" in large_step_warning(1.0, 3.9, 2.0, "rmd", 0.01)  # by 2,000 %
    assert "unstable" in large_step_warning(1.0, 5.0, 2.0, "rmd", 0.01)


def _split_equals_whole(target, **kwargs):
    whole = lcsample.sample(target, draws=30, **kwargs, **QUIET)
    first = lcsample.sample(target, draws=12, **kwargs, **QUIET)
    same = {k: v for k, v in kwargs.items() if k not in ("tune", "seed")}
    rest = lcsample.sample(target, draws=18, initial_state=first.last_state, **same, **QUIET)
    np.testing.assert_array_equal(np.concatenate([first.posterior, rest.posterior], axis=1),
                                  whole.posterior)
    np.testing.assert_array_equal(rest.last_state.position, whole.last_state.position)


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("method", ["rmd", "ulmc", "rmd-tv", "rmd-picard", "rmd-lagged"])
def test_a_run_resumed_from_its_last_state_is_the_uninterrupted_run(method, batched):
    # rmd-tv resumed with its own corrector (it was re-derived from a curvature estimate
    # that drew on chain 0's stream); rmd-picard at a positive tolerance, where a block's
    # answer depends on where it ends (7 steps per block: neither 12 nor 18 divides);
    # any split, jitted or batched
    if batched:
        target = lcsample.Target.from_batch(lambda X: (-0.5 * (X**2).sum(axis=1), -X), 3)
    else:
        target = lcsample.Target(_gaussian, 3, args=(1.0,))
    picard = {"picard_steps": 7, "tolerance": 1e-3} if method == "rmd-picard" else {}
    _split_equals_whole(target, tune=40, seed=5, method=method, chains=2, **picard)


def test_the_convergence_checks_take_little_memory_beyond_the_draws():
    import tracemalloc

    from lcsample.mcmc.results import SamplingResult

    chains, draws, dim = 4, 1000, 300
    posterior = np.random.default_rng(0).standard_normal((chains, draws, dim))
    stats = {"lp": np.zeros((chains, draws)), "diverging": np.zeros((chains, draws), bool)}
    result = SamplingResult(posterior=posterior, sample_stats=stats, warmup=None,
                            last_state=None, timing={}, n_grad_evals=np.zeros(chains),
                            attrs={"warmup_converged": True})
    result.diagnostics()  # imports and compiles once: not what is measured
    tracemalloc.start()
    try:
        result.diagnostics()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.25 * posterior.nbytes  # no copy of the posterior (it was 2.6×)


def test_a_failure_inside_the_checks_returns_the_draws_with_a_warning(monkeypatch):
    # fault injection: the checks run out of memory after the draws were made
    from lcsample.mcmc.results import SamplingResult

    def out_of_memory(self, *args, **kwargs):
        raise MemoryError("simulated")

    monkeypatch.setattr(SamplingResult, "diagnostics", out_of_memory)
    target = lcsample.Target(_gaussian, 3, args=(1.0,))
    with pytest.warns(RuntimeWarning, match="convergence checks failed.*MemoryError"):
        res = lcsample.sample(target, draws=50, tune=20, seed=0, progressbar=False)
    assert res.posterior.shape == (4, 50, 3) and np.isfinite(res.posterior).all()


def test_sample_from_several_threads_at_once_gives_the_draws_of_each_alone():
    import concurrent.futures

    target = lcsample.Target(_gaussian, 3, args=(1.0,))
    alone = [lcsample.sample(target, draws=40, tune=30, seed=s, **QUIET).posterior
             for s in range(3)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        together = list(pool.map(
            lambda s: lcsample.sample(target, draws=40, tune=30, seed=s, **QUIET).posterior,
            range(3)))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)


_PROCESS_RUN = """
import sys, numba, numpy as np, lcsample

@numba.njit
def logdensity_and_grad(x, grad_out, scale):
    for i in range(x.shape[0]):
        grad_out[i] = -x[i] / scale
    return -0.5 * np.sum(x * x) / scale

res = lcsample.sample(lcsample.Target(logdensity_and_grad, 3, args=(2.0,)), draws=20,
                      tune=20, seed=3, progressbar=False, compute_convergence_checks=False)
np.save(sys.argv[1], res.posterior)
"""


@pytest.mark.slow
def test_processes_starting_at_once_on_an_empty_numba_cache_all_succeed(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    outs = [tmp_path / f"draws{i}.npy" for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", _PROCESS_RUN, str(out)], env=env,
                              stderr=subprocess.PIPE, text=True) for out in outs]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    first = np.load(outs[0])
    for out in outs[1:]:
        np.testing.assert_array_equal(np.load(out), first)


_INTERRUPTED_RUN = """
import json, sys, time, numba, numpy as np, lcsample
from lcsample import diffusion

@numba.njit
def slow(x, grad_out):
    busy = 0.0
    for _ in range(2_000):  # a costly log density (~8 µs) that no compiler can fold away
        for i in range(x.shape[0]):
            busy = busy * 0.999 + x[i] * x[i]
    for i in range(x.shape[0]):
        grad_out[i] = -x[i]
    return -0.5 * np.sum(x * x) + 0.0 * busy

def slow_batch(X):
    time.sleep(2e-3)
    return -0.5 * (X**2).sum(axis=1), -X

def slow_score(x, t):
    time.sleep(2e-3)
    return -x

case = sys.argv[1]
quiet = dict(progressbar=False, compute_convergence_checks=False)
if case == "diffusion":
    diffusion.sample(slow_score, dim=2, num_samples=4, steps=3, seed=0, progressbar=False)
    print("ready", flush=True)
    x, info = diffusion.sample(slow_score, dim=2, num_samples=4, steps=100_000, seed=0,
                               progressbar=False)
    print(json.dumps({"interrupted": bool(info["interrupted"]), "rounds": info["rounds"],
                      "finite": bool(np.isfinite(x).all())}))
    sys.exit()
target = (lcsample.Target.from_batch(slow_batch, 3) if case == "batched"
          else lcsample.Target(slow, 3))
kwargs = dict(chains=4, cores=1, seed=1, step_size=0.3, friction=1.5, inverse_mass_matrix=1.0)
if case == "warmup":
    kwargs = dict(chains=2, seed=1, tune=10**7, discard_tuned_samples=False)
lcsample.sample(target, draws=2, tune=0 if case != "warmup" else 20, **quiet,
                **{k: v for k, v in kwargs.items() if k != "tune"})
print("ready", flush=True)
# 2e5 draws: long enough to be interrupted; a larger run spends the first second of the
# test's wait allocating (and page-faulting in) its records, and nothing is drawn yet
res = lcsample.sample(target, draws=2 * 10**5, **({"tune": 0} if case != "warmup" else {}),
                      **quiet, **kwargs)
report = {"interrupted": bool(res.attrs["interrupted"]), "draws": res.posterior.shape[1],
          "finite": bool(np.isfinite(res.posterior).all()), "chains": res.posterior.shape[0]}
if case != "warmup":  # the partial result continues exactly: as one uninterrupted run
    rest = lcsample.sample(target, draws=50, initial_state=res.last_state, chains=4, cores=1,
                           **quiet)
    whole = lcsample.sample(target, draws=res.posterior.shape[1] + 50, tune=0, **quiet, **kwargs)
    report["exact"] = bool(np.array_equal(
        np.concatenate([res.posterior, rest.posterior], axis=1), whole.posterior))
print(json.dumps(report))
"""


@pytest.mark.slow
@pytest.mark.parametrize("case", ["sampling", "batched", "warmup", "diffusion"])
def test_ctrl_c_returns_what_was_made_at_every_stage(case):
    # a real SIGINT to a real process: during sampling with more chains than cores, on a
    # batched target, during the warmup, and in the diffusion sampler
    import json
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPTED_RUN, case],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["interrupted"] and report["finite"]
    if case == "diffusion":
        assert report["rounds"] > 0
    elif case == "warmup":
        assert report["draws"] == 0 and report["chains"] == 2
    else:
        # every chain has draws (4 chains on 1 core advance in turn), and the partial
        # result resumed is the uninterrupted run
        assert 0 < report["draws"] < 10**6 and report["chains"] == 4
        assert report["exact"]


# Invalid values of lcsample.sample's arguments, each with the name its error must carry.
_BAD_SAMPLE = {
    "draws": [0, -3, 2.5, True, 10**12], "tune": [-1, 0.5], "chains": [0, "4", 10**9],
    "thin": [0, 1.5, 10**12], "cores": [0, -1], "seed": [-1, 1.5, "x"],
    "step_size": [0.0, -1.0, np.nan, np.inf], "friction": [0.0, np.nan],
    "method": ["nuts", "rmd-parallel"], "tuning": ["nuts"], "init": ["jitter"],
    "target_accuracy": [0.0, 1.0, np.nan], "inverse_mass_matrix": ["full", -1.0, [1.0, 2.0]],
    "initial_positions": [np.zeros(2), np.full(3, np.inf)], "check_gradient": ["yes", 1],
    "corrector_steps": [0], "picard_steps": [4], "max_rounds": [3],
}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from([(k, v) for k, vals in _BAD_SAMPLE.items() for v in vals]),
                min_size=1, max_size=3, unique_by=lambda kv: kv[0]))
def test_any_invalid_combination_of_sample_arguments_is_refused_by_name(bad):
    # quickly (sizes are checked before any work), naming one of the bad arguments; the old
    # method name is refused naming the new one
    target = lcsample.Target(_gaussian, 3, args=(1.0,))
    names = {k: ("rmd-picard" if isinstance(v, str) and v == "rmd-parallel" else k)
             for k, v in bad}
    start = time.perf_counter()
    with pytest.raises((ValueError, TypeError)) as err:
        lcsample.sample(target, **dict(bad), progressbar=False)
    assert any(name in str(err.value) for name in names.values()), (bad, str(err.value))
    assert time.perf_counter() - start < 2.0


_BAD_DIFFUSION = {
    "dim": [0, 2.5], "num_samples": [0, -1, 10**13], "steps": [0], "t_min": [0.0, -1.0],
    "predictor": ["euler"], "corrector": ["langevin"], "corrector_every": [0, "start"],
    "corrector_steps": [0], "friction": [-1.0, np.nan], "corrector_step_size": [0.0],
    "first_sample": [-1], "picard_steps": [0, 1.5], "score_args": [[1.0]], "method": ["gcc"],
    "t_max": [1e3, np.inf], "strict": ["yes", 1],
}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([(k, v) for k, vals in _BAD_DIFFUSION.items() for v in vals]),
                min_size=1, max_size=3, unique_by=lambda kv: kv[0]))
def test_any_invalid_combination_of_diffusion_arguments_is_refused_by_name(bad):
    from lcsample import diffusion

    names = [("rm-uld" if isinstance(v, str) and v == "gcc" else k) for k, v in bad]
    kwargs = {"dim": 3, "num_samples": 2, "seed": 0, "progressbar": False, **dict(bad)}
    with pytest.raises((ValueError, TypeError)) as err:
        diffusion.sample(lambda x, t: -x, **kwargs)
    assert any(name in str(err.value) for name in names), (bad, str(err.value))


def test_the_gradient_check_allows_for_a_float32_function():
    # JAX computes in float32 by default: its log density is rounded at 1e-7 relative, so
    # differences of it are noisy; a right gradient must pass, a wrong one still fail
    def batch(X, factor=1.0):
        X32 = X.astype(np.float32)
        lp = np.float32(-5e3) - 0.5 * (X32**2).sum(axis=1)  # |lp| large against |∇|
        return lp, -factor * X32

    lcsample.sample(lcsample.Target.from_batch(batch, 5), draws=5, tune=5, seed=2, **QUIET)
    wrong = lcsample.Target.from_batch(lambda X: batch(X, 2.0), 5)
    with pytest.raises(ValueError, match="does not match finite differences"):
        lcsample.sample(wrong, draws=5, tune=5, seed=2, **QUIET)
