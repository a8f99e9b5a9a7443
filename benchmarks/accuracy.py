"""Gradient evaluations to reach b² < 0.01, the measure of ``../shared/reference/peer-numbers.md``.

b²_x(n) = mean_i (Ê_n[x_i] - E[x_i])² / Var[x_i] and b²_x²(n) likewise for x_i², with
Var[x_i²] ≈ 2σ⁴ + 4μ²σ² (exact for a Gaussian), where Ê_n pools the first n draws of all
chains. The cost of a run is the gradient evaluations per chain (shared initialization,
warmup and draws) at the first n from which both stay below the threshold.

    python benchmarks/accuracy.py [--quick] [--out benchmarks/results/accuracy.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import lcsample  # noqa: E402

THRESHOLD = 0.01
_CHUNK = 64  # draws per chunk of the running sums (bounds memory at d = 10,000)


def b2_curves(posterior, mean, sd):
    """b²_x and b²_x² of the pooled running estimates, shape (draws,) each.

    Parameters
    ----------
    posterior : ndarray, shape (chains, draws, d)
    mean, sd : ndarray, shape (d,)
        True posterior means and standard deviations.
    """
    chains, n, _ = posterior.shape
    var_x, second = sd**2, mean**2 + sd**2
    var_x2 = 2 * sd**4 + 4 * mean**2 * sd**2
    s1, s2 = np.zeros_like(mean), np.zeros_like(mean)
    b_x, b_x2 = np.empty(n), np.empty(n)
    for start in range(0, n, _CHUNK):
        block = posterior[:, start:start + _CHUNK]
        c1 = s1 + np.cumsum(block.sum(axis=0), axis=0)
        c2 = s2 + np.cumsum((block**2).sum(axis=0), axis=0)
        count = chains * np.arange(start + 1, start + block.shape[1] + 1)[:, None]
        b_x[start:start + block.shape[1]] = (((c1 / count) - mean) ** 2 / var_x).mean(axis=1)
        b_x2[start:start + block.shape[1]] = (((c2 / count) - second) ** 2 / var_x2).mean(axis=1)
        s1, s2 = c1[-1], c2[-1]
    return b_x, b_x2


def grads_to_b2(result, mean, sd, threshold=THRESHOLD):
    """Gradient evaluations per chain until b² < threshold for x and x², and stays there.

    Per chain: the shared initialization (counted in full for every chain, as if each
    chain had done it alone), the chain's warmup, and its draws up to the crossing (mean
    over chains). Returns None when the run ends above the threshold.
    """
    b_x, b_x2 = b2_curves(result.posterior, mean, sd)
    above = np.flatnonzero((b_x >= threshold) | (b_x2 >= threshold) | ~np.isfinite(b_x + b_x2))
    n = 0 if above.size == 0 else above[-1] + 1
    if n >= b_x.shape[0]:
        return None
    per_draw = result.sample_stats["n_steps"]
    sampling_total = per_draw.sum(axis=1)
    warmup = result.n_grad_evals - sampling_total
    used = warmup + per_draw[:, : n + 1].sum(axis=1)
    return float(result.attrs["init_grad_evals"] + used.mean())


def german_credit():
    X, y = lcsample.datasets.load_german_credit()
    ref = json.loads((HERE.parent / "tests" / "data" / "german_credit_reference.json").read_text())
    return lcsample.targets.LogisticRegression(X, y), np.array(ref["mean"]), np.array(ref["sd"])


def rotated_gaussian(d=100, kappa=1e3):
    from scipy.stats import ortho_group

    q = ortho_group.rvs(d, random_state=0)
    cov = (q * np.logspace(0, np.log10(kappa), d)) @ q.T
    cov = 0.5 * (cov + cov.T)
    return lcsample.targets.Gaussian(np.zeros(d), cov=cov), np.zeros(d), np.sqrt(np.diag(cov))


def linear_regression(d=50, n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.2, 2.0, d)
    y = X @ rng.standard_normal(d) + rng.standard_normal(n)
    t = lcsample.targets.LinearRegression(X, y)
    return t, t.mean, np.sqrt(np.diag(t.cov))


def standard_gaussian(d):
    return lcsample.targets.Gaussian(np.zeros(d), cov=np.ones(d)), np.zeros(d), np.ones(d)


TARGETS = {
    "german_credit": german_credit,
    "rotated_gaussian_100": rotated_gaussian,
    "linear_regression_50": linear_regression,
    **{f"gaussian_{d}": (lambda d=d: standard_gaussian(d)) for d in (10, 100, 1000, 10000)},
}

CONFIGS = {
    "rmd": {},
    "ulmc": {"method": "ulmc"},
    "rmd adaptive": {"tuning": "adaptive"},
    "rmd dense": {"inverse_mass_matrix": "dense"},
}


def measure(target_name, config, draws, seeds, **overrides):
    target, mean, sd = TARGETS[target_name]()
    kwargs = {**CONFIGS[config], **overrides}
    if kwargs.get("inverse_mass_matrix") == "dense" and target.dim > 1000:
        return None
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        result = lcsample.sample(target, draws=draws, seed=seed, progressbar=False,
                                 compute_convergence_checks=False, **kwargs)
        wall = time.perf_counter() - t0
        rows.append({"seed": seed, "grads": grads_to_b2(result, mean, sd), "wall_s": wall,
                     "compile_s": result.timing["compile"],
                     "step_size": float(result.attrs["step_size"][0]),
                     "friction": float(result.attrs["friction"][0])})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--targets", nargs="*", default=list(TARGETS))
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--tune", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    seeds = range(2) if args.quick else range(5)
    overrides = {} if args.tune is None else {"tune": args.tune}
    out = {}
    for name in args.targets:
        for config in args.configs:
            draws = 1000 if name != "gaussian_10000" else 400
            rows = measure(name, config, draws, seeds, **overrides)
            if rows is None:
                continue
            grads = [r["grads"] for r in rows]
            ok = [g for g in grads if g is not None]
            print(f"{name:22s} {config:14s} grads to b²<0.01: median "
                  f"{np.median(ok) if ok else float('nan'):8.0f}  (reached {len(ok)}/{len(grads)})  "
                  f"h={rows[0]['step_size']:.3g} γ={rows[0]['friction']:.3g} wall {np.median([r['wall_s'] for r in rows]):.2f}s",
                  flush=True)
            out[f"{name}/{config}"] = rows
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
