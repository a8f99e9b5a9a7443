"""lcsample against the samplers users would pick instead, measured in the same run.

Peers (JAX CPU backend, float64, 4 chains, the same log densities written in JAX; the
adapters are in ``peers_adapters.py``):

* ``blackjax_nuts``: BlackJAX NUTS after ``blackjax.window_adaptation`` (diagonal mass,
  target acceptance 0.8, 1000 warmup steps), chains ``jax.vmap``-ed;
* ``numpyro_nuts``: NumPyro NUTS (diagonal mass, 1000 warmup steps),
  ``chain_method="vectorized"``;
* ``mclmc <N>``: BlackJAX MCLMC (isokinetic McLachlan integrator) tuned per chain by
  ``blackjax.mclmc_find_L_and_step_size(num_steps=N)``, then N steps; two budgets N
  per target (:data:`TARGETS`).

lcsample: ``rmd`` (``lcsample.sample`` defaults), ``ulmc`` (``method="ulmc",
target_accuracy=0.1``; exponential Euler has O(h) bias, and 0.1 is its cheapest
accuracy that reaches b² < 0.01 everywhere in ``accuracy.py``), ``rmd-tv`` and
``rmd-picard`` (``method="rmd-picard"``, recorded as not available when this
lcsample does not have it).

Per run (target, sampler, seed):

* gradient evaluations **per chain**, warmup/tuning included, until b² < 0.01 for x and
  x² and staying there (:func:`lcsample.metrics.grads_to_accuracy`'s definition; NUTS:
  the sum of ``num_integration_steps`` over warmup and draws, one gradient per leapfrog
  step; MCLMC: 2 gradients per integrator step, tuning steps as returned by the tuner;
  the handful of gradients of NUTS's initial step-size search is not counted);
* wall time split into compile (JAX: the duration of every trace, lowering and backend
  compile event seen through ``jax.monitoring``, overlaps merged; lcsample:
  ``timing["compile"]``), warmup and sampling; the run time to accuracy = everything but
  compile up to the crossing (sampling prorated by its gradients);
* ArviZ bulk ESS, minimum over coordinates (the first ``ESS_MAX_COORDS``), of the
  draws after warmup, per gradient (all chains' sampling gradients) and per second of
  sampling.

Peers start every chain from Uniform(-2, 2)^d (NumPyro's and Stan's default); lcsample
from its own initialization (mode search and jitter), counted in its gradients. The
report section is ``report.peers_section``.

    python benchmarks/peers.py [--quick] [--targets NAME ...] [--samplers NAME ...]
                               [--json PATH] [--make-reference]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
import accuracy  # noqa: E402
from common import finish, median_inf, quotient  # noqa: E402
from peers_adapters import (  # noqa: E402
    CHAINS,
    ESS_MAX_COORDS,
    NUTS_WARMUP,
    BlackjaxNuts,
    Mclmc,
    NumpyroNuts,
    make_poisson_reference,
    missing_packages,
    versions,
)

from lcsample.metrics import squared_bias  # noqa: E402

THRESHOLD = accuracy.THRESHOLD
#: The long-run threshold (ten times tighter: about ten times the effective draws).
THRESHOLD_TIGHT = 0.001
SEEDS = {"quick": 1, "full": 3}
#: NUTS draws after warmup (per chain): the peer figures quoted in ``accuracy.py`` reach
#: b² < 0.01 within 19-256 draws.
NUTS_DRAWS = {"quick": 500, "full": 1000}
#: Fewer NUTS draws where a NUTS step is slow (N(0, I_10000): ~200 s per seed on 2 cores
#: with 1000 draws); the crossing comes within ~20 draws after warmup there.
NUTS_DRAWS_OVERRIDES = {"gaussian_10000": 500}
#: Draws per chain of lcsample, times each sampler's factor below (rmd: 4x, enough for
#: b² < 0.001, a pooled ESS of ~1,000 per coordinate; ulmc: 2x, its step is smaller).
LCSAMPLE_DRAWS = 1000
#: At most this many draws where 4,000 would not fit well in memory (1.3 GB at d = 10⁴).
LCSAMPLE_MAX_DRAWS = {"gaussian_10000": 1000}
#: A (target, sampler) whose first seed runs longer than this (compile excluded) skips
#: its other seeds.
SEED_CAP_S = {"quick": 60.0, "full": 120.0}
#: Points kept of each b² curve (log-spaced in the draw index) for the plots.
CURVE_POINTS = 150

#: name -> (builder, description, MCLMC num_steps budgets (small, large)).
TARGETS = {
    "german_credit": (accuracy.german_credit, "German credit logistic regression",
                      (500, 4000)),
    "rotated_gaussian_100": (accuracy.rotated_gaussian, "rotated Gaussian, κ = 1e3",
                             (5000, 20000)),
    "linear_regression_50": (accuracy.linear_regression,
                             "linear regression, exact posterior", (1000, 4000)),
    "poisson_regression_20": (accuracy.poisson_regression,
                              "Poisson regression (NUTS reference)", (1000, 4000)),
    **{f"gaussian_{d}": (lambda d=d: accuracy.diagonal_gaussian(np.ones(d)), "N(0, I)",
                         (500, 2000)) for d in (10, 100, 1000, 10000)},
    "item_response_501": (accuracy.item_response, "item response (Rasch), nutpie reference",
                          (2000, 8000)),
}
QUICK_TARGETS = ("german_credit", "rotated_gaussian_100", "poisson_regression_20",
                 "gaussian_1000")

LCSAMPLE_SAMPLERS = {
    "rmd-lagged": ({}, 4),  # the default method
    "rmd": ({"method": "rmd"}, 4),
    "ulmc": ({"method": "ulmc", "target_accuracy": 0.1}, 2),
    "rmd-tv": ({"method": "rmd-tv"}, 1),
    "rmd-picard": ({"method": "rmd-picard"}, 1),
}
PEER_SAMPLERS = ("blackjax_nuts", "numpyro_nuts", "mclmc small", "mclmc large")
SAMPLERS = tuple(LCSAMPLE_SAMPLERS) + PEER_SAMPLERS
QUICK_SAMPLERS = ("rmd-lagged", "rmd", "ulmc", "rmd-picard", "blackjax_nuts", "numpyro_nuts",
                  "mclmc small")
#: rmd-tv (16 extra gradients per draw) runs on these targets only.
RMD_TV_TARGETS = ("german_credit", "rotated_gaussian_100", "linear_regression_50",
                  "poisson_regression_20")

LABELS = {
    "rmd-lagged": "lcsample rmd-lagged", "rmd": "lcsample rmd", "ulmc": "lcsample ulmc",
    "rmd-tv": "lcsample rmd-tv",
    "rmd-picard": "lcsample rmd-picard", "blackjax_nuts": "BlackJAX NUTS",
    "numpyro_nuts": "NumPyro NUTS", "mclmc small": "BlackJAX MCLMC (small)",
    "mclmc large": "BlackJAX MCLMC (large)",
}


def _initial_positions(seed, d):
    """Uniform(-2, 2)^d per chain (NumPyro's init_to_uniform, Stan's default)."""
    return np.random.default_rng([seed, 7]).uniform(-2.0, 2.0, (CHAINS, d))


def nuts_draws(target, mode):
    return min(NUTS_DRAWS[mode], NUTS_DRAWS_OVERRIDES.get(target, NUTS_DRAWS[mode]))


def make_peer(sampler, problem, budgets, mode, target=None):
    if sampler == "blackjax_nuts":
        return BlackjaxNuts(problem, nuts_draws(target, mode))
    if sampler == "numpyro_nuts":
        return NumpyroNuts(problem, nuts_draws(target, mode))
    if sampler.startswith("mclmc"):
        return Mclmc(problem, budgets[0 if sampler == "mclmc small" else 1])
    raise ValueError(sampler)


# ---------------------------------------------------------------------------------------
# Measures shared by all samplers


def min_bulk_ess(draws):
    """ArviZ bulk ESS of (chains, draws, k) draws, minimum over the k coordinates."""
    import arviz as az

    ess = az.ess(az.convert_to_dataset(np.ascontiguousarray(draws)), method="bulk")
    return float(np.nanmin(np.asarray(ess["x"])))


def crossing(b2x, b2x2, threshold=THRESHOLD):
    """Index n of the first draw from which both curves stay below ``threshold``, or None.

    As in :func:`lcsample.metrics.grads_to_accuracy`: draws 0..n are used.
    """
    above = np.flatnonzero((b2x >= threshold) | (b2x2 >= threshold) | ~np.isfinite(b2x + b2x2))
    n = 0 if above.size == 0 else above[-1] + 1
    return None if n >= b2x.shape[0] else int(n)


def _curve(grads_axis, b2x, b2x2):
    """Log-spaced subsample of (gradients per chain, max(b²_x, b²_x²))."""
    n = len(grads_axis)
    idx = np.unique(np.geomspace(1, n, CURVE_POINTS).astype(int) - 1)
    b = np.maximum(b2x, b2x2)
    return {"grads": [float(grads_axis[i]) for i in idx], "b2": [float(b[i]) for i in idx]}


def summarize_run(raw, seed, init_grads=0.0, init_s=0.0):
    """Per-run record from the raw outputs of any sampler (JSON-ready)."""
    b2x, b2x2 = raw["b2"]
    warm, per_draw = raw["warmup_grads"], raw["draw_grads"]  # (C,), (C, n)
    n = crossing(b2x, b2x2)
    tight = crossing(b2x, b2x2, THRESHOLD_TIGHT)
    sampling_total = per_draw.sum(axis=1)
    grads, time_to = None, None
    if n is not None:
        used = per_draw[:, :n + 1].sum(axis=1)
        grads = float(init_grads + (warm + used).mean())
        frac = used.sum() / max(sampling_total.sum(), 1.0)
        time_to = float(init_s + raw["warmup_s"] + frac * raw["sampling_s"])
    ess = min_bulk_ess(raw["draws"])
    axis = init_grads + warm.mean() + np.cumsum(per_draw.mean(axis=0))
    row = {
        "seed": seed,
        "grads": grads,
        "grads_tight": (None if tight is None else
                        float(init_grads + (warm + per_draw[:, :tight + 1].sum(axis=1)).mean())),
        "crossing_draw": n,
        "final_b2_x": float(b2x[-1]),
        "final_b2_x2": float(b2x2[-1]),
        "draws": int(per_draw.shape[1]),
        "init_grads": float(init_grads),
        "warmup_grads_per_chain": float(warm.mean()),
        "sampling_grads_per_chain": float(sampling_total.mean()),
        "compile_s": float(raw["compile_s"]),
        "init_s": float(init_s),
        "warmup_s": float(raw["warmup_s"]),
        "sampling_s": float(raw["sampling_s"]),
        "run_s": float(init_s + raw["warmup_s"] + raw["sampling_s"]),
        "time_to_accuracy_s": time_to,
        "ess_bulk_min": ess,
        "ess_coords": int(raw["draws"].shape[2]),
        "ess_per_grad": ess / float(sampling_total.sum()),
        "ess_per_s": ess / raw["sampling_s"] if raw["sampling_s"] > 0 else None,
        "sampling_grads_per_s": (float(sampling_total.sum()) / raw["sampling_s"]
                                 if raw["sampling_s"] > 0 else None),
        "curve": _curve(axis, b2x, b2x2),
    }
    for key in ("step_size", "L", "tuning_steps", "divergent_draws", "friction", "tune"):
        if key in raw:
            row[key] = raw[key]
    return row


def _lcsample_call(problem, options, draws, seed):
    result, wall, timing = accuracy.timed_sample(problem, options, draws, seed)
    # mode search and curvature at the mode happen before the timed phases
    return result, timing, max(wall - sum(timing.values()), 0.0)


def lcsample_first_call(problem, options):
    """Compile cost of lcsample on a target: a first, short call (10 draws, seed 999).

    numba compiles the target's own function on its first call (in ``sample()``'s check
    of the initial point) and the driver for each target function (``timing["compile"]``),
    and the mode search's first call carries its own start-up; the measured seeds that
    follow are all warm. Returns the compile seconds: the target's first call, plus
    ``timing["compile"]``, plus the part of the initialization beyond a warm call's.
    """
    t0 = time.perf_counter()
    problem.target.logdensity_and_gradient(np.asarray(problem.mean, dtype=float))
    target_s = time.perf_counter() - t0
    _, timing, init_first = _lcsample_call(problem, options, 10, 999)
    _, _, init_warm = _lcsample_call(problem, options, 10, 998)
    return {"target_s": target_s, "driver_s": timing.get("compile", 0.0),
            "init_extra_s": max(init_first - init_warm, 0.0),
            "compile_s": target_s + timing.get("compile", 0.0)
            + max(init_first - init_warm, 0.0)}


def run_lcsample(problem, options, draws, seed):
    result, timing, init_s = _lcsample_call(problem, options, draws, seed)
    per_draw = np.asarray(result.sample_stats["n_steps"], dtype=float)
    k = min(problem.target.dim, ESS_MAX_COORDS)
    raw = {
        "b2": squared_bias(result.posterior, problem.mean, problem.sd),
        "warmup_grads": np.asarray(result.n_grad_evals, dtype=float) - per_draw.sum(axis=1),
        "draw_grads": per_draw,
        "draws": np.asarray(result.posterior[:, :, :k]),
        "compile_s": timing.get("compile", 0.0),
        "warmup_s": timing.get("warmup", 0.0),
        "sampling_s": timing.get("sampling", 0.0),
        "step_size": float(np.median(result.attrs["step_size"])),
        "friction": float(np.median(result.attrs["friction"])),
        "tune": int(result.attrs["tune"]),
        "divergent_draws": int(np.asarray(result.sample_stats["diverging"]).sum()),
    }
    return summarize_run(raw, seed, float(result.attrs.get("init_grad_evals", 0)), init_s)


def summarize(rows):
    def med(key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(np.median(vals)) if vals else None

    return {
        "seeds": len(rows),
        "reached": sum(r["grads"] is not None for r in rows),
        "median_grads": median_inf([r["grads"] for r in rows]),
        "reached_tight": sum(r.get("grads_tight") is not None for r in rows),
        "median_grads_tight": median_inf([r.get("grads_tight") for r in rows]),
        "median_time_to_accuracy_s": median_inf([r["time_to_accuracy_s"] for r in rows]),
        "compile_s": max(r["compile_s"] for r in rows),
        "median_run_s": med("run_s"),
        "median_init_s": med("init_s"),
        "median_warmup_s": med("warmup_s"),
        "median_sampling_s": med("sampling_s"),
        "median_warmup_grads": med("warmup_grads_per_chain"),
        "median_ess_bulk_min": med("ess_bulk_min"),
        "median_ess_per_grad": med("ess_per_grad"),
        "median_ess_per_s": med("ess_per_s"),
        "median_sampling_grads_per_s": med("sampling_grads_per_s"),
        "median_final_b2": median_inf([max(r["final_b2_x"], r["final_b2_x2"]) for r in rows]),
        "draws": rows[0]["draws"],
    }


def ratios(summary, baseline="rmd"):
    """Per target: each sampler's median grads and time to accuracy over ``baseline``'s."""
    out = {}
    for name, per in summary.items():
        base = per.get(baseline, {})
        out[name] = {}
        for sampler, s in per.items():
            if "median_grads" not in s or sampler == baseline:
                continue
            g, bg = s["median_grads"], base.get("median_grads")
            t, bt = s["median_time_to_accuracy_s"], base.get("median_time_to_accuracy_s")
            out[name][sampler] = {
                "grads_over_rmd": quotient(g, bg),
                "time_over_rmd": quotient(t, bt),
                "ess_per_grad_over_rmd": (s["median_ess_per_grad"] / base["median_ess_per_grad"]
                                          if base.get("median_ess_per_grad") else None),
                "ess_per_s_over_rmd": (s["median_ess_per_s"] / base["median_ess_per_s"]
                                       if s.get("median_ess_per_s")
                                       and base.get("median_ess_per_s") else None),
            }
    return out


# ---------------------------------------------------------------------------------------
# Driver


def applicable(target, sampler):
    return not (sampler == "rmd-tv" and target not in RMD_TV_TARGETS)


def run(quick=False, targets=None, samplers=None, log=print):
    """Run the comparison; returns a JSON-ready dict."""
    missing = missing_packages()
    if missing:
        raise RuntimeError(f"peers benchmark needs {', '.join(missing)} "
                           "(pip install -e .[bench])")
    mode = "quick" if quick else "full"
    seeds = list(range(SEEDS[mode]))
    targets = list(targets or (QUICK_TARGETS if quick else TARGETS))
    samplers = list(samplers or (QUICK_SAMPLERS if quick else SAMPLERS))
    t_start = time.perf_counter()
    if "poisson_regression_20" in targets and not accuracy.POISSON_REFERENCE.exists():
        _make_reference_apart(log)
    problems = {name: TARGETS[name][0]() for name in targets}
    rec = {"runs": [], "summary": {name: {} for name in targets}, "skipped": {},
           "not_available": {}, "failed": {}}
    for name, sampler in _order(targets, samplers):
        if applicable(name, sampler):
            _measure(rec, name, sampler, problems[name], mode, seeds, log)
    rec["summary"] = {name: {k: per[k] for k in samplers if k in per}
                      for name, per in rec["summary"].items()}
    return _results(mode, seeds, problems, samplers, rec, time.perf_counter() - t_start)


def _make_reference_apart(log):
    """The Poisson reference moments, made in a subprocess: this process must not run JAX
    before lcsample's runs (see :func:`_order`)."""
    log("  Poisson reference moments missing: computing them (long NUTS run)")
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--make-reference",
                    "--reference-only"], check=True)


def _order(targets, samplers):
    """lcsample first, on every target, then the JAX peers.

    Once XLA has run in a process its idle CPU threads slow OpenBLAS calls (lcsample's
    mode search and Laplace eigendecomposition took 5-10x longer after a JAX run on 2
    cores).
    """
    return ([(n, s) for n in targets for s in samplers if s in LCSAMPLE_SAMPLERS]
            + [(n, s) for n in targets for s in samplers if s not in LCSAMPLE_SAMPLERS])


def _measure(rec, name, sampler, problem, mode, seeds, log):
    """Every seed of one (target, sampler) into ``rec``; a failure is recorded, not raised."""
    key = f"{name}/{sampler}"
    t0 = time.perf_counter()
    rows, note, first_call = [], None, None
    try:
        call, first_call = _seed_runner(name, sampler, problem, mode)
        note = _run_seeds(call, seeds, SEED_CAP_S[mode], rows)
    except Exception as err:  # noqa: BLE001  (one failure must not end the run)
        why = f"{type(err).__name__}: {err}"
        if sampler == "rmd-picard" and not rows:
            rec["not_available"][key] = why
            rec["summary"][name][sampler] = {"not_available": why}
            log(f"  {name:22s} {sampler:14s} not available: {why}")
            return
        rec["failed"][key] = why
        log(f"  {name:22s} {sampler:14s} FAILED: {why}")
        if not rows:
            rec["summary"][name][sampler] = {"failed": why}
            return
        note = f"failed after {len(rows)} seed(s): {why}"
    if note:
        rec["skipped"][key] = note
    elapsed = time.perf_counter() - t0
    rec["runs"].append({"target": name, "sampler": sampler, "rows": rows,
                        "elapsed_s": elapsed, "note": note, "first_call": first_call})
    s = rec["summary"][name][sampler] = summarize(rows)
    if first_call is not None:
        s["compile_s"] = max(s["compile_s"], first_call["compile_s"])
    g = "not reached" if s["median_grads"] is None else f"{s['median_grads']:9,.0f}"
    t = s["median_time_to_accuracy_s"]
    log(f"  {name:22s} {sampler:14s} grads {g} ({s['reached']}/{s['seeds']}), "
        f"to accuracy {'—' if t is None else f'{t:.2f} s'}, compile "
        f"{s['compile_s']:.1f} s, ESS/grad {s['median_ess_per_grad']:.2g}, "
        f"ESS/s {s['median_ess_per_s'] or 0:.3g}; {elapsed:.1f} s"
        + (f" [{note}]" if note else ""))


def _seed_runner(name, sampler, problem, mode):
    """``call(seed) -> run record`` of one (target, sampler), and lcsample's compile cost.

    An lcsample sampler first makes its compiling call (:func:`lcsample_first_call`); a
    peer is built (not yet compiled) and has no such record (None).
    """
    if sampler in LCSAMPLE_SAMPLERS:
        options, factor = LCSAMPLE_SAMPLERS[sampler]
        first_call = lcsample_first_call(problem, options)

        draws = min(LCSAMPLE_DRAWS * factor, LCSAMPLE_MAX_DRAWS.get(name, np.inf))

        def call(seed):
            return run_lcsample(problem, options, int(draws), seed)

        return call, first_call
    peer = make_peer(sampler, problem, TARGETS[name][2], mode, name)

    def call(seed):
        return summarize_run(peer(seed, _initial_positions(seed, problem.target.dim)), seed)

    return call, None


def _run_seeds(call, seeds, cap_s, rows):
    """Append ``call(seed)`` to ``rows`` per seed; stop after a seed that ran over ``cap_s``.

    Returns the note saying which seeds were skipped, or None.
    """
    for seed in seeds:
        rows.append(call(seed))
        if rows[-1]["run_s"] > cap_s and seed != seeds[-1]:
            return (f"seeds after {seed} skipped: run time "
                    f"{rows[-1]['run_s']:.0f} s > {cap_s:.0f} s")
    return None


def _results(mode, seeds, problems, samplers, rec, elapsed):
    """The JSON-ready record of a :func:`run`: settings, runs, summary and ratios."""
    poisson_ref = None
    if accuracy.POISSON_REFERENCE.exists():
        ref = json.loads(accuracy.POISSON_REFERENCE.read_text())
        poisson_ref = {k: v for k, v in ref.items() if k not in ("mean", "sd")}
    return {
        "benchmark": "peers",
        "mode": mode,
        "threshold": THRESHOLD,
        "chains": CHAINS,
        "seeds": seeds,
        "nuts_warmup": NUTS_WARMUP,
        "nuts_draws": NUTS_DRAWS[mode],
        "nuts_draws_overrides": {k: v for k, v in NUTS_DRAWS_OVERRIDES.items()
                                 if k in problems and v < NUTS_DRAWS[mode]},
        "lcsample_draws": LCSAMPLE_DRAWS,
        "lcsample_samplers": {k: v[0] for k, v in LCSAMPLE_SAMPLERS.items()},
        "ess_max_coords": ESS_MAX_COORDS,
        "seed_cap_s": SEED_CAP_S[mode],
        "versions": versions(),
        "targets": {name: _described(name, problem) for name, problem in problems.items()},
        "samplers": samplers,
        "labels": LABELS,
        "runs": rec["runs"],
        "summary": rec["summary"],
        "ratios": ratios(rec["summary"]),
        "skipped": rec["skipped"],
        "not_available": rec["not_available"],
        "failed": rec["failed"],
        "poisson_reference": poisson_ref,
        "elapsed_s": elapsed,
    }


def _described(name, problem):
    _, description, budgets = TARGETS[name]
    return {"description": description, "dim": problem.target.dim,
            "mclmc_num_steps": {"mclmc small": budgets[0], "mclmc large": budgets[1]}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer targets")
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS))
    parser.add_argument("--samplers", nargs="+", choices=list(SAMPLERS))
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--make-reference", action="store_true",
                        help="(re)compute the Poisson reference moments first")
    parser.add_argument("--reference-only", action="store_true",
                        help="with --make-reference: stop after it")
    opts = parser.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(f"missing {', '.join(missing)}: pip install -e .[bench]")
        return None
    if opts.make_reference:
        make_poisson_reference()
        if opts.reference_only:
            return None
    out = run(quick=opts.quick, targets=opts.targets, samplers=opts.samplers)
    finish(out, opts.json)
    return out


if __name__ == "__main__":
    main()
