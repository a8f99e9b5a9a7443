"""Runs streamed to a real Zarr store on disk: same draws, lazy reading, crash-safe resume.

The resume tests kill a sampling subprocess with SIGKILL in the middle of its run, as a
scheduler or the out-of-memory killer would, then resume it in this process and compare
the finished store with that of an uninterrupted run, array by array.
"""

import json
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

import lcsample
from lcsample import Variable

zarr = pytest.importorskip("zarr", reason='the store needs the [dask] extra (zarr, dask)')
pytest.importorskip("dask", reason='the store needs the [dask] extra (zarr, dask)')

QUIET = dict(progressbar=False, compute_convergence_checks=False)

# The subprocess's target: a batched Gaussian that kills its own process with SIGKILL at
# its ``kill_at``-th call (a deterministic point in the middle of the sampling phase),
# as a scheduler or the out-of-memory killer would.
_TARGET = """
import os, signal, numpy as np, lcsample

def make_target(kill_at=None):
    scale = np.linspace(0.5, 2.0, 6)
    calls = [0]

    def normal(X):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        G = -X / scale**2
        return 0.5 * (G * X).sum(axis=1), G

    return lcsample.Target.from_batch(normal, 6)
"""
_CHILD = _TARGET + """
import json, sys, warnings
warnings.simplefilter("ignore")
lcsample.sample(make_target(int(sys.argv[3])), progressbar=False, store=sys.argv[1],
                **json.loads(sys.argv[2]))
"""


def _target():
    space = {}
    exec(_TARGET, space)  # the subprocess's target, without its kill
    return space["make_target"]()


@pytest.fixture(scope="module")
def gaussian():
    return lcsample.targets.Gaussian(np.zeros(5), cov=np.linspace(0.5, 4.0, 5))


def _model():
    variables = [Variable("sigma", transform="log"), Variable("theta", (2,), dims=("school",))]
    return lcsample.Target(_lognormal_normal, 3, variables=variables,
                           coords={"school": ["north", "south"]})


@lcsample._jit.kernel
def _lognormal_normal(x, grad_out):
    grad_out[0] = -x[0] / 0.25
    grad_out[1], grad_out[2] = -x[1], -x[2]
    return -0.5 * (x[0] ** 2 / 0.25 + x[1] ** 2 + x[2] ** 2)


@pytest.mark.parametrize("method", ["rmd", "rmd-tv", "rmd-lagged"])
def test_a_stored_run_has_the_draws_of_a_run_in_memory(gaussian, tmp_path, method):
    kwargs = dict(draws=300, chains=3, seed=5, method=method, **QUIET)
    memory = lcsample.sample(gaussian, **kwargs)
    stored = lcsample.sample(gaussian, store=tmp_path / "run.zarr", **kwargs)
    assert not isinstance(stored.posterior, np.ndarray)  # read lazily from the store
    np.testing.assert_array_equal(np.asarray(stored.posterior), memory.posterior)
    for name, values in memory.sample_stats.items():
        np.testing.assert_array_equal(np.asarray(stored.sample_stats[name]), values, name)
    np.testing.assert_array_equal(stored.n_grad_evals, memory.n_grad_evals)
    assert stored.store == str(tmp_path / "run.zarr")


def test_float32_halves_the_draws_and_arviz_reads_named_variables(tmp_path):
    memory = lcsample.sample(_model(), draws=200, seed=1, discard_tuned_samples=False, **QUIET)
    stored = lcsample.sample(_model(), draws=200, seed=1, discard_tuned_samples=False,
                             store=lcsample.ZarrStore(str(tmp_path / "r.zarr"), "float32"),
                             **QUIET)
    data = lcsample.open_store(tmp_path / "r.zarr")
    post = data["posterior"]
    assert post["sigma"].dtype == np.float32
    assert post["theta"].dims == ("chain", "draw", "school")
    assert list(post["theta"].coords["school"].values) == ["north", "south"]
    # the constrained values of the float64 draws, rounded once to float32
    np.testing.assert_array_equal(post["sigma"].values,
                                  np.exp(memory.posterior[:, :, 0]).astype(np.float32))
    np.testing.assert_array_equal(data["unconstrained_posterior"]["theta"].values,
                                  memory.posterior[:, :, 1:].astype(np.float32))
    np.testing.assert_array_equal(data["sample_stats"]["lp"].values, memory.sample_stats["lp"])
    np.testing.assert_array_equal(data["warmup_sample_stats"]["energy"].values,
                                  memory.warmup["sample_stats"]["energy"])
    assert data["posterior"].attrs["method"] == "rmd-lagged"
    assert stored.to_arviz()["posterior"]["sigma"].chunks is not None  # Dask, not loaded


def test_the_checks_of_a_stored_run_find_what_the_checks_in_memory_find(gaussian, tmp_path):
    kwargs = dict(draws=60, chains=2, seed=2, progressbar=False)
    with warnings.catch_warnings(record=True) as memory:
        warnings.simplefilter("always")
        lcsample.sample(gaussian, **kwargs)
    with warnings.catch_warnings(record=True) as stored:
        warnings.simplefilter("always")
        lcsample.sample(gaussian, store=tmp_path / "c.zarr", **kwargs)
    assert [str(w.message) for w in stored] == [str(w.message) for w in memory]
    assert any("effective sample size" in str(w.message) for w in memory)


def _stored_arrays(path):
    root = zarr.open_group(path, mode="r")
    return {f"{g}/{a}": arr[...] for g, group in root.groups() if g != "lcsample_state"
            for a, arr in group.arrays()}


def _killed_run(path, kwargs, kill_at):
    """Run the child on ``path`` until its target kills it; returns the committed slots."""
    child = subprocess.run([sys.executable, "-c", _CHILD, str(path), json.dumps(kwargs),
                            str(kill_at)], timeout=300)
    assert child.returncode == -signal.SIGKILL, "the run ended before it was killed"
    return zarr.open_group(path, mode="r")["lcsample_state"]["slots"][...]


def _assert_same_stores(ours, theirs):
    ours, theirs = _stored_arrays(ours), _stored_arrays(theirs)
    assert ours.keys() == theirs.keys()
    for name, values in theirs.items():
        np.testing.assert_array_equal(ours[name], values, name)


# picard_steps=7 leaves solved steps pending at the kill's last block end (block: 300 draws)
@pytest.mark.parametrize("method, extra, kill_at", [("rmd", {}, 2500),
                                                    ("rmd-picard", {"picard_steps": 7}, 1500)])
def test_a_killed_run_resumes_to_the_store_of_an_uninterrupted_run(tmp_path, method, extra,
                                                                    kill_at):
    kwargs = dict(draws=3000, chains=2, seed=11, tune=60, method=method, **extra)
    slots = _killed_run(tmp_path / "killed.zarr", kwargs, kill_at)
    done = slots[:, :, 0].max(axis=1)
    assert (0 < done).all() and (done < kwargs["draws"]).all()  # killed while sampling
    if method == "rmd-picard":
        assert slots[:, :, 11].max() > 0  # the continuation must take the pending steps
    target = _target()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed = lcsample.sample(target, store=tmp_path / "killed.zarr", resume=True,
                                  **kwargs, **QUIET)
        whole = lcsample.sample(target, store=tmp_path / "whole.zarr", **kwargs, **QUIET)
    _assert_same_stores(tmp_path / "killed.zarr", tmp_path / "whole.zarr")
    np.testing.assert_array_equal(resumed.n_grad_evals, whole.n_grad_evals)
    assert resumed.attrs["step_size"].tolist() == whole.attrs["step_size"].tolist()


def test_a_torn_state_slot_costs_one_block_not_the_run(tmp_path):
    kwargs = dict(draws=3000, chains=2, seed=3, tune=60)
    slots = _killed_run(tmp_path / "torn.zarr", kwargs, 2500)
    newest = int(np.argmax(slots[0, :, 0]))
    torn = slots[0, newest]
    torn[len(torn) // 2:] = 12345  # a write cut short: the checksum no longer holds
    zarr.open_group(tmp_path / "torn.zarr", mode="r+")["lcsample_state"]["slots"][0, newest] = torn
    target = _target()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lcsample.sample(target, store=tmp_path / "torn.zarr", resume=True, **kwargs, **QUIET)
        lcsample.sample(target, store=tmp_path / "whole.zarr", **kwargs, **QUIET)
    _assert_same_stores(tmp_path / "torn.zarr", tmp_path / "whole.zarr")


def test_a_run_killed_in_its_warmup_starts_again(tmp_path):
    kwargs = dict(draws=200, chains=2, seed=3, tune=100)
    slots = _killed_run(tmp_path / "early.zarr", kwargs, 100)
    assert not slots.any()  # nothing committed yet
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lcsample.sample(_target(), store=tmp_path / "early.zarr", resume=True, **kwargs, **QUIET)
        lcsample.sample(_target(), store=tmp_path / "whole.zarr", **kwargs, **QUIET)
    _assert_same_stores(tmp_path / "early.zarr", tmp_path / "whole.zarr")


def test_a_finished_store_resumes_to_itself(gaussian, tmp_path):
    first = lcsample.sample(gaussian, draws=100, seed=4, store=tmp_path / "s.zarr", **QUIET)
    again = lcsample.sample(gaussian, draws=100, seed=4, store=tmp_path / "s.zarr",
                            resume=True, **QUIET)
    np.testing.assert_array_equal(np.asarray(again.posterior), np.asarray(first.posterior))
    np.testing.assert_array_equal(again.n_grad_evals, first.n_grad_evals)


def test_bad_stores_are_refused_by_name(gaussian, tmp_path):
    path = tmp_path / "s.zarr"
    lcsample.sample(gaussian, draws=50, seed=4, store=path, **QUIET)
    with pytest.raises(ValueError, match="store: .* exists; pass resume=True"):
        lcsample.sample(gaussian, draws=50, seed=4, store=path, **QUIET)
    for change, named in ((dict(seed=5), "seed"), (dict(method="ulmc"), "method"),
                          (dict(draws=60), "draws")):
        with pytest.raises(ValueError, match=f"store: .*different run.*{named}"):
            lcsample.sample(gaussian, **{"draws": 50, "seed": 4, **change}, store=path,
                            resume=True, **QUIET)
    other = lcsample.targets.Gaussian(np.zeros(4), cov=np.ones(4))
    with pytest.raises(ValueError, match="different run.*dim"):
        lcsample.sample(other, draws=50, seed=4, store=path, resume=True, **QUIET)
    with pytest.raises(ValueError, match="resume=True needs store"):
        lcsample.sample(gaussian, resume=True, **QUIET)
    with pytest.raises(ValueError, match="store must be a path"):
        lcsample.sample(gaussian, store=3, **QUIET)
    with pytest.raises(ValueError, match="store dtype"):
        lcsample.sample(gaussian, store=lcsample.ZarrStore(str(path), "float16"), **QUIET)
    not_ours = tmp_path / "data"
    not_ours.mkdir()
    (not_ours / "keep.txt").write_text("precious")
    with pytest.raises(ValueError, match="not an lcsample store; not removed"):
        lcsample.sample(gaussian, store=lcsample.ZarrStore(str(not_ours), overwrite=True),
                        **QUIET)
    assert (not_ours / "keep.txt").read_text() == "precious"


def test_a_store_in_a_missing_folder_is_refused_before_any_work(gaussian, tmp_path):
    with pytest.raises(ValueError, match="store: .*not on a writable path"):
        lcsample.sample(gaussian, store=tmp_path / "no" / "s.zarr", **QUIET)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_a_read_only_path_is_refused_before_any_work(gaussian, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    with pytest.raises(ValueError, match="store: .*not on a writable path"):
        lcsample.sample(gaussian, store=locked / "s.zarr", **QUIET)


def test_a_store_edited_to_unpickle_is_refused_unread(gaussian, tmp_path):
    path = tmp_path / "s.zarr"
    lcsample.sample(gaussian, draws=50, seed=4, store=path, **QUIET)
    meta_file = path / "posterior" / "x" / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["codecs"].insert(0, {"name": "numcodecs.pickle", "configuration": {}})
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="store: posterior/x is not an array lcsample writes"):
        lcsample.open_store(path)
    with pytest.raises(ValueError, match="store: "):
        lcsample.sample(gaussian, draws=50, seed=4, store=path, resume=True, **QUIET)


def test_a_stored_run_may_be_larger_than_memory():
    from lcsample.mcmc.budget import check_run_size, stored_block

    with pytest.raises(ValueError, match="stream the draws to a store"):
        check_run_size(1000, 10**7, 100, 1, 1000, False, False)
    held = stored_block(10**7, 1, 1000, 1000, 4)
    need = check_run_size(1000, 10**7, 100, 1, 1000, False, False, held=held)
    # blocks sized to 256 MiB in all, plus the warmup's statistics
    assert need < 2**28 + 1000 * 1000 * 42
    # two threads' blocks: chunks of 2 MiB of float32 draws (524 of d = 1,000), or a
    # tenth of the run, or the in-memory block (1/50 of the run) if larger
    assert stored_block(10**5, 1, 2, 1000, 4) == 2000
    assert stored_block(20000, 1, 2, 1000, 4) == 524
    assert stored_block(1000, 1, 2, 1000, 4) == 100


@lcsample._jit.kernel
def _walled(x, grad_out):
    # N(0, I) with a wall: non-finite beyond |x[0]| = 2.5, where chains stop
    for i in range(x.shape[0]):
        grad_out[i] = -x[i]
    if abs(x[0]) > 2.5:
        return np.nan
    return -0.5 * np.sum(x * x)


# 6 chains on 2 cores: one chain per chunk, written as each makes a block; 24: compiled
# lockstep, a chunk of all chains written when every running one has made the block
@pytest.mark.parametrize("chains", [6, 24])
def test_chains_stopped_on_a_non_finite_state_are_stored_as_in_memory(tmp_path, chains):
    target = lcsample.Target(_walled, 3)
    kwargs = dict(draws=120, chains=chains, seed=2, tune=0, step_size=0.4, friction=1.0,
                  inverse_mass_matrix=np.ones(3), check_gradient=False, cores=2, **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = lcsample.sample(target, **kwargs)
        stored = lcsample.sample(target, store=tmp_path / "w.zarr", **kwargs)
    stopped = memory.sample_stats["nonfinite"].any(axis=1)
    assert stopped.any() and not stopped.all()  # some chains stopped, some did not
    np.testing.assert_array_equal(np.asarray(stored.posterior), memory.posterior)
    for name, values in memory.sample_stats.items():
        np.testing.assert_array_equal(np.asarray(stored.sample_stats[name]), values, name)
    chunk = zarr.open_group(tmp_path / "w.zarr", mode="r")["posterior"]["x"].chunks
    assert chunk[0] == (1 if chains == 6 else chains)
