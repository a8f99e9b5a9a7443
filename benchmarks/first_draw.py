"""Time to the first draw in a fresh Python process.

Two cases, each run twice in new processes (``python -c ...``) that share one numba cache
directory, created empty for the case:

* ``builtin``: ``lcsample.targets.LogisticRegression`` on German credit (d = 25);
* ``user``: a target written in the script with ``@numba.njit`` and wrapped as
  ``lcsample.Target(fn, dim)``.

Run 1 starts with an empty cache (``NUMBA_CACHE_DIR``), as right after installation; run
2 finds there what run 1 compiled, which is the state of every later session. Each case
is measured twice over: with the kernels the install compiled ahead of time
(``lcsample._aot``; only the target's function is compiled on first use), and with that
build turned off (``LCSAMPLE_PRECOMPILED=0``), where run 1 also compiles the sampler's
loops just in time.

Each run calls ``lcsample.sample(..., draws=1, tune=0, chains=1, progressbar=False,
step_size=0.1, friction=1.0)`` and reports, from inside the process, the seconds spent
importing lcsample, building the target, in ``sample`` and ``result.timing``, and, from
outside, the wall time of the whole process (interpreter start-up included). As a
baseline measured in the same process, it then compiles a minimal driver that only calls
the target's function in a loop: ``timing["compile"]`` over that is what lcsample's
driver costs beyond the least any compiled sampler taking this function must compile.

Run ``python benchmarks/first_draw.py [--json PATH]``.
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
from common import REPO, write_json  # noqa: E402

_PRELUDE = """
import json, time
t_start = time.perf_counter()
import lcsample
t_import = time.perf_counter()
"""

_BUILTIN = """
X, y = lcsample.datasets.load_german_credit()
target = lcsample.targets.LogisticRegression(X, y)
"""

_USER = """
import numba
import numpy as np

@numba.njit
def logdensity_and_grad(x, grad_out, scales):
    # independent Student-t (nu = 5) coordinates with the given scales
    lp = 0.0
    for i in range(x.shape[0]):
        z = x[i] / scales[i]
        lp -= 3.0 * np.log1p(z * z / 5.0)
        grad_out[i] = -6.0 * z / (5.0 + z * z) / scales[i]
    return lp

target = lcsample.Target(logdensity_and_grad, 25, args=(np.linspace(0.5, 2.0, 25),))
"""

_SAMPLE = """
t_target = time.perf_counter()
result = lcsample.sample(target, draws=1, tune=0, chains=1, seed=0, progressbar=False,
                         step_size=0.1, friction=1.0)
t_sample = time.perf_counter()
assert result.posterior.shape == (1, 1, target.dim)

# Baseline, same process: compile a minimal driver that only calls the target's function
# (the least any compiled sampler taking this function must compile).
import numba as _nb
import numpy as _np

@_nb.njit(nogil=True, error_model="numpy")
def _minimal_driver(fn, args, x, g, n):
    total = 0.0
    for _ in range(n):
        total += fn(x, g, *args)
    return total

_x = _np.zeros(target.dim)
t0 = time.perf_counter()
_minimal_driver(target.logdensity_and_grad, target.args, _x, _np.empty(target.dim), 1)
minimal_driver_compile_s = time.perf_counter() - t0
print("RESULT" + json.dumps({
    "import_s": t_import - t_start,
    "target_s": t_target - t_import,
    "sample_s": t_sample - t_target,
    "to_first_draw_s": t_sample - t_start,
    "timing": {k: float(v) for k, v in result.timing.items()},
    "n_grad_evals": [int(n) for n in result.n_grad_evals],
    "dim": target.dim,
    "minimal_driver_compile_s": minimal_driver_compile_s,
    "precompiled": lcsample._aot.status(),
}))
"""

CASES = {
    "builtin": ("LogisticRegression on German credit (d=25)", _BUILTIN),
    "user": ("user @numba.njit target via lcsample.Target (d=25)", _USER),
}


def run_once(code, cache_dir, precompiled=True):
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env["LCSAMPLE_PRECOMPILED"] = "1" if precompiled else "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess failed:\n{proc.stderr}")
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT"))
    out = json.loads(line[len("RESULT"):])
    out["process_wall_s"] = wall
    return out


def interpreter_startup(repeats=3):
    """Wall time of ``python -c pass``: the part of process_wall_s that is not lcsample's."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def run(runs=2, log=print):
    results = []
    for (name, (label, body)), precompiled in itertools.product(CASES.items(), (True, False)):
        code = _PRELUDE + body + _SAMPLE
        with tempfile.TemporaryDirectory(prefix=f"lcsample-bench-{name}-") as cache_dir:
            for k in range(runs):
                row = run_once(code, cache_dir, precompiled)
                row.update(case=name, label=label, run=k + 1,
                           cache="empty" if k == 0 else "warm (kernels cached by run 1)")
                results.append(row)
                log(f"  {name:>8} run {k + 1} ({row['cache']}; ahead-of-time build "
                    f"{row['precompiled']}): "
                    f"process {row['process_wall_s']:.2f} s, "
                    f"import {row['import_s']:.2f} s, sample() {row['sample_s']:.2f} s "
                    f"(compile {row['timing']['compile']:.2f} s; minimal driver "
                    f"{row['minimal_driver_compile_s']:.2f} s), "
                    f"{row['n_grad_evals'][0]} gradient evaluations")
    return {
        "benchmark": "first_draw",
        "python_startup_s": interpreter_startup(),
        "code": {name: _PRELUDE + body + _SAMPLE for name, (_, body) in CASES.items()},
        "rows": results,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="fresh processes per case")
    parser.add_argument("--json", help="write the results to this file")
    opts = parser.parse_args(argv)
    out = run(runs=opts.runs)
    if opts.json:
        write_json(opts.json, out)
    return out


if __name__ == "__main__":
    main()
