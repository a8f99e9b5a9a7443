"""Which fast tests catch deliberate bugs in the step kernels (a small mutation check).

For each mutation in :data:`MUTATIONS` the script copies ``lcsample/`` and ``tests/`` (with
``pyproject.toml`` and ``setup.cfg``, for pytest's configuration) to a fresh temporary
directory, applies the mutation's text substitutions there and runs the fast tests
(:data:`FAST_TESTS`) against that copy: ``PYTHONPATH`` points at the copy, so it is
imported instead of the installed package (checked before every run), and
``NUMBA_CACHE_DIR`` at an empty folder, so no kernel compiled from the unmutated code is
reused. An unmutated baseline runs first and must pass.

It prints a Markdown table of which test caught each mutation, that test's own time (its
"call" phase) and the wall time of the run, and exits non-zero if a mutation survives.

Run it from anywhere, with the package's environment active::

    python tests/mutations.py
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
#: The test files run against every mutant; change freely.
FAST_TESTS = ["tests/test_step.py", "tests/test_coefficients.py", "tests/test_golden.py",
              "tests/test_energy.py", "tests/test_low_rank.py", "tests/test_lagged.py"]
#: What is copied to the temporary directory (files that are absent are skipped).
COPIED = ["lcsample", "tests", "pyproject.toml", "setup.cfg"]
#: Seconds before a run is stopped; a mutant that hangs counts as caught.
TIMEOUT = 1800
STEP = "lcsample/kernels/step.py"
COEFFICIENTS = "lcsample/kernels/coefficients.py"
EXACT = "lcsample/kernels/exact.py"


class Mutation(NamedTuple):
    """A deliberate bug: ``(old, new)`` substitutions, each old text unique in ``path``."""

    name: str
    path: str
    edits: tuple
    description: str


MUTATIONS = [
    Mutation("transposed dense Cholesky factor", STEP,
             (("chol[i, k] * z[k, j]", "chol[k, i] * z[k, j]"),),
             "correlate multiplies the normals by Lᵀ instead of L."),
    Mutation("W2 and W3 swapped", STEP,
             (("w2[i] = s * (a1 + c.phi_b * i1 + a2)\n            w3[i] = s * (c.exp_b * i1 + i2)",
               "w3[i] = s * (a1 + c.phi_b * i1 + a2)\n"
               "            w2[i] = s * (c.exp_b * i1 + i2)"),),
             "propose writes the position's noise into the velocity's and back."),
    Mutation("alpha not applied to the midpoint noise", STEP,
             (("u[i] * c.psi_a * p[i] + s * a1\n",
               "u[i] * c.psi_a * p[i] + s * (a1 + c.phi_b * i1 + a2)\n"),),
             "x_mid gets the whole step's position noise W2 instead of W1 on [0, αh]."),
    Mutation("normals consumed in a different order (alpha after the normals)", STEP,
             (("    alpha = 1.0 if method == ULMC else rng.random()\n"
               "    if chol.shape[0] == 0:\n"
               "        standard_normals(rng, z)\n"
               "    else:\n"
               "        standard_normals(rng, raw)\n"
               "        correlate(chol, raw, z)\n",
               "    if chol.shape[0] == 0:\n"
               "        standard_normals(rng, z)\n"
               "    else:\n"
               "        standard_normals(rng, raw)\n"
               "        correlate(chol, raw, z)\n"
               "    alpha = 1.0 if method == ULMC else rng.random()\n"),),
             "draw_noise draws α after the block of normals, not before."),
    Mutation("normals consumed in a different order (columns 2 and 3 swapped)", STEP,
             (("i2 = c.l11_b * z[i, 2]", "i2 = c.l11_b * z[i, 3]"),
              ("a2 = c.l21_b * z[i, 2] + c.l22_b * z[i, 3]",
               "a2 = c.l21_b * z[i, 3] + c.l22_b * z[i, 2]")),
             "The (I, A) pair on [αh, h] reads its two normals in the other order."),
    Mutation("friction with the wrong sign in the velocity update", STEP,
             (("v_new[i] = c.exp_h * v[i] + c.h_exp_b", "v_new[i] = v[i] / c.exp_h + c.h_exp_b"),),
             "complete multiplies v by e^{+γh} instead of e^{-γh}."),
    Mutation("friction with the wrong sign in e^{-γh}", COEFFICIENTS,
             (("np.exp(-gamma * h),", "np.exp(gamma * h),"),),
             "step_coefficients returns exp_h = e^{+γh}."),
    Mutation("preconditioned gradient not applied at the midpoint (dense)", STEP,
             (("ug = u[i] * pm[i]", "ug = u[i] * g_mid[i]"),),
             "complete uses ∇log π(x_mid) instead of U·∇log π(x_mid) for a dense mass."),
    Mutation("kinetic energy with U in place of its inverse (diagonal)", STEP,
             (("total += v[i] * v[i] / u[i]", "total += v[i] * v[i] * u[i]"),),
             "kinetic_energy computes ½ vᵀUv instead of ½ vᵀU⁻¹v for a diagonal mass."),
    Mutation("kinetic energy with the transposed dense factor", STEP,
             (("acc -= chol[i, k] * z[k]", "acc -= chol[k, i] * z[k]"),),
             "kinetic_energy solves with Lᵀ instead of L for a dense mass."),
    Mutation("low-rank root with U's coefficients", STEP,
             (("            t *= factor[d, m]\n", "            t *= (1.0 + factor[d, m]) ** 2 - 1.0\n"),),
             "the low-rank noise root uses Λ = (1 + c)² − 1 where it needs c."),
    Mutation("low-rank product without its last scaling", STEP,
             (("    for i in range(d):\n        out[i] *= factor[i, 0]\n", ""),),
             "U·g for a low-rank mass is R(I + VΛVᵀ)R·g without the last R."),
    Mutation("low-rank kinetic energy with U in place of its inverse", STEP,
             (("total += (1.0 / (1.0 + factor[d, m]) ** 2 - 1.0) * t * t",
               "total += ((1.0 + factor[d, m]) ** 2 - 1.0) * t * t"),),
             "kinetic_energy uses Λ where U⁻¹ needs (1 + c)⁻² − 1 for a low-rank mass."),
    Mutation("lagged gradient kept unpreconditioned", STEP,
             (("            p[i] = p_mid[i]\n", "            pass\n"),),
             "accept_lagged leaves U·g of the old midpoint for a dense or low-rank mass."),
    Mutation("midpoint velocity without its friction decay", STEP,
             (("v_at[i] = exp_a * v[i]", "v_at[i] = v[i]"),),
             "the lagged draw's energy takes v + u·φ(a)·p + σI1, without e^{-γa} on v."),
    Mutation("lagged exact law predicting from x", EXACT,
             (("            mid[2] = -u * m * c.psi_a", "            mid[0] -= u * m * c.psi_a"),),
             "the exact law of the lagged chain predicts its midpoint from the gradient at x."),
]


class Outcome(NamedTuple):
    """What one pytest run found: the first failing test (None if all passed) and times."""

    failed: str | None
    test_time: float | None
    run_time: float


def mutate(root, mutation):
    """Apply ``mutation``'s substitutions to its file under ``root``.

    Parameters
    ----------
    root : Path
        A copy of the repository (or the repository itself, to check the snippets).
    mutation : Mutation

    Returns
    -------
    str
        The mutated source (also written, unless ``root`` is the repository).

    Raises
    ------
    ValueError
        If an old snippet does not occur exactly once.
    """
    path = root / mutation.path
    text = path.read_text()
    for old, new in mutation.edits:
        if text.count(old) != 1:
            raise ValueError(f"{mutation.name!r}: {old!r} occurs {text.count(old)} times "
                             f"in {mutation.path}, not once")
        text = text.replace(old, new)
    if root != REPO:
        path.write_text(text)
    return text


def parse(output, returncode, run_time):
    """Read the first failing test and its "call" time from pytest's output.

    Parameters
    ----------
    output : str
        pytest's stdout and stderr (``-ra`` summary and ``--durations`` table).
    returncode : int
    run_time : float

    Returns
    -------
    Outcome
    """
    if returncode == 0:
        return Outcome(None, None, run_time)
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    if returncode not in (1, 2) or found is None:
        raise RuntimeError(f"pytest ended with code {returncode} and no failing test:\n{output}")
    failed = found.group(1)
    call = re.search(rf"^([\d.]+)s call\s+{re.escape(failed)}$", output, re.MULTILINE)
    return Outcome(failed, float(call.group(1)) if call else None, run_time)


def run_tests(mutation=None):
    """Run :data:`FAST_TESTS` on a fresh copy of the repository, mutated if asked.

    Parameters
    ----------
    mutation : Mutation, optional
        None for the unmutated baseline.

    Returns
    -------
    Outcome
    """
    with tempfile.TemporaryDirectory(prefix="lcsample-mutant-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        for name in COPIED:
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, root / name,
                                ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
            elif (REPO / name).exists():
                shutil.copy2(REPO / name, root / name)
        if mutation is not None:
            mutate(root, mutation)
        env = dict(os.environ, PYTHONPATH=str(root), NUMBA_CACHE_DIR=str(Path(tmp) / "numba"))
        probe = "import lcsample; print(lcsample.__file__)"
        imported = subprocess.run([sys.executable, "-c", probe],
                                  cwd=root, env=env, capture_output=True, text=True, check=True)
        if not Path(imported.stdout.strip()).is_relative_to(root):
            raise RuntimeError(f"the copy is not the package imported: {imported.stdout}")
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                   "--durations=0", "--durations-min=0", *FAST_TESTS]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                                  timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return Outcome(f"(timed out after {TIMEOUT} s)", None, time.perf_counter() - start)
        return parse(done.stdout + done.stderr, done.returncode, time.perf_counter() - start)


def table(results):
    """The Markdown table of ``(mutation, outcome)`` pairs.

    Parameters
    ----------
    results : list of (Mutation, Outcome)

    Returns
    -------
    str
    """
    lines = ["| mutation | file | caught by (test id) | test time (s) | run time (s) |",
             "|---|---|---|---:|---:|"]
    for mutation, out in results:
        caught = f"`{out.failed}`" if out.failed else "**SURVIVED**"
        test_time = "–" if out.test_time is None else f"{out.test_time:.2f}"
        lines.append(f"| {mutation.name} | `{mutation.path}` | {caught} | {test_time} "
                     f"| {out.run_time:.1f} |")
    return "\n".join(lines)


def main():
    """Check the snippets, run the baseline and every mutation, print the table.

    Returns
    -------
    int
        0 if every mutation was caught, 1 otherwise.
    """
    start = time.perf_counter()
    for mutation in MUTATIONS:
        mutate(REPO, mutation)  # fail before any run if a snippet is not unique
    baseline = run_tests()
    if baseline.failed:
        sys.exit(f"the unmutated baseline fails at {baseline.failed}; fix that first")
    print(f"baseline passed in {baseline.run_time:.1f} s", file=sys.stderr)
    results = []
    for mutation in MUTATIONS:
        results.append((mutation, run_tests(mutation)))
        print(f"{mutation.name}: {results[-1][1].failed or 'SURVIVED'}", file=sys.stderr)
    print(table(results))
    survivors = [m.name for m, out in results if out.failed is None]
    print(f"\nbaseline {baseline.run_time:.1f} s; total {time.perf_counter() - start:.1f} s; "
          f"{len(results) - len(survivors)}/{len(results)} caught")
    for name in survivors:
        print(f"SURVIVED: {name}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
