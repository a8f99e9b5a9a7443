"""CompiledLockstep (many chains per compiled call) against Chain.advance chain by chain."""

from unittest import mock

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lcsample
from lcsample.kernels.step import RMD
from lcsample.mcmc import many_chains
from lcsample.mcmc.chain import Chain, Request
from lcsample.mcmc.execution import Monitor, run_tasks
from lcsample.mcmc.many_chains import CompiledLockstep
from lcsample.mcmc.options import METHODS
from lcsample.mcmc.warmup.mass import InverseMass

D = 4
_A = np.random.default_rng(5).standard_normal((D, D))
DENSE = _A @ _A.T / D + np.eye(D)


@numba.njit
def _walled(x, grad_out, wall):
    """N(0, I) whose log density is NaN beyond |x₀| = wall."""
    lp = 0.0
    for i in range(x.shape[0]):
        grad_out[i] = -x[i]
        lp -= 0.5 * x[i] * x[i]
    return np.nan if abs(x[0]) > wall else lp


def _target(kind):
    if kind == "walled":
        return lcsample.Target(_walled, D, args=(1.2,))
    return lcsample.targets.Gaussian(np.linspace(-1, 1, D), precision=DENSE)


def _chains(target, integrator, masses, n, seed, step=0.3):
    """``n`` chains, each with its own stream, step and friction; chain c gets mass c % len."""
    chains = []
    for c, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        rng = np.random.default_rng(child)
        x = 0.3 * rng.standard_normal(D)
        lp, g = target.check(x)
        chain = Chain(target, integrator, rng, x, np.zeros(D), np.array(g), lp,
                      step * (1 + 0.1 * c), 0.8 + 0.2 * c, masses[c % len(masses)],
                      corrector=(3, 0.05))
        chain.refresh_velocity()
        chains.append(chain)
    return chains


def _requests(lengths, thin, corrected):
    return [Request(np.full((n, D), -7.0), np.full(n, -7.0), np.full(n, -7.0), thin, corrected)
            for n in lengths]


def _run_both(kind, integrator, masses, lengths, cores, seed=0, thin=2, corrected=False,
              rounds=2, step=0.3):
    """Advance twin chain sets per chain and with CompiledLockstep; returns both records."""
    target = _target(kind)
    alone = _chains(target, integrator, masses, len(lengths), seed, step)
    together = _chains(target, integrator, masses, len(lengths), seed, step)
    advance = CompiledLockstep(target, cores)
    out = []
    for _ in range(rounds):  # a second call continues from the first's states and streams
        a, b = _requests(lengths, thin, corrected), _requests(lengths, thin, corrected)
        replies_a = [ch.advance(r) for ch, r in zip(alone, a, strict=True)]
        replies_b = advance(together, b)
        out.append((replies_a, a, replies_b, b))
    return alone, together, out


def _assert_same(alone, together, out):
    for replies_a, a, replies_b, b in out:
        assert replies_b == replies_a
        for ra, rb in zip(a, b, strict=True):
            for name in ("draws", "lp", "energy"):
                np.testing.assert_array_equal(getattr(rb, name), getattr(ra, name))
    for ca, cb in zip(alone, together, strict=True):
        for name in ("x", "v", "g", "x_at"):
            np.testing.assert_array_equal(getattr(cb, name), getattr(ca, name))
        assert cb.lp == ca.lp and type(cb.lp) is type(ca.lp)
        assert cb.n_grads == ca.n_grads
        assert cb.rng.bit_generator.state == ca.rng.bit_generator.state


MASSES = {"diag": lambda: [InverseMass(np.linspace(0.5, 1.5, D))],
          "dense": lambda: [InverseMass(np.linalg.inv(DENSE))],
          "two": lambda: [InverseMass(np.ones(D)), InverseMass(np.linalg.inv(DENSE))]}


@pytest.mark.parametrize("cores", [1, 2])
@pytest.mark.parametrize("mass", ["diag", "dense", "two"])
@pytest.mark.parametrize("method", ["rmd", "ulmc", "rmd-tv", "rmd-lagged"])
def test_lockstep_gives_the_per_chain_draws(method, mass, cores):
    integrator = METHODS[method].integrator
    lengths = [5, 0, 3, 7, 1, 5, 6]  # differing requests, one empty
    _assert_same(*_run_both("gaussian", integrator, MASSES[mass](), lengths, cores,
                            corrected=method == "rmd-tv"))


@pytest.mark.parametrize("corrected", [False, True])
@pytest.mark.parametrize("cores", [1, 2])
def test_chain_that_goes_nonfinite_stops_as_alone(corrected, cores):
    alone, together, out = _run_both("walled", RMD, MASSES["diag"](), [12] * 8, cores,
                                     corrected=corrected, rounds=3, step=0.9)
    _assert_same(alone, together, out)
    done = [n for replies_a, *_ in out for n, _ in replies_a]
    assert min(done) < 12 and len(set(done)) > 1  # chains met the wall at different draws


class _Bar:
    def update(self, n):
        pass


def _task(chain, c, out, thin):
    """Requests of 3 draws over ``out`` as the sampler's tasks make them; returns draws."""
    done = 0
    while done < out["lp"].shape[1]:
        rows = slice(done, done + 3)
        n_done, _ = yield Request(out["draws"][c, rows], out["lp"][c, rows],
                                  out["energy"][c, rows], thin, False)
        done += n_done
        if n_done < len(out["lp"][c, rows]):
            break
    return done


@pytest.mark.parametrize("cores", [1, 2])
def test_run_tasks_in_lockstep_gives_the_threads_records(cores):
    target = _target("walled")
    records = []
    for advance in (None, CompiledLockstep(target, cores)):
        chains = _chains(target, RMD, MASSES["diag"](), 9, seed=4, step=0.6)
        out = {"draws": np.full((9, 10, D), np.nan), "lp": np.full((9, 10), np.nan),
               "energy": np.full((9, 10), np.nan)}
        tasks = [_task(ch, c, out, 2) for c, ch in enumerate(chains)]
        done, _ = run_tasks(chains, tasks, cores, Monitor(), _Bar(), advance)
        records.append((done, out, [ch.n_grads for ch in chains]))
    (done_a, out_a, grads_a), (done_b, out_b, grads_b) = records
    assert done_b == done_a and grads_b == grads_a
    for name in out_a:
        np.testing.assert_array_equal(out_b[name], out_a[name])


def test_compile_and_a_batched_target_is_refused():
    CompiledLockstep(_target("gaussian"), 2).compile(RMD, corrected=True)
    batched = lcsample.Target.from_batch(lambda X: (-0.5 * (X**2).sum(1), -X), D)
    with pytest.raises(ValueError, match="jitted"):
        CompiledLockstep(batched, 2)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), cores=st.integers(1, 3), seed=st.integers(0, 2**32 - 1),
       thin=st.integers(1, 3), budget=st.sampled_from([2**20, 1, 500]), data=st.data())
def test_any_chains_cores_and_seeds_give_the_per_chain_draws(n, cores, seed, thin, budget, data):
    lengths = data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    # a small buffer budget cuts each call into slices of one or two chains
    with mock.patch.object(many_chains, "_BUFFER_BYTES", budget):
        _assert_same(*_run_both("walled", RMD, MASSES["two"](), lengths, cores, seed=seed,
                                thin=thin, step=0.6))


def test_sample_takes_the_lockstep_path_with_many_chains_and_keeps_the_draws():
    """16 chains on 1 or 2 cores run in compiled lockstep, on 3 cores one task per chain
    (:func:`lcsample.mcmc.advance.lockstep_pays`): the draws are the same."""
    target = lcsample.targets.Gaussian(np.zeros(6), cov=np.linspace(0.5, 2.0, 6))
    kwargs = dict(draws=120, chains=16, seed=8, method="rmd-tv", progressbar=False,
                  compute_convergence_checks=False)
    threads = lcsample.sample(target, cores=3, **kwargs)
    for cores in (1, 2):
        lockstep = lcsample.sample(target, cores=cores, **kwargs)
        np.testing.assert_array_equal(lockstep.posterior, threads.posterior)
        for name, values in threads.sample_stats.items():
            np.testing.assert_array_equal(lockstep.sample_stats[name], values, name)
        np.testing.assert_array_equal(lockstep.n_grad_evals, threads.n_grad_evals)
