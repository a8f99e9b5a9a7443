"""Gradient evaluations to reach b² < 0.01, the measure of the peer figures.

The metric is that of the peer figures (:data:`PEER_NUMBERS`) and of
:func:`lcsample.metrics.grads_to_accuracy`:

b²_x(n) = mean_i (Ê_n[x_i] - E[x_i])² / Var[x_i] and b²_x²(n) likewise for x_i², with
Var[x_i²] ≈ 2σ⁴ + 4μ²σ² (exact for a Gaussian), where Ê_n pools the first n draws of all
chains. The cost of a run is the gradient evaluations per chain (shared initialization,
warmup and draws) at the first n from which both stay below the threshold
(:mod:`lcsample.metrics`).

Each configuration of :data:`CONFIGS` (sampler options of :func:`lcsample.sample`) runs on
each target of :data:`TARGETS`, 4 chains, with 5 seeds (2 with ``--quick``). A
configuration none of whose seeds reached the threshold is run again with 4× the draws,
once, and marked ``retried``. For Gaussian targets with a known covariance each run also
reports the variance of the pooled draws along every eigenvector of that covariance,
relative to its eigenvalue (b² averages over coordinates and can hide a biased stiff
direction, where an unadjusted step's bias is largest: ``docs/theory.md`` §7-8), with
Monte-Carlo standard errors from batch means.

    python benchmarks/accuracy.py [--quick] [--targets NAME ...] [--configs NAME ...]
                                  [--json PATH]
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
from common import REPO, RESULTS, finish, fmt, median_inf, quotient  # noqa: E402

import lcsample  # noqa: E402
from lcsample.kernels.step import GRADS_PER_STEP  # noqa: E402
from lcsample.mcmc.options import AUTO_DENSE_MAX_DIM, METHODS  # noqa: E402
from lcsample.metrics import grads_to_accuracy, squared_bias  # noqa: E402

THRESHOLD = 0.01
CHAINS = 4
SEEDS = {"quick": 2, "full": 5}
#: Draws multiplier of the single retry of a configuration no seed brought below threshold.
RETRY_FACTOR = 4
#: Batches per chain for the batch-means standard errors of the direction variances.
BATCHES_PER_CHAIN = 10
#: "Stiff" directions: covariance eigenvalue at most this factor above the smallest.
STIFF_BAND = 1.1

#: Memory bound on the stored draws of one run (chains × draws × d float64): caps ``draws``
#: (and its retry) at d = 10,000.
MAX_POSTERIOR_BYTES = 2 * 2**30

#: Measured earlier, outside these benchmarks (BlackJAX 1.7.1 / NumPyro 0.22.0 on JAX 0.10.2,
#: CPU, a 2-core x86 machine, 4 chains): gradient evaluations per chain, warmup included, to
#: b² < 0.01. Not run here; ``peers.py`` measures them in the same run.
#: MCLMC entries are (gradients, num_steps passed to its tuner).
PEER_NUMBERS = {
    "german_credit": {"blackjax_nuts": 11_800, "numpyro_nuts": 11_850,
                      "mclmc": (2_900, 4_000), "mclmc_smallest": (607, 500)},
    "rotated_gaussian_100": {"blackjax_nuts": 108_600, "numpyro_nuts": 107_200,
                             "mclmc": (14_500, 20_000), "mclmc_smallest": (6_965, 5_000)},
}


@dataclass
class Problem:
    """A target with its exact (or reference) moments.

    Attributes
    ----------
    target : lcsample.Target
    mean, sd : ndarray, shape (d,)
        Posterior means and standard deviations.
    cov_eigenvalues : ndarray, shape (d,) or None
        Eigenvalues of the exact covariance; None when it is not known.
    cov_eigenvectors : ndarray, shape (d, d) or None
        Eigenvectors (columns) matching ``cov_eigenvalues``; None for the coordinate axes.
    jax_logdensity : callable or None
        Builds the target's JAX log density where it is not a built-in target.
    """

    target: lcsample.Target
    mean: np.ndarray
    sd: np.ndarray
    cov_eigenvalues: np.ndarray | None = None
    cov_eigenvectors: np.ndarray | None = None
    #: For a target that is not a built-in one: () -> its log density in JAX (peers).
    jax_logdensity: object = None


def german_credit():
    """Logistic regression on German credit (d = 25), NUTS reference moments."""
    X, y = lcsample.datasets.load_german_credit()
    ref = json.loads((REPO / "tests" / "data" / "german_credit_reference.json").read_text())
    return Problem(lcsample.targets.LogisticRegression(X, y), np.array(ref["mean"]),
                   np.array(ref["sd"]))


def item_response():
    """inference_gym's Rasch model (d = 501, tests/data), nutpie reference moments."""
    from pymc_models import item_response_hand

    data = np.load(REPO / "tests" / "data" / "item_response.npz", allow_pickle=False)
    ref = json.loads((REPO / "tests" / "data" / "item_response_reference.json").read_text())
    student, question = data["student_ids"].astype(np.int64), data["question_ids"].astype(np.int64)
    y = data["correct"].astype(np.float64)
    target = item_response_hand({"student": student, "question": question, "y": y,
                                 "n_students": 400, "n_questions": 100})

    def jax_logdensity():
        import jax
        import jax.numpy as jnp

        s, q, obs = jnp.asarray(student), jnp.asarray(question), jnp.asarray(y)

        def rasch(x):
            eta = x[0] + x[1:401][s] - x[401:][q]
            prior = (x[0] - 0.75) ** 2 + x[1:] @ x[1:]
            return jnp.sum(obs * eta - jax.nn.softplus(eta)) - 0.5 * prior
        return rasch

    return Problem(target, np.array(ref["mean"]), np.array(ref["sd"]),
                   jax_logdensity=jax_logdensity)


def rotated_gaussian(d=100, kappa=1e3):
    """N(0, Q diag(logspace(0, log10 κ)) Qᵀ), Q = ortho_group(d, random_state=0)."""
    from scipy.stats import ortho_group

    q = ortho_group.rvs(d, random_state=0)
    cov = (q * np.logspace(0, np.log10(kappa), d)) @ q.T
    cov = 0.5 * (cov + cov.T)
    evals, evecs = np.linalg.eigh(cov)
    return Problem(lcsample.targets.Gaussian(np.zeros(d), cov=cov), np.zeros(d),
                   np.sqrt(np.diag(cov)), evals, evecs)


def linear_regression(d=50, n=200, seed=0):
    """Bayesian linear regression, exact Gaussian posterior, column scales 0.2 to 2."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.2, 2.0, d)
    y = X @ rng.standard_normal(d) + rng.standard_normal(n)
    target = lcsample.targets.LinearRegression(X, y)
    evals, evecs = np.linalg.eigh(target.cov)
    return Problem(target, target.mean, np.sqrt(np.diag(target.cov)), evals, evecs)


#: Reference moments of :func:`poisson_regression`, written by ``benchmarks/peers.py``
#: (a long BlackJAX NUTS run; see ``peers.make_poisson_reference``).
POISSON_REFERENCE = RESULTS / "poisson_reference.json"


def poisson_data(d=20, n=500, seed=0):
    """Synthetic Poisson-regression data: intercept 1 plus d - 1 N(0, 1/(d - 1)) features.

    Weights w_true = (1, N(0, 0.5²)...), so log-rates have sd ≈ 0.5 about 1 (rates ≈ e).
    """
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, d - 1)) / np.sqrt(d - 1)])
    w = np.concatenate([[1.0], 0.5 * rng.standard_normal(d - 1)])
    y = rng.poisson(np.exp(X @ w)).astype(float)
    return X, y


def poisson_regression(d=20, n=500, reference=POISSON_REFERENCE):
    """Poisson regression (log link, N(0, I) prior) on :func:`poisson_data`.

    The posterior has no closed form: the moments come from ``reference``, a JSON file
    with ``mean`` and ``sd`` (a long NUTS run, ``python benchmarks/peers.py
    --make-reference``). Raises FileNotFoundError when it is missing.
    """
    X, y = poisson_data(d, n)
    ref = json.loads(Path(reference).read_text())
    if ref.get("dim") not in (None, d) or ref.get("n") not in (None, n):
        raise ValueError(f"{reference} is for d = {ref.get('dim')}, n = {ref.get('n')}")
    return Problem(lcsample.targets.PoissonRegression(X, y), np.array(ref["mean"]),
                   np.array(ref["sd"]))


def diagonal_gaussian(variances):
    """N(0, diag(variances)); its eigen-directions are the coordinate axes."""
    variances = np.asarray(variances, dtype=float)
    d = variances.size
    return Problem(lcsample.targets.Gaussian(np.zeros(d), cov=variances), np.zeros(d),
                   np.sqrt(variances), variances)


#: name -> (builder, description, draws per chain for the configurations with factor 1).
TARGETS = {
    "german_credit": (german_credit, "German credit logistic regression", 1000),
    "rotated_gaussian_100": (rotated_gaussian, "rotated Gaussian, κ = 1e3", 1000),
    "linear_regression_50": (linear_regression, "linear regression, exact posterior", 1000),
    **{f"gaussian_{d}": (lambda d=d: diagonal_gaussian(np.ones(d)), "N(0, I)", 1000)
       for d in (10, 100, 1000, 10000)},
    "ill_conditioned_gaussian_1000": (
        lambda: diagonal_gaussian(np.logspace(0, 2, 1000)),
        "diagonal Gaussian, variances logspace(0, 2)", 1000),
}

#: name -> (sample() options, draws factor). ULMC (exponential Euler) has O(h) stationary
#: bias, so its default accuracy forces a small step; it runs at four accuracies and the
#: best one per target is its baseline ("ulmc best").
CONFIGS = {
    "rmd-lagged": ({}, 1),  # the default method
    "rmd": ({"method": "rmd"}, 1),
    "rmd adaptive": ({"method": "rmd", "tuning": "adaptive"}, 1),
    "rmd diag": ({"method": "rmd", "inverse_mass_matrix": "diag"}, 1),
    "ulmc 0.01": ({"method": "ulmc", "target_accuracy": 0.01}, 10),
    "ulmc 0.05": ({"method": "ulmc", "target_accuracy": 0.05}, 4),
    "ulmc 0.1": ({"method": "ulmc", "target_accuracy": 0.1}, 2),
    "ulmc 0.2": ({"method": "ulmc", "target_accuracy": 0.2}, 2),
    "rmd-tv": ({"method": "rmd-tv"}, 1),
}
ULMC_CONFIGS = ("ulmc 0.01", "ulmc 0.05", "ulmc 0.1", "ulmc 0.2")
#: rmd-tv (16 corrector gradients per draw) runs on these targets only.
RMD_TV_TARGETS = ("german_credit", "rotated_gaussian_100")
#: Draws factors that differ from the configuration's: a diagonal mass on a rotated
#: Gaussian leaves its condition number, so the step is ~30× smaller.
DRAWS_FACTOR_OVERRIDES = {("rotated_gaussian_100", "rmd diag"): 25}


def direction_variance_errors(posterior, eigenvalues, eigenvectors=None,
                              batches=BATCHES_PER_CHAIN):
    """Variance of the pooled draws along each eigen-direction of the true covariance.

    For each eigenvector q_k (eigenvalue λ_k) the ratio r_k = Var̂(qₖᵀx)/λ_k, the variance
    about the pooled mean of all chains' draws. Its standard error comes from batch
    means: each chain's draws are cut into ``batches`` consecutive batches, and the
    spread of the batch estimates over all chains gives the error of their mean.

    Parameters
    ----------
    posterior : ndarray, shape (chains, draws, d)
    eigenvalues : ndarray, shape (d,)
    eigenvectors : ndarray, shape (d, d), optional
        Columns q_k; None for the coordinate axes (diagonal covariance).
    batches : int

    Returns
    -------
    dict
        ``worst_error`` max_k |r_k - 1| with ``worst_se`` and ``worst_eigenvalue`` of
        that direction; ``stiff_error`` the mean of r_k - 1 over the stiffest directions
        (λ_k within :data:`STIFF_BAND` of the smallest, ``n_stiff`` of them: all d for an
        isotropic target) with ``stiff_se``; ``median_se`` the median standard error of
        one direction.
    """
    chains, n, _ = posterior.shape
    size = n // batches
    centre = posterior.mean(axis=(0, 1))
    if eigenvectors is not None:
        centre = centre @ eigenvectors
    estimates = []
    for c in range(chains):
        for b in range(batches):
            block = posterior[c, b * size:(b + 1) * size]
            if eigenvectors is not None:
                block = block @ eigenvectors
            estimates.append(((block - centre) ** 2).mean(axis=0) / eigenvalues)
    estimates = np.array(estimates)  # (chains * batches, d)
    n_b = estimates.shape[0]
    ratio = estimates.mean(axis=0)
    se = estimates.std(axis=0, ddof=1) / np.sqrt(n_b)
    worst = int(np.argmax(np.abs(ratio - 1.0)))
    stiff = eigenvalues <= STIFF_BAND * eigenvalues.min()
    stiff_batches = estimates[:, stiff].mean(axis=1)
    return {
        "worst_error": float(abs(ratio[worst] - 1.0)),
        "worst_se": float(se[worst]),
        "worst_eigenvalue": float(eigenvalues[worst]),
        "stiff_error": float(stiff_batches.mean() - 1.0),
        "stiff_se": float(stiff_batches.std(ddof=1) / np.sqrt(n_b)),
        "n_stiff": int(stiff.sum()),
        "median_se": float(np.median(se)),
    }


def timed_sample(problem, options, draws, seed):
    """``lcsample.sample`` on ``problem`` (:data:`CHAINS` chains, quiet).

    Returns the result, its wall time and ``result.timing`` as floats; the wall time less
    the timed phases is the initialization (mode search and curvature at the mode).
    """
    t0 = time.perf_counter()
    result = lcsample.sample(problem.target, draws=draws, chains=CHAINS, seed=seed,
                             progressbar=False, compute_convergence_checks=False, **options)
    wall = time.perf_counter() - t0
    return result, wall, {k: float(v) for k, v in result.timing.items()}


def run_once(problem, options, draws, seed):
    """One ``lcsample.sample`` call and what it measures; returns a JSON-ready dict."""
    result, wall, timing = timed_sample(problem, options, draws, seed)
    b_x, b_x2 = squared_bias(result.posterior, problem.mean, problem.sd)
    grads = grads_to_accuracy(result, problem.mean, problem.sd, THRESHOLD, (b_x, b_x2))
    row = {
        "seed": seed,
        "grads": grads,
        "breakdown": warmup_breakdown(result, grads),
        "final_b2_x": float(b_x[-1]),
        "final_b2_x2": float(b_x2[-1]),
        "wall_s": wall,
        # sample's own phases (initialization: mode search, first mass, starts), which
        # add up to its "total"; wall_s also holds the call's overhead around them
        "timing_s": dict(timing),
        "tune": int(result.attrs["tune"]),
        "step_size": float(result.attrs["step_size"][0]),
        "friction": float(result.attrs["friction"][0]),
        "inverse_mass_matrix": result.attrs["inverse_mass_matrix"],
        "init_grad_evals": int(result.attrs["init_grad_evals"]),
        "grad_evals_per_chain": float(result.n_grad_evals.mean()),
        "warmup_converged": bool(result.attrs["warmup_converged"]),
        "divergent_draws": int(result.sample_stats["diverging"].sum()),
    }
    if problem.cov_eigenvalues is not None:
        row["direction_variance"] = direction_variance_errors(
            result.posterior, problem.cov_eigenvalues, problem.cov_eigenvectors)
    return row


def warmup_breakdown(result, grads):
    """Where a run's gradients per chain went, up to b² < threshold.

    *init*: the shared mode search, Laplace mass, survey for other modes and gradient
    check (counted in full for each chain, as :func:`grads_to_accuracy` does); *steps*:
    the warmup's integrator steps; *curvature*: the rest of the warmup (Lanczos estimates,
    a dense switch, energy probes); *draws*: the sampling phase up to the crossing (None
    when it was not reached).
    """
    per_step = GRADS_PER_STEP[METHODS[result.attrs["method"]].integrator]
    warmup = float((result.n_grad_evals - result.sample_stats["n_steps"].sum(axis=1)).mean())
    steps = float(result.attrs["tune"] * per_step)
    init = float(result.attrs["init_grad_evals"])
    return {"init": init, "steps": steps, "curvature": warmup - steps,
            "draws": None if grads is None else grads - init - warmup}


def applicable(target_name, config, dim):
    """Whether ``config`` runs on the target, or the configuration it would duplicate."""
    if config == "rmd-tv" and target_name not in RMD_TV_TARGETS:
        return False, None
    if config == "rmd diag" and dim > AUTO_DENSE_MAX_DIM:
        return False, "rmd"  # "auto" already picks the diagonal mass here: same draws
    return True, None


def measure(problem, target_name, config, base_draws, seeds, log=print):
    """All seeds of one (target, configuration), with one 4× retry if none reached b².

    Draws are capped at :data:`MAX_POSTERIOR_BYTES` of stored draws; a configuration
    already at the cap is not retried.
    """
    options, factor = CONFIGS[config]
    max_draws = MAX_POSTERIOR_BYTES // (8 * CHAINS * problem.target.dim)
    factor = DRAWS_FACTOR_OVERRIDES.get((target_name, config), factor)
    draws = min(base_draws * factor, max_draws)
    rows = [run_once(problem, options, draws, seed) for seed in seeds]
    retried = False
    if all(r["grads"] is None for r in rows) and draws < max_draws:
        log(f"    {target_name} / {config}: no seed reached b² < {THRESHOLD} in {draws} "
            f"draws; retrying with {min(RETRY_FACTOR * draws, max_draws)}")
        draws = min(RETRY_FACTOR * draws, max_draws)
        rows = [run_once(problem, options, draws, seed) for seed in seeds]
        retried = True
    return {"target": target_name, "config": config, "options": options, "draws": draws,
            "draws_capped": draws == max_draws, "retried": retried, "rows": rows}


def summarize(run):
    """Per-(target, config) medians over seeds."""
    rows = run["rows"]
    out = {
        "median_grads": median_inf([r["grads"] for r in rows]),
        "reached": sum(r["grads"] is not None for r in rows),
        "seeds": len(rows),
        "draws": run["draws"],
        "draws_capped": run["draws_capped"],
        "retried": run["retried"],
    }
    for key in ("wall_s", "tune", "step_size", "friction"):
        out[key] = float(np.median([r[key] for r in rows]))
    out["timing_s"] = {k: float(np.median([r["timing_s"][k] for r in rows]))
                       for k in rows[0]["timing_s"]}
    out["breakdown"] = {k: median_inf([r["breakdown"][k] for r in rows])
                        for k in rows[0]["breakdown"]}
    # numba compiles the driver once per target function and process: the first run pays
    out["timing_s"]["compile"] = max(r["timing_s"]["compile"] for r in rows)
    out["divergent_draws"] = sum(r["divergent_draws"] for r in rows)
    out["warmup_unconverged"] = sum(not r["warmup_converged"] for r in rows)
    if "direction_variance" in rows[0]:
        dv = [r["direction_variance"] for r in rows]
        # the seed with the median worst error (the upper one for an even count)
        mid = dv[int(np.argsort([x["worst_error"] for x in dv])[len(dv) // 2])]
        out.update({k: mid[k] for k in ("worst_error", "worst_se", "worst_eigenvalue")})
        out["median_se"] = float(np.median([x["median_se"] for x in dv]))
        # seeds are independent: their mean has the root-sum-square error / n
        out["stiff_error"] = float(np.mean([x["stiff_error"] for x in dv]))
        out["stiff_se"] = float(np.sqrt(np.sum([x["stiff_se"] ** 2 for x in dv])) / len(dv))
        out["n_stiff"] = dv[0]["n_stiff"]
    return out


def ratios(summary):
    """Cost ratios to ``rmd`` per target (None where either median is missing).

    ``ulmc_best_over_rmd``: the cheapest ULMC accuracy; ``ulmc_same_accuracy_over_rmd``:
    ULMC at rmd's default ``target_accuracy`` (0.01); ``adaptive_over_rmd``.
    """
    out = {}
    for name, configs in summary.items():
        rmd = configs.get("rmd", {}).get("median_grads")
        ulmc = [(configs[c]["median_grads"], c) for c in ULMC_CONFIGS
                if configs.get(c, {}).get("median_grads") is not None]
        best, best_config = min(ulmc) if ulmc else (None, None)
        adaptive = configs.get("rmd adaptive", {}).get("median_grads")
        same = configs.get("ulmc 0.01", {}).get("median_grads")
        out[name] = {
            "ulmc_best": best,
            "ulmc_best_config": best_config,
            "ulmc_best_over_rmd": quotient(best, rmd),
            "ulmc_same_accuracy_over_rmd": quotient(same, rmd),
            "adaptive_over_rmd": quotient(adaptive, rmd),
        }
    return out


def _grads_cell(s):
    if s["median_grads"] is None:
        cell = f"not reached ({s['reached']}/{s['seeds']}, {s['draws']:,} draws"
        cell += " (cap)" if s["draws_capped"] else ""
        return cell + (", retried)" if s["retried"] else ")")
    cell = f"{s['median_grads']:,.0f}"
    if s["reached"] < s["seeds"]:
        cell += f" ({s['reached']}/{s['seeds']})"
    return cell + (" ↻" if s["retried"] else "")


def _trend(acc):
    """The ulmc best / rmd ratio on the standard Gaussians and its slope in log d."""
    points = [(int(name.split("_")[1]), r["ulmc_best_over_rmd"], r["ulmc_best_config"])
              for name, r in acc["ratios"].items()
              if name.startswith("gaussian_") and r["ulmc_best_over_rmd"] is not None]
    if len(points) < 2:
        return []
    dims = np.array([p[0] for p in points], dtype=float)
    slope = np.polyfit(np.log(dims), np.log([p[1] for p in points]), 1)[0]
    listed = ", ".join(f"{r:.2f} at d = {k:,} ({c})" for k, r, c in points)
    rmd = ", ".join(f"{acc['summary'][f'gaussian_{k}']['rmd']['median_grads']:,.0f}"
                    for k, _, _ in points)
    return [
        f"**Trend with d (standard Gaussians):** grads(ulmc best)/grads(rmd) = {listed}; "
        f"a fit ratio ∝ d^a gives a = {slope:+.2f} (rmd medians at these d: {rmd}). Both "
        "samplers size their step from the variance error along the stiffest direction, "
        "which does not depend on d, and b² averages over coordinates, so the ratio "
        "compares the cost per unit of mixing at a given stiff-direction accuracy, not "
        "the d-dependence of the Wasserstein bounds.",
    ]


def report_section(acc, number=3):
    """The Markdown section of ``report.md`` for the results of :func:`run`."""
    return (_grads_lines(acc, number) + _ratio_lines(acc) + [""] + _trend(acc)
            + _breakdown_lines(acc) + _tuning_lines(acc) + _direction_lines(acc))


def _breakdown_lines(acc):
    """Where the default configuration's gradients go, per target."""
    lines = [
        "",
        "### Where the gradients go (`rmd-lagged`, the defaults)",
        "",
        "Gradient evaluations per chain, medians over seeds (so the parts need not add up "
        "to the total): *init* = mode search, Laplace mass, survey for other modes and the "
        "16-evaluation gradient check, shared and counted in full for every chain; *warmup "
        "steps* = the warmup's integrator steps; *curvature* = the rest of the warmup "
        "(Lanczos estimates at each retune, a dense switch); *draws* = the sampling phase "
        "up to b² < 0.01.",
        "",
        "| target | total | init | warmup steps | curvature | draws |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, per in acc["summary"].items():
        s = per.get("rmd-lagged")
        if s is None or "breakdown" not in s:
            continue
        b = s["breakdown"]
        lines.append(f"| {name} | {_grads_cell(s)} | "
                     + " | ".join(fmt(b[k], ",.0f") for k in ("init", "steps", "curvature",
                                                              "draws")) + " |")
    return lines


def _columns(acc):
    """The configurations of the first table, with "ulmc best" after the ULMC ones."""
    columns = list(acc["configs"])
    ulmc = [k for k, c in enumerate(columns) if c in ULMC_CONFIGS]
    if ulmc:
        columns.insert(ulmc[-1] + 1, "ulmc best")
    return columns


def _grads_lines(acc, number):
    """The heading, the protocol and the table of median gradients to b²."""
    summary = acc["summary"]
    columns = _columns(acc)
    n_seeds = len(acc["seeds"])
    lines = [
        f"## {number}. Gradient evaluations to b² < {acc['threshold']}",
        "",
        f"The metric of the peer numbers: gradient evaluations **per chain** (shared mode "
        f"search and Laplace/curvature at the mode counted in full for every chain, warmup "
        f"and draws) until b² < {acc['threshold']} for both x and x² and stays there; b² "
        f"= mean over coordinates of the squared error of the pooled running estimate of "
        f"E[x_i] (E[x_i²]) over Var[x_i] (Var[x_i²]). {acc['chains']} chains, "
        f"{n_seeds} seeds (0–{n_seeds - 1}); the table gives the median over seeds, a seed "
        "that never reached the threshold counting as +∞ (its count in brackets). Draws "
        "per chain were set per target and configuration; ↻ marks a configuration that "
        f"no seed brought below the threshold, rerun once with {acc['retry_factor']}× the "
        "draws; draws are capped at 2 GiB of stored draws (cap), and a configuration at "
        "the cap is not rerun. Configurations: `rmd-lagged` = `lcsample.sample` defaults "
        f"(the lagged randomized midpoint, theory tuning, dense Laplace mass for d ≤ "
        f"{AUTO_DENSE_MAX_DIM}, diagonal above, automatic warmup length); `rmd` = the same "
        "with `method=\"rmd\"` (Shen–Lee, two gradients a step); `rmd adaptive` = `rmd` "
        "with `tuning=\"adaptive\"`; `rmd diag` = `rmd` with "
        f"`inverse_mass_matrix=\"diag\"` (identical to `rmd` for d > {AUTO_DENSE_MAX_DIM}, "
        "not rerun); `ulmc a` = `method=\"ulmc\", target_accuracy=a` (exponential Euler "
        "has O(h) bias, so the default accuracy 0.01 is not a fair baseline; `ulmc best` is "
        "the smallest median of the four, per target); `rmd-tv` = `method=\"rmd-tv\"` (16 "
        "corrector gradients per draw).",
        "",
        "| target | d | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for name in summary:
        cells = [_config_cell(acc, name, config) for config in columns]
        lines.append(f"| {name} | {acc['targets'][name]['dim']:,} | " + " | ".join(cells)
                     + " |")
    return lines


def _config_cell(acc, name, config):
    """One cell of the gradients table: a median, "= rmd" for a configuration not rerun."""
    if config == "ulmc best":
        r = acc["ratios"][name]
        return ("—" if r["ulmc_best"] is None else
                f"{r['ulmc_best']:,.0f} ({r['ulmc_best_config']})")
    if config in acc["summary"][name]:
        return _grads_cell(acc["summary"][name][config])
    if f"{name}/{config}" in acc["same_as"]:
        return f"= {acc['same_as'][f'{name}/{config}']}"
    return "—"


def _ratio_lines(acc):
    """The ratios to ``rmd``, beside the peer figures measured elsewhere."""
    lines = [
        "",
        "### Ratios, and peer samplers measured elsewhere",
        "",
        "NUTS and MCLMC columns are **not measured in this run**: they are figures "
        "measured earlier, outside these benchmarks (BlackJAX 1.7.1 / NumPyro 0.22.0 on "
        "JAX 0.10.2 CPU, a similar 2-core x86 machine, same metric, 4 chains, warmup "
        "included); `benchmarks/peers.py` measures them in the same run. MCLMC is tuned by "
        "`mclmc_find_L_and_step_size` with the `num_steps` in brackets; *smallest* is the "
        "smallest budget that still reached the threshold.",
        "",
        "Ratios are of medians; above 1 means more gradients than `rmd`. *stiff r − 1* "
        "(Gaussian targets): the variance error along the stiffest directions (last "
        "table) of `rmd` and of the best ULMC configuration: a ratio bought with a larger "
        "stiff-direction bias is not a like-for-like win, since b² does not see that bias. "
        "*ulmc 0.01 / rmd* compares at the same `target_accuracy`.",
        "",
        "| target | d | rmd | ulmc best / rmd | stiff r − 1: rmd / ulmc best "
        "| ulmc 0.01 / rmd | rmd adaptive / rmd | BlackJAX NUTS | NumPyro NUTS (diag) "
        "| MCLMC | MCLMC, smallest | NUTS (BlackJAX) / rmd |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, per in acc["summary"].items():
        rmd = per.get("rmd", {}).get("median_grads")
        r = acc["ratios"][name]
        stiff = [per.get(c, {}).get("stiff_error") for c in ("rmd", r["ulmc_best_config"])]
        stiff_cell = "—" if None in stiff else f"{stiff[0]:+.3f} / {stiff[1]:+.3f}"
        lines.append(f"| {name} | {acc['targets'][name]['dim']:,} | {fmt(rmd, ',.0f')} | "
                     f"{fmt(r['ulmc_best_over_rmd'], '.2f')} | {stiff_cell} | "
                     f"{fmt(r['ulmc_same_accuracy_over_rmd'], '.2f')} | "
                     f"{fmt(r['adaptive_over_rmd'], '.2f')} | "
                     + " | ".join(_peer_cells(acc["peer_numbers"].get(name), rmd)) + " |")
    return lines


def _peer_cells(peer, rmd):
    """The five peer-figure cells of a target (dashes where there are none)."""
    if not peer:
        return ["—"] * 5
    return [f"{peer['blackjax_nuts']:,}", f"{peer['numpyro_nuts']:,}",
            f"{peer['mclmc'][0]:,} ({peer['mclmc'][1]:,} steps)",
            f"{peer['mclmc_smallest'][0]:,} ({peer['mclmc_smallest'][1]:,} steps)",
            fmt(quotient(peer["blackjax_nuts"], rmd), ".2f")]


def _tuning_lines(acc):
    """Tuned step, friction and warmup length, and the wall time split, per configuration."""
    lines = [
        "",
        "### Tuned parameters and wall time",
        "",
        "Medians over seeds. *tune*: warmup steps per chain; *h*, *γ*: step size and "
        "friction after warmup (preconditioned units). Seconds per `sample()` call (4 "
        "chains on the available cores): *init* = mode search and curvature at the mode "
        "(before `timing`), *warmup*, *sampling* (all the draws, not only those up to the "
        "crossing), *compile* = the largest over seeds (numba compiles the driver once per "
        "target function and process, so only the first run of each target pays it). "
        "*unconv.*: seeds whose warmup reported itself unconverged "
        "(`attrs[\"warmup_converged\"]` False); *div.*: divergent draws, all seeds.",
        "",
        "| target | config | draws | tune | h | γ | wall s | init s | compile s | warmup s "
        "| sampling s | unconv. | div. |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, per in acc["summary"].items():
        for config, s in per.items():
            t = s["timing_s"]
            lines.append(
                f"| {name} | {config} | {s['draws']:,}{' (cap)' if s['draws_capped'] else ''} "
                f"| {s['tune']:.0f} | {s['step_size']:.3g} | {s['friction']:.3g} "
                f"| {s['wall_s']:.2f} | {t['initialization']:.2f} | {t['compile']:.2f} "
                f"| {t['warmup']:.2f} | {t['sampling']:.2f} | {s['warmup_unconverged']} "
                f"| {s['divergent_draws']} |")
    return lines


def _direction_lines(acc):
    """The variance errors along the eigen-directions of the Gaussian targets."""
    lines = [
        "",
        "### Variance along the eigen-directions of the true covariance",
        "",
        "b² averages over coordinates and can hide a biased stiff direction (an unadjusted "
        "step's bias is largest there: `docs/theory.md` §7–8). For the Gaussian targets "
        "(exact covariance Σ = QΛQᵀ), at "
        "the end of each run: r_k = variance of the pooled draws along q_k / λ_k, with a "
        f"batch-means standard error ({acc['batches_per_chain']} batches per chain). "
        f"*stiff* = mean of r_k − 1 over the directions with λ_k ≤ {acc['stiff_band']} "
        "λ_min (their number in brackets: all d for N(0, I)), averaged over seeds (± its "
        "standard error); *worst* = max_k |r_k − 1| "
        "(median over seeds, ± the standard error of that direction, λ of it). The worst of "
        "d noisy directions sits about √(2 ln d) standard errors above 0 with no bias at "
        "all (3.0 at d = 100, 3.7 at d = 1,000, 4.3 at d = 10,000): compare it with the "
        "*SE* column (median standard error of one direction).",
        "",
        "| target | config | stiff r − 1 (directions) | worst \\|r − 1\\| | λ of worst | SE |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, per in acc["summary"].items():
        for config, s in per.items():
            if "stiff_error" not in s:
                continue
            lines.append(
                f"| {name} | {config} | {s['stiff_error']:+.4f} ± {s['stiff_se']:.4f} "
                f"({s['n_stiff']:,}) | {s['worst_error']:.3f} ± {s['worst_se']:.3f} "
                f"| {s['worst_eigenvalue']:.3g} | {s['median_se']:.3f} |")
    return lines


def run(quick=False, targets=None, configs=None, log=print):
    """Run the benchmark; returns a JSON-ready dict.

    Parameters
    ----------
    quick : bool
        2 seeds instead of 5.
    targets, configs : list of str, optional
        Subsets of :data:`TARGETS` and :data:`CONFIGS` (default: all).
    log : callable
    """
    mode = "quick" if quick else "full"
    seeds = list(range(SEEDS[mode]))
    t_start = time.perf_counter()
    runs, summary, skipped, described = [], {}, {}, {}
    for name in targets or TARGETS:
        builder, description, base_draws = TARGETS[name]
        problem = builder()
        described[name] = {"description": description, "dim": problem.target.dim,
                           "base_draws": base_draws,
                           "known_covariance": problem.cov_eigenvalues is not None}
        summary[name] = {}
        for config in configs or CONFIGS:
            runs_here, same_as = applicable(name, config, problem.target.dim)
            if not runs_here:
                if same_as:
                    skipped[f"{name}/{config}"] = same_as
                continue
            t0 = time.perf_counter()
            result = measure(problem, name, config, base_draws, seeds, log)
            result["elapsed_s"] = time.perf_counter() - t0
            runs.append(result)
            s = summary[name][config] = summarize(result)
            med = "not reached" if s["median_grads"] is None else f"{s['median_grads']:9,.0f}"
            extra = (f", stiff-direction variance error {s['stiff_error']:+.3f} ± "
                     f"{s['stiff_se']:.3f}, worst {s['worst_error']:.3f}"
                     if "stiff_error" in s else "")
            log(f"  {name:29s} {config:13s} grads to b²: median {med} "
                f"({s['reached']}/{s['seeds']} seeds, {s['draws']} draws"
                f"{', retried' if s['retried'] else ''}); h={s['step_size']:.3g} "
                f"γ={s['friction']:.3g} tune={s['tune']:.0f}{extra}; "
                f"{result['elapsed_s']:.1f} s")
    return {
        "benchmark": "accuracy",
        "mode": mode,
        "threshold": THRESHOLD,
        "chains": CHAINS,
        "seeds": seeds,
        "retry_factor": RETRY_FACTOR,
        "batches_per_chain": BATCHES_PER_CHAIN,
        "stiff_band": STIFF_BAND,
        "targets": described,
        "configs": {name: CONFIGS[name][0] for name in configs or CONFIGS},
        "same_as": skipped,
        "runs": runs,
        "summary": summary,
        "ratios": ratios(summary),
        "peer_numbers": PEER_NUMBERS,
        "elapsed_s": time.perf_counter() - t_start,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds instead of 5")
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), help="subset of targets")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), help="subset of configs")
    parser.add_argument("--json", help="write the results to this file")
    opts = parser.parse_args(argv)
    out = run(quick=opts.quick, targets=opts.targets, configs=opts.configs)
    finish(out, opts.json)
    return out


if __name__ == "__main__":
    main()
