"""Two versions of lcsample measured side by side: step overhead and time to the first draw.

For a refactor that must not cost speed, both versions run in the same script run on the
same machine, interleaved (old, new, old, new, ...), each in fresh Python processes that
import it from its own source tree (``git archive`` of a commit, or this checkout):

* **overhead per step** beyond the gradients: ``lcsample.sample`` with a given step,
  friction and unit mass, no warmup, one chain, on an isotropic Gaussian written by the
  user with ``@numba.njit``, for d = 10, 100, 1000; from its ``timing["sampling"]`` the
  time of a jitted loop making the same gradient calls is subtracted. A least-squares line
  over d gives ns per dimension and ns per step (minimum over repeats per point).
* **time to the first draw** for a new target: ``lcsample.sample(..., draws=1, tune=0)``
  on a user target, measured inside a fresh process (import, target and sample): with an
  empty numba cache, with the cache the first run wrote, and, with that cache, for a
  function whose argument types no run used before.

Only the public API is used, so any two versions can be compared. Run
``python benchmarks/compare_commits.py --old REV [--new REV] [--repeats N] [--json PATH]``
(``--new`` defaults to this checkout's working tree).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
from common import REPO  # noqa: E402

DIMS = (10, 100, 1000)
STEP_WORK = 4_000_000  # steps × dimensions per timed run

_TARGET = """
import time, json, numba, numpy as np
t0 = time.perf_counter()
import lcsample

@numba.njit
def logdensity_and_grad(x, grad_out):
    for i in range(x.shape[0]):
        grad_out[i] = -x[i]
    return -0.5 * np.sum(x * x)
"""

_OVERHEAD = _TARGET + """
@numba.njit
def gradient_only(fn, n, x, g):
    total = 0.0
    for _ in range(n):
        total += fn(x, g)
    return total

out = {}
for method, per_step in (("rmd", 2), ("ulmc", 1)):
    for d in DIMS:
        steps = max(2000, STEP_WORK // d)
        target = lcsample.Target(logdensity_and_grad, d)
        kw = dict(tune=0, chains=1, step_size=0.5, friction=2.0, inverse_mass_matrix=1.0,
                  initial_positions=np.zeros(d), progressbar=False, method=method,
                  compute_convergence_checks=False, seed=1)
        lcsample.sample(target, draws=10, **kw)  # compiled before timing
        res = lcsample.sample(target, draws=100, thin=steps // 100, **kw)
        x, g = np.zeros(d), np.zeros(d)
        gradient_only(logdensity_and_grad, 1, x, g)
        t = time.perf_counter()
        gradient_only(logdensity_and_grad, per_step * steps, x, g)
        grad_s = time.perf_counter() - t
        out[f"{method}/{d}"] = (res.timing["sampling"] - grad_s) / steps * 1e9
print("RESULT" + json.dumps(out))
"""

_SAMPLE_ONCE = """
t1 = time.perf_counter()
lcsample.sample(target, draws=1, tune=0, chains=1, step_size=0.1, friction=1.0,
                progressbar=False, compute_convergence_checks=False, seed=1)
t2 = time.perf_counter()
print("RESULT" + json.dumps({"total": t2 - t0, "sample": t2 - t1}))
"""
_FIRST_DRAW = _TARGET + "target = lcsample.Target(logdensity_and_grad, 25)\n" + _SAMPLE_ONCE
# A function whose argument types no earlier run used: whatever a version caches by
# argument types cannot help it, so this is a new target's first draw at its worst.
_FIRST_DRAW_NEW_TYPES = _TARGET + """
@numba.njit
def scaled(x, grad_out, scale, shift):
    for i in range(x.shape[0]):
        grad_out[i] = -(x[i] - shift) / scale
    return -0.5 * np.sum((x - shift) ** 2) / scale

target = lcsample.Target(scaled, 25, args=(2.0, np.int32(1)))
""" + _SAMPLE_ONCE


def source_tree(rev, workdir):
    """The package source of ``rev`` unpacked under ``workdir``, or this checkout (None)."""
    if rev is None:
        return REPO
    tree = Path(workdir) / rev
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "lcsample"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def run_in(tree, code, cache_dir):
    """Run ``code`` in a fresh interpreter importing lcsample from ``tree``; its RESULT."""
    env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_CACHE_DIR": str(cache_dir)}
    head = f"DIMS = {DIMS!r}\nSTEP_WORK = {STEP_WORK}\n"
    proc = subprocess.run([sys.executable, "-c", head + code], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, check=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def fit_overhead(per_point):
    """ns per dimension and per step from {"method/d": ns per step}, per method."""
    fits = {}
    for method in ("rmd", "ulmc"):
        d = np.array(DIMS, dtype=float)
        y = np.array([per_point[f"{method}/{k}"] for k in DIMS])
        slope, intercept = np.polyfit(d, y, 1)
        fits[method] = {"ns_per_dim": float(slope), "ns_per_step": float(intercept),
                        "points": {int(k): float(v) for k, v in zip(DIMS, y, strict=True)}}
    return fits


def measure(trees, repeats, workdir):
    """Interleaved measurements of every tree; the minimum over repeats of each figure."""
    best = {name: {} for name in trees}
    for r in range(repeats):
        for name, tree in trees.items():
            cache = Path(workdir) / f"cache-{name}-{r}"
            for phase, code in (("empty_cache", _FIRST_DRAW), ("warm_cache", _FIRST_DRAW),
                                ("warm_cache_new_argument_types", _FIRST_DRAW_NEW_TYPES)):
                t = run_in(tree, code, cache)
                for key, value in t.items():
                    k = f"first_draw_{phase}_{key}"
                    best[name][k] = min(best[name].get(k, np.inf), value)
            for key, value in run_in(tree, _OVERHEAD, cache).items():
                best[name][key] = min(best[name].get(key, np.inf), value)
    return {name: {"first_draw": {k: v for k, v in b.items() if k.startswith("first")},
                   "overhead": fit_overhead(b)} for name, b in best.items()}


def report(results):
    """A Markdown table of the measurements, old and new side by side."""
    names = list(results)
    lines = ["| figure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for method in ("rmd", "ulmc"):
        for key, unit in (("ns_per_dim", "ns/dim"), ("ns_per_step", "ns/step")):
            vals = [results[n]["overhead"][method][key] for n in names]
            lines.append(f"| {method} overhead, {unit} | " + " | ".join(f"{v:.1f}" for v in vals)
                         + " |")
    for key in results[names[0]]["first_draw"]:
        vals = [results[n]["first_draw"][key] for n in names]
        lines.append(f"| {key.replace('_', ' ')}, s | " + " | ".join(f"{v:.2f}" for v in vals)
                     + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", required=True, help="git revision to compare against")
    parser.add_argument("--new", default=None, help="git revision (default: this checkout)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        trees = {f"old ({args.old})": source_tree(args.old, workdir),
                 f"new ({args.new or 'working tree'})": source_tree(args.new, workdir)}
        results = measure(trees, args.repeats, workdir)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
