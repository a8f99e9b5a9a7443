"""Sampler overhead per step beyond the gradient evaluations, per dimension.

For each configuration the benchmark times, in the same process and interleaved:

* ``sampler``: :func:`lcsample.kernels.compiled.run_chain` for ``steps`` steps (``thin`` steps per
  stored draw, so storing draws is a negligible part of the time);
* ``gradient``: a jitted loop that calls the same gradient function, on the same
  ``args``, ``grads_per_step * steps`` times, alternating two input and two output
  arrays as the sampler does (the baseline);
* ``rng``: a jitted loop that draws what the sampler draws per step (one uniform α and
  4 normals per coordinate for RMD, 2 normals per coordinate for ULMC) from a
  ``numpy.random.Generator`` (the random-number floor).

Overhead = (sampler - gradient) / steps, per step and per step and dimension, from the
minimum over repeats of each timing. All compiled functions are called once before any
timing, so no compilation is timed. The figures are measurements, not assertions.

Many chains (:func:`many_chains`): ``lcsample.sample`` with 4 and 16 chains (threads over
chains, no warmup, given step and mass), its sampling time per chain-step in
thread-seconds against the same gradient-only loop.

Run ``python benchmarks/overhead.py [--quick] [--json PATH]``.
"""

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np

import lcsample
from lcsample.kernels.compiled import run_chain
from lcsample.kernels.step import GRADS_PER_STEP, RMD, ULMC
from lcsample.mcmc.warmup.mass import InverseMass

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
from common import write_json  # noqa: E402

#: Cost floor measured earlier for a plain numba RM-ULMC / ULMC step (the steps of
#: ``docs/theory.md`` §2 and §5) on a 2-core x86 machine: (ns per dimension, ns per step).
REFERENCE_FLOOR = {"rmd": (13.4, 140.0), "ulmc": (7.3, 45.0)}
#: Cost of one Generator.standard_normal inside @njit on that machine (same measurement).
REFERENCE_NS_PER_NORMAL = 3.2

METHOD_CODES = {"rmd": RMD, "ulmc": ULMC}
# Steps x dimensions per timed call: sets the length of each measurement.
WORK = {"quick": 3_000_000, "full": 20_000_000}
REPEATS = {"quick": 5, "full": 7}
DRAWS_STORED = 8  # rows of draws_out; thin = steps // DRAWS_STORED
NO_CORRECTOR = None  # run_chain's corrector argument: no per-draw ULMC corrector


@numba.njit(nogil=True, error_model="numpy")
def gradient_only(logdensity_and_grad, args, n_calls, x_a, x_b, g_a, g_b):
    """Call the oracle ``n_calls`` times, alternating (x_a -> g_a) and (x_b -> g_b)."""
    total = 0.0
    for k in range(n_calls):
        if k % 2 == 0:
            total += logdensity_and_grad(x_a, g_a, *args)
        else:
            total += logdensity_and_grad(x_b, g_b, *args)
    return total


@numba.njit(nogil=True, error_model="numpy")
def rng_only(rng, steps, n_normals, draw_alpha, out):
    """Draw per step what the sampler draws: α (RMD only) and ``n_normals`` normals."""
    total = 0.0
    for _ in range(steps):
        if draw_alpha:
            total += rng.random()
        for i in range(n_normals):
            out[i] = rng.standard_normal()
        total += out[0]
    return total


def make_target(kind, d, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "diagonal":
        # variances in [0.5, 2]: condition number 4, so h = 0.2, γ = 2 is stable
        return lcsample.targets.Gaussian(np.zeros(d), cov=np.linspace(0.5, 2.0, d))
    if kind == "dense":
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        cov = (q * np.linspace(0.5, 2.0, d)) @ q.T
        return lcsample.targets.Gaussian(np.zeros(d), cov=0.5 * (cov + cov.T))
    raise ValueError(kind)


class Case:
    """Arrays and a compiled call for one (target, method) configuration."""

    H, GAMMA = 0.2, 2.0

    def __init__(self, target, method, steps):
        d = target.dim
        self.target, self.method, self.code = target, method, METHOD_CODES[method]
        self.d = d
        self.thin = max(1, steps // DRAWS_STORED)
        self.steps = self.thin * DRAWS_STORED
        self.grads_per_step = GRADS_PER_STEP[self.code]
        self.precond = InverseMass(np.ones(d)).kernel_args  # unit diagonal inverse mass
        rng = np.random.default_rng(1)
        self.x0 = rng.standard_normal(d)
        self.v0 = rng.standard_normal(d)
        self.lp0, self.g0 = target.logdensity_and_gradient(self.x0)
        self.draws = np.empty((DRAWS_STORED, d))
        self.lps = np.empty(DRAWS_STORED)
        self.x_b = self.x0 + 0.1
        self.g_a, self.g_b = np.empty(d), np.empty(d)
        self.normals = np.empty((4 if self.code == RMD else 2) * d)
        self.rng_seed = 2

    def run_sampler(self, thin=None, n=None):
        x, v, g = self.x0.copy(), self.v0.copy(), self.g0.copy()
        rng = np.random.default_rng(self.rng_seed)
        thin = self.thin if thin is None else thin
        draws = self.draws if n is None else self.draws[:n]
        lps = self.lps if n is None else self.lps[:n]
        t0 = time.perf_counter()
        n_done, _, _ = run_chain(self.target.logdensity_and_grad, self.target.args, self.code,
                                 self.H, self.GAMMA, self.precond, NO_CORRECTOR, thin, x, v, g,
                                 np.empty(0), self.lp0, rng, draws, lps, np.empty(len(lps)))
        elapsed = time.perf_counter() - t0
        if n_done != draws.shape[0]:
            raise RuntimeError(f"chain diverged in the benchmark ({self.method}, d={self.d})")
        return elapsed

    def run_gradient(self, steps=None):
        n_calls = (self.steps if steps is None else steps) * self.grads_per_step
        t0 = time.perf_counter()
        gradient_only(self.target.logdensity_and_grad, self.target.args, n_calls,
                      self.x0, self.x_b, self.g_a, self.g_b)
        return time.perf_counter() - t0

    def run_rng(self, steps=None):
        rng = np.random.default_rng(self.rng_seed)
        steps = self.steps if steps is None else steps
        t0 = time.perf_counter()
        rng_only(rng, steps, self.normals.shape[0], self.code == RMD, self.normals)
        return time.perf_counter() - t0

    def warm_up(self):
        """Compile every function for these argument types (not timed)."""
        self.run_sampler(thin=1, n=1)
        self.run_gradient(steps=1)
        self.run_rng(steps=1)


def measure(case, repeats):
    times = {"sampler": [], "gradient": [], "rng": []}
    for _ in range(repeats):
        # interleaved, so a slow phase of the machine hits all three alike
        times["sampler"].append(case.run_sampler())
        times["gradient"].append(case.run_gradient())
        times["rng"].append(case.run_rng())
    best = {k: min(v) for k, v in times.items()}
    steps, d = case.steps, case.d
    overhead = best["sampler"] - best["gradient"]
    return {
        "target": None,  # filled by the caller
        "method": case.method,
        "d": d,
        "steps": steps,
        "grad_evals": steps * case.grads_per_step,
        "grads_per_step": case.grads_per_step,
        "repeats": repeats,
        "sampler_s": best["sampler"],
        "gradient_s": best["gradient"],
        "rng_s": best["rng"],
        "all_sampler_s": times["sampler"],
        "all_gradient_s": times["gradient"],
        "all_rng_s": times["rng"],
        "sampler_ns_per_step": 1e9 * best["sampler"] / steps,
        "gradient_ns_per_step": 1e9 * best["gradient"] / steps,
        "overhead_ns_per_step": 1e9 * overhead / steps,
        "overhead_ns_per_dim_step": 1e9 * overhead / (steps * d),
        "rng_ns_per_step": 1e9 * best["rng"] / steps,
        "rng_ns_per_dim_step": 1e9 * best["rng"] / (steps * d),
        # ratios against baselines measured in the same run
        "sampler_over_gradient": best["sampler"] / best["gradient"],
        "overhead_over_rng": overhead / best["rng"],
    }


def fit_floor(rows):
    """Fit overhead_ns_per_step = a + b*d by least squares in relative error.

    Returns (b ns/dim, a ns/step). Each point is weighted by 1/overhead so the small-d
    points, which carry the per-step constant, count as much as the large-d ones.
    """
    d = np.array([r["d"] for r in rows], dtype=float)
    y = np.array([r["overhead_ns_per_step"] for r in rows])
    w = 1.0 / np.maximum(np.abs(y), 1e-9)
    A = np.column_stack([np.ones_like(d), d]) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(A, y * w, rcond=None)
    return float(b), float(a)


def run(quick=False, dims=(10, 100, 1000, 10000), dense_dim=100, log=print):
    mode = "quick" if quick else "full"
    work, repeats = WORK[mode], REPEATS[mode]
    results = []
    configs = [("diagonal", d) for d in dims] + [("dense", dense_dim)]
    for kind, d in configs:
        target = make_target(kind, d)
        steps = min(max(work // d, DRAWS_STORED), 1_000_000)
        if kind == "dense":
            steps //= 4  # its O(d²) gradient dominates; a quarter of the steps is plenty
        for method in ("rmd", "ulmc"):
            case = Case(target, method, steps)
            case.warm_up()
            row = measure(case, repeats)
            row["target"] = f"{kind}_gaussian"
            results.append(row)
            log(f"  {row['target']:>18} d={d:>6} {method:>4}: overhead "
                f"{row['overhead_ns_per_dim_step']:7.2f} ns/dim/step, "
                f"{row['overhead_ns_per_step']:10.1f} ns/step "
                f"(sampler {row['sampler_ns_per_step']:.0f}, gradient "
                f"{row['gradient_ns_per_step']:.0f}, rng {row['rng_ns_per_step']:.0f} ns/step)")
    fits = {}
    for method in ("rmd", "ulmc"):
        rows = [r for r in results if r["method"] == method and r["target"] == "diagonal_gaussian"]
        per_dim, per_step = fit_floor(rows)
        ref_dim, ref_step = REFERENCE_FLOOR[method]
        fits[method] = {
            "ns_per_dim": per_dim,
            "ns_per_step": per_step,
            "reference_ns_per_dim": ref_dim,
            "reference_ns_per_step": ref_step,
            "ratio_to_reference_at_d": {
                str(r["d"]): r["overhead_ns_per_step"] / (ref_step + ref_dim * r["d"])
                for r in rows
            },
        }
    log("  many chains (lcsample.sample, threads over chains):")
    many = many_chains(quick=quick, dims=dims, log=log)
    return {
        "benchmark": "overhead",
        "many_chains": many,
        "mode": mode,
        "work_steps_times_dim": work,
        "step_size": Case.H,
        "friction": Case.GAMMA,
        "threads": numba.get_num_threads(),
        "rows": results,
        "linear_fit": fits,
    }


#: Chain counts of the many-chains timing (``lcsample.sample``, threads over chains).
MANY_CHAINS = (4, 16)
#: Steps x dimensions per chain per timed many-chains call.
MANY_WORK = {"quick": 500_000, "full": 3_000_000}
MANY_REPEATS = {"quick": 3, "full": 5}


def many_chains(quick=False, dims=(10, 100, 1000, 10000), chains=MANY_CHAINS,
                methods=("rmd", "ulmc"), log=print):
    """Time per chain-step of ``lcsample.sample`` with several chains, against the gradients.

    ``lcsample.sample(target, chains=C, tune=0, step_size=h, friction=γ,
    inverse_mass_matrix=ones, initial_positions=...)`` (no warmup, no mode search), draws
    thinned to :data:`DRAWS_STORED` per chain; ``timing["sampling"]`` after a first call
    that compiles. The chains run on ``threads = min(cores, C)`` threads, so a
    chain-step costs ``threads × sampling / (C × steps)`` thread-seconds; the baseline is
    the same jitted gradient-only loop as the single-chain case (one thread). Minimum
    over repeats of each, interleaved.
    """
    import os

    mode = "quick" if quick else "full"
    cores = len(os.sched_getaffinity(0))
    rows = []
    for d in dims:
        target = make_target("diagonal", d)
        steps = max(MANY_WORK[mode] // d, DRAWS_STORED)
        thin = max(1, steps // DRAWS_STORED)
        steps = thin * DRAWS_STORED
        for method in methods:
            case = Case(target, method, steps)
            case.warm_up()
            for n_chains in chains:
                threads = min(cores, n_chains)
                sampler, gradient = _time_chains(target, method, n_chains, thin,
                                                 case.run_gradient, MANY_REPEATS[mode])
                s, g = min(sampler), min(gradient)
                chain_steps = n_chains * steps
                thread_ns = 1e9 * s * threads / chain_steps
                grad_ns = 1e9 * g / steps
                row = {
                    "target": "diagonal_gaussian", "method": method, "d": d,
                    "chains": n_chains, "threads": threads, "steps": steps,
                    "repeats": MANY_REPEATS[mode], "sampling_s": s, "gradient_s": g,
                    "all_sampling_s": sampler, "all_gradient_s": gradient,
                    "wall_ns_per_chain_step": 1e9 * s / chain_steps,
                    "thread_ns_per_chain_step": thread_ns,
                    "gradient_ns_per_step": grad_ns,
                    "overhead_ns_per_chain_step": thread_ns - grad_ns,
                    "overhead_ns_per_dim_step_per_chain": (thread_ns - grad_ns) / d,
                    "sampler_over_gradient": thread_ns / grad_ns,
                }
                rows.append(row)
                log(f"  {d:>6} {method:>4} chains={n_chains:>2} ({threads} threads): "
                    f"{row['wall_ns_per_chain_step']:9.0f} ns wall per chain-step, "
                    f"{thread_ns:9.0f} thread-ns vs gradient {grad_ns:9.0f} ns "
                    f"(ratio {row['sampler_over_gradient']:.2f})")
    return {"cores": cores, "chains": list(chains), "work_steps_times_dim": MANY_WORK[mode],
            "rows": rows}


def _time_chains(target, method, n_chains, thin, run_gradient, repeats):
    """Sampling seconds of ``lcsample.sample`` with ``n_chains`` chains, and of the
    gradient-only loop (``run_gradient``), interleaved, every repeat after a compiling
    first call."""
    d = target.dim
    x0 = np.random.default_rng(3).standard_normal((n_chains, d))

    def call():
        res = lcsample.sample(
            target, draws=DRAWS_STORED, thin=thin, tune=0, chains=n_chains,
            seed=5, method=method, step_size=Case.H, friction=Case.GAMMA,
            inverse_mass_matrix=np.ones(d), initial_positions=x0,
            progressbar=False, compute_convergence_checks=False)
        return float(res.timing["sampling"])

    call()  # compile
    sampler, gradient = [], []
    for _ in range(repeats):
        sampler.append(call())
        gradient.append(run_gradient())
    return sampler, gradient


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings, fewer repeats")
    parser.add_argument("--json", help="write the results to this file")
    opts = parser.parse_args(argv)
    out = run(quick=opts.quick)
    for method, fit in out["linear_fit"].items():
        print(f"{method}: overhead ≈ {fit['ns_per_dim']:.2f} ns/dim + "
              f"{fit['ns_per_step']:.0f} ns/step "
              f"(reference floor {fit['reference_ns_per_dim']} ns/dim + "
              f"{fit['reference_ns_per_step']:.0f} ns/step)")
    if opts.json:
        write_json(opts.json, out)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
