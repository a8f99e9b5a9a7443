"""Sample error against score evaluations for the diffusion predictor/corrector combinations.

Issue 4, "Performance": the paper's claim (Gupta, Cai & Chen, 2025, "Faster diffusion
sampling with randomized midpoints: sequential and parallel"; ``docs/theory.md`` §10) is
that the randomized-midpoint predictor with a Langevin corrector reaches a given accuracy
with fewer score evaluations (NFE) than the exponential integrator, the gap growing with
d. Those are upper bounds; this file measures.

Targets (:mod:`lcsample.diffusion.testbed`, exact scores: the compiled kernels for the
mixtures, the NumPy score for the Gaussian):

* ``two_modes(d)``, d = 2, 8, 80, 800: mode-weight TV (½ Σ|ŵ_k - w_k|, components
  assigned by ``mode_assign``) and sliced W2 against an exact sample set of p_{t_min};
* ``grid_mixture(d)``, d = 8, 80, 800: the same two metrics, 25 modes;
* ``ill_conditioned_gaussian(d, 100)``, d = 10, 100: the Gaussian W2 between the sample
  mean and covariance and the exact law p_{t_min}, and the largest relative variance error
  over the eigen-directions of the exact covariance (the worst |r_k - 1| of
  ``accuracy.direction_variance_errors``).

Each combination of :data:`COMBOS` (less a target's ``skip``) runs at step counts chosen
so that the NFE per sample climbs a geometric ladder from 10 to 320 (:data:`RUNGS`); the
NFE recorded is ``info["nfe_per_sample"]``. The floor of a metric and its sd are its mean
and spread between independent exact sample sets of the same size
(:func:`lcsample.metrics.noise_floor`); a run is within accuracy when every metric of the
target is below its threshold, at two levels (:data:`LEVELS`): "loose",
max(2 × floor, floor + 3 sd), and "tight", floor + 3 sd. A combination stops climbing
once two consecutive rungs are within the tight level.

The reverse run starts from N(0, I) at a target-dependent t_max (:func:`start_time`):
the smallest multiple of 0.25, at least 5, at which the start's own error is below
KL = 1e-4. A fixed t_max = 5 leaves the 25-mode grid at d = 800 with KL ≈ 2 between
p_{t_max} and N(0, I), and every sampler then misplaces about half the mode weight
(TV ≈ 0.47) whatever its NFE.

    python benchmarks/diffusion.py [--quick] [--targets NAME ...] [--combos NAME ...]
                                   [--json PATH]

writes ``benchmarks/results/diffusion.json`` (or PATH) and prints the report section;
``benchmarks/run.py`` puts that section into ``report.md``.
"""

import argparse
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
from accuracy import direction_variance_errors  # noqa: E402
from common import RESULTS, compact, machine_info, quotient, write_json  # noqa: E402

from lcsample.diffusion import (  # noqa: E402
    alpha,
    grid_mixture,
    ill_conditioned_gaussian,
    sample,
    two_modes,
)
from lcsample.metrics import gaussian_w2, mode_weights, noise_floor, sliced_w2  # noqa: E402

T_MIN = 1e-3
#: Largest KL(p_{t_max} ‖ N(0, I)) accepted at the start of the reverse run.
START_KL = 1e-4
#: Nominal NFE per sample of the ladder each combination climbs.
RUNGS = {"full": np.geomspace(10, 320, 11), "quick": np.geomspace(10, 320, 6)}
#: Noise-floor repeats (pairs of exact sample sets).
FLOOR_REPEATS = {"full": 20, "quick": 10}
#: Random directions of the sliced W2 (the same directions for every run).
N_PROJECTIONS = 200
#: Corrector schedule of every combination with a corrector: 2 Langevin steps after each
#: predictor step, the schedule of ``method="rm-uld"`` (the paper's Algorithm 3).
CORRECTOR_STEPS = 2
SEED = 1
#: Accuracy levels. "loose": every metric at most max(2 × floor, floor + 3 sd), the
#: issue's "within 2× the noise floor"; "tight": at most floor + 3 sd, where an exact
#: sampler's value lies with probability ≈ 99 %: indistinguishable from exact samples of
#: this size. The two coincide where the floor's sd is as large as its mean (mode TV of
#: two modes). Combinations climb until the tight level holds at two consecutive rungs.
LEVELS = ("loose", "tight")


@dataclass(frozen=True)
class Combo:
    """A predictor/corrector combination: the arguments of ``lcsample.diffusion.sample``."""

    predictor: str
    corrector: str | None = None
    corrector_steps: int = CORRECTOR_STEPS
    corrector_every: int = 1

    def options(self):
        """Keyword arguments for ``sample`` (all explicit: no method preset applies)."""
        return {"predictor": self.predictor, "corrector": self.corrector,
                "corrector_steps": self.corrector_steps,
                "corrector_every": self.corrector_every}


COMBOS = {
    "exp-euler": Combo("exp-euler"),
    "ddim": Combo("ddim"),
    "ddpm": Combo("ddpm"),
    "heun": Combo("heun"),
    "rm": Combo("rm"),
    "exp-euler+uld": Combo("exp-euler", "uld"),
    "exp-euler+uld-rm": Combo("exp-euler", "uld-rm"),
    "ddpm+uld": Combo("ddpm", "uld"),
    "rm+uld": Combo("rm", "uld"),
    "rm+uld-rm": Combo("rm", "uld-rm"),
    "rm+uld-rm/4": Combo("rm", "uld-rm", corrector_steps=1, corrector_every=4),
}
#: The summary compares the exponential integrator with the best RM + corrector.
BASELINE = "exp-euler"
RM_CORRECTED = ("rm+uld", "rm+uld-rm", "rm+uld-rm/4")
#: ``--quick``: the combinations the issue asks for, fewer still for d >= 100.
QUICK_COMBOS = ("exp-euler", "ddim", "ddpm", "heun", "rm", "exp-euler+uld", "rm+uld",
                "rm+uld-rm")
QUICK_HEAVY_COMBOS = ("exp-euler", "heun", "rm", "rm+uld")


@dataclass
class Problem:
    """A target with its metrics and their noise floors.

    Attributes
    ----------
    name, family : str
    dim, n : int
        Dimension and samples per run.
    score, score_args
        What ``sample`` calls.
    t_max : float
        Start of the reverse run (:func:`start_time`).
    start_kl : float
        Bound on KL(p_{t_max} ‖ N(0, I)) there.
    metrics : dict
        name -> ``f(x) -> float`` for samples x of shape (n, d).
    floors : dict
        name -> :class:`lcsample.metrics.NoiseFloor`.
    """

    name: str
    family: str
    dim: int
    n: int
    score: object
    score_args: tuple
    t_max: float
    start_kl: float
    metrics: dict
    floors: dict = field(default_factory=dict)

    def threshold(self, metric, level):
        """Threshold of ``metric`` at accuracy ``level`` (see :data:`LEVELS`)."""
        f = self.floors[metric]
        tight = f.mean + 3.0 * f.sd
        return tight if level == "tight" else max(2.0 * f.mean, tight)


def start_kl(mixture, t):
    """Upper bound on KL(p_t ‖ N(0, I)) for Gaussian-mixture data.

    By convexity of KL in its first argument, KL(Σ_k w_k N(α μ_k, C_k) ‖ N(0, I)) ≤
    Σ_k w_k KL(N(α μ_k, C_k) ‖ N(0, I)), with C_k = α² Σ_k + σ² I whose eigenvalues are
    c = 1 + α²(λ - 1) for the eigenvalues λ of Σ_k; each term is
    ½ [α² ‖μ_k‖² + Σ (c - 1 - log c)].

    Parameters
    ----------
    mixture : lcsample.diffusion.GaussianMixture
    t : float
        OU time.

    Returns
    -------
    float
    """
    a2 = float(alpha(t)) ** 2
    total = 0.0
    for k, w in enumerate(mixture.weights):
        if mixture.isotropic:
            lam = np.full(mixture.dim, mixture.scales[k] ** 2)
        else:
            lam = np.linalg.eigvalsh(mixture.covs[k])
        c = 1.0 + a2 * (lam - 1.0)
        total += w * 0.5 * (a2 * mixture.means[k] @ mixture.means[k]
                            + np.sum(c - 1.0 - np.log(c)))
    return float(total)


def start_time(mixture, tol=START_KL, minimum=5.0, step=0.25):
    """Smallest t_max ≥ ``minimum`` on a grid of ``step`` with :func:`start_kl` ≤ ``tol``."""
    t = minimum
    while start_kl(mixture, t) > tol:
        t += step
    return t


def _mixture_metrics(mixture, n, seed):
    """Mode-weight TV and sliced W2 against one exact sample set of p_{t_min}."""
    reference = mixture.sample_t(n, T_MIN, seed)

    def tv(x):
        return mode_weights(mixture.mode_assign(x), mixture.weights).tv

    def sw2(x):
        return sliced_w2(x, reference, N_PROJECTIONS, seed=0)

    return {"mode_tv": tv, "sliced_w2": sw2}


def _gaussian_metrics(gaussian):
    """Gaussian W2 to the exact p_{t_min} and the worst relative direction variance."""
    mean, cov = gaussian.marginal(T_MIN)
    eigenvalues, eigenvectors = np.linalg.eigh(cov)

    def w2(x):
        return gaussian_w2(x.mean(axis=0), np.cov(x, rowvar=False), mean, cov)

    def worst_variance(x):
        return direction_variance_errors(x[None], eigenvalues, eigenvectors)["worst_error"]

    return {"gaussian_w2": w2, "max_rel_var_error": worst_variance}


def _ill_conditioned(d):
    """The κ = 100 Gaussian of the benchmark."""
    return ill_conditioned_gaussian(d, 100)


def stiff_variance_error(gaussian, x):
    """Signed relative variance error r - 1 along the stiffest directions (reported only)."""
    eigenvalues, eigenvectors = np.linalg.eigh(gaussian.marginal(T_MIN)[1])
    return direction_variance_errors(x[None], eigenvalues, eigenvectors)["stiff_error"]


@dataclass(frozen=True)
class TargetSpec:
    """How a target is built and run.

    Attributes
    ----------
    family : str
    builder : callable
        ``builder(d)`` -> the testbed object.
    dim : int
    n, n_quick : int
        Samples per run in full and quick mode.
    skip : tuple of str
        Combinations of :data:`COMBOS` not run in full mode (run-time budget: where a score
        evaluation or a corrector step's noise costs 10-20 ms per 1000 samples).
    """

    family: str
    builder: object
    dim: int
    n: int
    n_quick: int
    skip: tuple = ()


_MID = ("ddpm+uld",)  # d = 80, 100
_HEAVY = ("ddpm+uld", "exp-euler+uld-rm")  # d = 800

TARGETS = {
    "two_modes_2": TargetSpec("two_modes", two_modes, 2, 4000, 1000),
    "two_modes_8": TargetSpec("two_modes", two_modes, 8, 4000, 1000),
    "two_modes_80": TargetSpec("two_modes", two_modes, 80, 2000, 1000, _MID),
    "two_modes_800": TargetSpec("two_modes", two_modes, 800, 500, 500, _HEAVY),
    "grid_8": TargetSpec("grid", grid_mixture, 8, 4000, 1000),
    "grid_80": TargetSpec("grid", grid_mixture, 80, 2000, 1000, _MID),
    "grid_800": TargetSpec("grid", grid_mixture, 800, 1000, 500, (*_HEAVY, "rm+uld-rm")),
    "ill_gaussian_10": TargetSpec("ill_gaussian", _ill_conditioned, 10, 4000, 1000),
    "ill_gaussian_100": TargetSpec("ill_gaussian", _ill_conditioned, 100, 2000, 1000, _HEAVY),
}


def combos_for(name, quick):
    """The combinations run on target ``name``."""
    spec = TARGETS[name]
    if quick:
        return QUICK_HEAVY_COMBOS if spec.dim >= 100 else QUICK_COMBOS
    return tuple(c for c in COMBOS if c not in spec.skip)


def build(name, quick=False):
    """The :class:`Problem` of target ``name`` with its noise floors measured.

    The mixtures use their compiled score kernel; the Gaussian uses the NumPy score, whose
    matrix products beat the compiled full-covariance kernel at d = 100.
    """
    spec = TARGETS[name]
    family, d = spec.family, spec.dim
    n = spec.n_quick if quick else spec.n
    target = spec.builder(d)
    if family == "ill_gaussian":
        score, score_args, metrics = target.score, (), _gaussian_metrics(target)
    else:
        score, score_args = target.score_kernel, target.score_args
        metrics = _mixture_metrics(target, n, seed=12345)
    t_max = start_time(target)
    problem = Problem(name, family, d, n, score, score_args, t_max, start_kl(target, t_max),
                      metrics)
    repeats = FLOOR_REPEATS["quick" if quick else "full"]
    for metric_name, f in metrics.items():
        if metric_name == "sliced_w2":
            pair = lambda x, y: sliced_w2(x, y, N_PROJECTIONS, seed=0)  # noqa: E731
        else:
            pair = lambda x, y, f=f: f(x)  # noqa: E731  (one-sample metric)
        problem.floors[metric_name] = noise_floor(
            pair, lambda k, s: target.sample_t(k, T_MIN, s), n, repeats, seed=7)
    problem.target = target
    return problem


def steps_for(problem, combo, nfe):
    """Step count whose NFE per sample is nearest ``nfe``, from two one-sample probes.

    NFE is affine in the number of corrector windows (a window = ``corrector_every``
    predictor steps), so runs of 4 and 8 windows give it exactly for any multiple (not 1
    and 2: the sampler refuses a one-step grid on which the predictor is unstable).
    """
    every = combo.corrector_every
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # short grids warn: only NFE counts
        probes = [sample(problem.score, dim=problem.dim, num_samples=1, steps=k * every,
                         t_max=problem.t_max, t_min=T_MIN, seed=0,
                         score_args=problem.score_args, **combo.options())[1]["nfe_per_sample"]
                  for k in (4, 8)]
    per_window = (probes[1] - probes[0]) / 4
    windows = max(1, round((nfe - (probes[0] - 4 * per_window)) / per_window))
    return windows * every


def run_one(problem, combo, steps):
    """One sampler run and its metrics; a run the sampler refused (a non-finite score or
    state, or a grid too short for the predictor) is kept, with the reason."""
    t0 = time.perf_counter()
    try:
        x, info = sample(problem.score, dim=problem.dim, num_samples=problem.n, steps=steps,
                         t_max=problem.t_max, t_min=T_MIN, seed=SEED,
                         score_args=problem.score_args, **combo.options())
    except ValueError as err:  # refused: the reason is the error's first line
        return {"steps": steps, "nfe": None, "error": str(err).splitlines()[0],
                "metrics": {m: float("inf") for m in problem.metrics},
                "wall_s": time.perf_counter() - t0}
    row = {"steps": steps, "nfe": float(info["nfe_per_sample"]), "rounds": info["rounds"],
           "sample_s": info["time"]}
    row["metrics"] = {m: float(f(x)) for m, f in problem.metrics.items()}
    if problem.family == "ill_gaussian":
        row["stiff_var_error"] = float(stiff_variance_error(problem.target, x))
    row["within"] = {level: all(v <= problem.threshold(m, level)
                                for m, v in row["metrics"].items()) for level in LEVELS}
    row["wall_s"] = time.perf_counter() - t0
    return row


def climb(problem, combo, rungs):
    """Run ``combo`` up the NFE ladder until two consecutive rungs are within "tight"."""
    rows, done = [], set()
    for nfe in rungs:
        steps = steps_for(problem, combo, nfe)
        if steps in done:
            continue
        done.add(steps)
        row = run_one(problem, combo, steps)
        row["rung"] = float(nfe)
        rows.append(row)
        if len(rows) >= 2 and all(_within(r, "tight") for r in rows[-2:]):
            break
    return rows


def _within(row, level):
    return row.get("within", {}).get(level, False)  # a non-finite run has no "within"


def nfe_to_accuracy(rows, level):
    """NFE of the first run within ``level`` whose next run (if any) is within too."""
    for i, row in enumerate(rows):
        if _within(row, level) and (i + 1 == len(rows) or _within(rows[i + 1], level)):
            return row["nfe"]
    return None


def run(quick=False, targets=None, combos=None, log=print):
    """Run the benchmark; returns a JSON-ready dict.

    Parameters
    ----------
    quick : bool
        Fewer samples, 6 rungs instead of 11, 10 floor repeats instead of 20, fewer
        combinations (:func:`combos_for`).
    targets, combos : list of str, optional
        Subsets of :data:`TARGETS` and :data:`COMBOS`.
    log : callable
    """
    mode = "quick" if quick else "full"
    rungs = RUNGS[mode]
    t_start = time.perf_counter()
    out = {"mode": mode, "t_min": T_MIN, "start_kl_tol": START_KL, "seed": SEED,
           "rungs": [float(r) for r in rungs], "n_projections": N_PROJECTIONS,
           "floor_repeats": FLOOR_REPEATS[mode], "corrector_steps": CORRECTOR_STEPS,
           "combos": {k: c.options() for k, c in COMBOS.items()}, "targets": {}}
    for name in targets or TARGETS:
        out["targets"][name] = measure_target(name, quick, combos, rungs, log)
    out["summary"] = summarize(out)
    out["elapsed_s"] = time.perf_counter() - t_start
    return out


def measure_target(name, quick, combos, rungs, log=print):
    """Noise floors of target ``name``, then every combination's climb up ``rungs``."""
    t0 = time.perf_counter()
    problem = build(name, quick)
    entry = {
        "family": problem.family, "dim": problem.dim, "n": problem.n,
        "t_max": problem.t_max, "start_kl": problem.start_kl,
        "floors": {m: {"mean": f.mean, "sd": f.sd, "values": f.values.tolist()}
                   for m, f in problem.floors.items()},
        "thresholds": {level: {m: problem.threshold(m, level) for m in problem.metrics}
                       for level in LEVELS},
        "floor_s": time.perf_counter() - t0, "runs": {},
        "nfe_to_accuracy": {level: {} for level in LEVELS},
    }
    floors = ", ".join(f"{m} {f.mean:.3g} ± {f.sd:.2g}" for m, f in problem.floors.items())
    log(f"  {name}: d = {problem.dim}, n = {problem.n}, t_max = {problem.t_max}, "
        f"floors {floors}")
    for combo_name in combos or combos_for(name, quick):
        rows = climb(problem, COMBOS[combo_name], rungs)
        entry["runs"][combo_name] = rows
        for level in LEVELS:
            entry["nfe_to_accuracy"][level][combo_name] = nfe_to_accuracy(rows, level)
        reached = "/".join(_nfe(entry["nfe_to_accuracy"][level][combo_name], rungs)
                           for level in LEVELS)
        trail = ", ".join(
            f"{r['nfe']:.0f}:" + "/".join(f"{v:.3g}" for v in r["metrics"].values())
            if r["nfe"] is not None else f"{r['steps']} steps: non-finite" for r in rows)
        log(f"    {combo_name:17s} NFE to loose/tight accuracy {reached}; {trail}; "
            f"{sum(r['wall_s'] for r in rows):.1f} s")
    entry["elapsed_s"] = time.perf_counter() - t0
    return entry


def summarize(out):
    """Per accuracy level: ratios NFE(exp-euler)/NFE(RM + corrector) and their trend in d."""
    return {level: _summarize(out, level) for level in LEVELS}


def _summarize(out, level):
    per_target = {}
    for name, entry in out["targets"].items():
        nfe = entry["nfe_to_accuracy"][level]
        corrected = {c: nfe[c] for c in RM_CORRECTED if nfe.get(c) is not None}
        best_rmc = min(corrected, key=corrected.get) if corrected else None
        reached = {c: v for c, v in nfe.items() if v is not None}
        best = min(reached, key=reached.get) if reached else None
        per_target[name] = {
            "baseline": nfe.get(BASELINE),
            "best_rm_corrected": best_rmc,
            "ratio_to_best_rm_corrected": quotient(nfe.get(BASELINE), corrected.get(best_rmc)),
            "ratio_to": {c: quotient(nfe.get(BASELINE), nfe.get(c))
                         for c in ("rm", *RM_CORRECTED) if c in nfe},
            "best": best, "best_nfe": reached.get(best),
        }
    trends = {}
    for family in ("two_modes", "grid", "ill_gaussian"):
        points = [(out["targets"][n]["dim"], per_target[n]["ratio_to_best_rm_corrected"])
                  for n in per_target if out["targets"][n]["family"] == family]
        finite = [(d, r) for d, r in points if r is not None]
        slope = (float(np.polyfit(np.log([d for d, _ in finite]),
                                  np.log([r for _, r in finite]), 1)[0])
                 if len(finite) >= 2 else None)
        trends[family] = {"points": points, "slope_log_ratio_per_log_d": slope}
    return {"per_target": per_target, "trends": trends}


# ---------------------------------------------------------------------------------------
# Markdown

_METRIC_LABELS = {"mode_tv": "mode TV", "sliced_w2": "SW2", "gaussian_w2": "W2",
                  "max_rel_var_error": "max rel. var. error"}


def _nfe(x, rungs):
    return f"{x:.0f}" if x is not None else f"> {max(rungs):.0f}"


def _cells(rows, columns):
    """Row cells for the ladder table: each run in the column nearest its NFE (in log)."""
    cells = [""] * len(columns)
    for row in rows:
        nfe = row["nfe"] if row["nfe"] is not None else row["rung"]
        k = int(np.argmin(np.abs(np.log(columns) - np.log(nfe))))
        text = "/".join(compact(v) for v in row["metrics"].values())
        if row["nfe"] is None:
            text = "non-finite"
        elif abs(row["nfe"] - columns[k]) > 0.2 * columns[k]:
            text += f" @{row['nfe']:.0f}"
        if _within(row, "tight"):
            text = f"**{text}**"
        elif _within(row, "loose"):
            text = f"*{text}*"
        cells[k] = text
    return cells


def _ratio_cell(diff, name, level):
    """exp-euler / best RM + corrector, a lower bound where exp-euler never got there."""
    s = diff["summary"][level]["per_target"][name]
    best = s["best_rm_corrected"]
    if best is None:
        return "—"
    if s["ratio_to_best_rm_corrected"] is not None:
        return f"{s['ratio_to_best_rm_corrected']:.2f}"
    if BASELINE not in diff["targets"][name]["runs"]:
        return "—"
    nfe = diff["targets"][name]["nfe_to_accuracy"][level][best]
    return f"> {max(diff['rungs']) / nfe:.2f}"


def report_section(diff, number=4):
    """The Markdown section of ``report.md`` for the results of :func:`run`."""
    lines = _intro_lines(diff, number) + _nfe_lines(diff)
    for level in LEVELS:
        lines += _claim_lines(diff, level)
    lines += _floor_lines(diff) + _ladder_lines(diff) + _stiff_lines(diff)
    total = sum(e["elapsed_s"] for e in diff["targets"].values())
    lines += ["", f"Run time: {total:.0f} s ({diff['mode']} mode), noise floors included.", ""]
    return lines


def _intro_lines(diff, number):
    """The heading and the protocol: runs, ladder, metrics, floors, accuracy levels."""
    return [
        f"## {number}. Diffusion samplers: error against score evaluations",
        "",
        "`lcsample.diffusion.sample` on the analytic targets of `lcsample.diffusion.testbed` "
        "(exact scores; compiled kernels for the mixtures, the NumPy score for the "
        "Gaussian). Every run starts from N(0, I) at t_max and stops at t_min = "
        f"{diff['t_min']:g} (no final denoising), log-SNR grid, seed {diff['seed']} for all. "
        f"Combinations with a corrector run {diff['corrector_steps']} Langevin steps after "
        "every predictor step at the library's stiffness-scaled step and friction (the "
        "schedule of `method=\"rm-uld\"`), except `rm+uld-rm/4`: 1 step after every 4th "
        "predictor step. Step counts are set so that the NFE per sample (score "
        "evaluations, exact, from `info`) climbs the ladder "
        f"{', '.join(f'{r:.0f}' for r in diff['rungs'])}; a combination stops climbing "
        "after two consecutive rungs at the tight accuracy.",
        "",
        "Metrics: *mode TV* = ½ Σ|ŵ_k − w_k|, components assigned by `mode_assign`; *SW2* "
        f"= sliced W2 ({diff['n_projections']} directions) against one exact sample set of "
        "p_{t_min}; *W2* = Gaussian W2 between the sample mean/covariance and the exact "
        "p_{t_min}; *max rel. var. error* = max_k |r_k − 1|, r_k the sample variance "
        "along the k-th eigen-direction of the exact covariance over its eigenvalue. "
        "*Floor*: a metric between independent exact sample sets of p_{t_min} of the same "
        f"size ({diff['floor_repeats']} pairs, `lcsample.metrics.noise_floor`). Accuracy, "
        "every metric of the target at most: **loose** max(2 × floor, floor + 3 sd) (the "
        "issue's \"within 2× the noise floor\"), **tight** floor + 3 sd (where an exact "
        "sampler's value lies ≈ 99 % of the time: indistinguishable from exact samples of "
        "this size; the two coincide where the floor's sd is as large as its mean). t_max "
        "is the smallest value ≥ 5 (step 0.25) at which a convexity bound gives "
        f"KL(p_{{t_max}} ‖ N(0, I)) ≤ {diff['start_kl_tol']:g}: with t_max = 5 the 25-mode "
        "grid at d = 800 starts at KL ≈ 2 and every sampler misplaces half the mode weight "
        "whatever its NFE.",
        "",
    ]


def _ran(diff, names):
    """The combinations, in :data:`COMBOS` order, that ran on any of the targets ``names``."""
    return [c for c in COMBOS if any(c in diff["targets"][n]["runs"] for n in names)]


def _nfe_lines(diff):
    """The table of NFE to each accuracy level, with the exp-euler / RM + corrector ratios."""
    rungs = diff["rungs"]
    combos = _ran(diff, diff["targets"])
    lines = [
        "### NFE per sample to accuracy",
        "",
        "Each cell: loose / tight; the NFE of the first run within that accuracy whose "
        f"next run is within it too; \"> {max(rungs):.0f}\": not reached on the ladder; bold: "
        "the cheapest combination on the target at that level. Ratio = NFE(exp-euler) / "
        "NFE(best RM + corrector, i.e. the cheapest of "
        f"{', '.join(RM_CORRECTED)}); above 1, RM + corrector needs fewer evaluations.",
        "",
        "| target | d | n | t_max | " + " | ".join(combos)
        + " | ratio, loose | ratio, tight |",
        "|---|---:|---:|---:|" + "---:|" * (len(combos) + 2),
    ]
    for name, entry in diff["targets"].items():
        cells = [_nfe_cell(diff, name, c) if c in entry["runs"] else "" for c in combos]
        ratios = [f"{_ratio_cell(diff, name, level)} "
                  f"({diff['summary'][level]['per_target'][name]['best_rm_corrected'] or '—'})"
                  for level in LEVELS]
        lines.append(f"| {name} | {entry['dim']} | {entry['n']:,} | {entry['t_max']:g} | "
                     + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lines.append("")
    return lines


def _nfe_cell(diff, name, combo):
    """loose / tight NFE of one combination, bold where it is the cheapest on the target."""
    parts = []
    for level in LEVELS:
        value = diff["targets"][name]["nfe_to_accuracy"][level][combo]
        text = _nfe(value, diff["rungs"])
        best = diff["summary"][level]["per_target"][name]["best_nfe"]
        parts.append(f"**{text}**" if value is not None and value == best else text)
    return " / ".join(parts)


def _floor_lines(diff):
    """The noise floor of each metric and its two thresholds."""
    lines = [
        "### Noise floors and thresholds",
        "",
        "| target | metric | floor (mean ± sd) | loose | tight |",
        "|---|---|---:|---:|---:|",
    ]
    for name, entry in diff["targets"].items():
        for m, f in entry["floors"].items():
            lines.append(f"| {name} | {_METRIC_LABELS[m]} | {compact(f['mean'])} ± "
                         f"{compact(f['sd'])} | "
                         + " | ".join(compact(entry["thresholds"][level][m])
                                      for level in LEVELS)
                         + " |")
    return lines


def _ladder_lines(diff):
    """Every run's metrics against NFE, one table per target."""
    rungs = diff["rungs"]
    lines = [
        "",
        "### Error against NFE",
        "",
        "Each cell: the target's metrics (in the order of the heading) of one run, in the "
        "column nearest its NFE; \"@N\": its NFE where that is more than 20 % off the "
        "column's; **bold**: within the tight accuracy, *italic*: within the loose one only; "
        "∞ / non-finite: the iterates blew up (the sampler refuses non-finite scores). "
        "Empty: not run (the combination had stopped climbing, or no step count lands near "
        "that NFE).",
    ]
    for name, entry in diff["targets"].items():
        labels = " / ".join(_METRIC_LABELS[m] for m in entry["floors"])
        thresholds = "; ".join(
            f"{level} " + " / ".join(compact(v) for v in entry["thresholds"][level].values())
            for level in LEVELS)
        lines += [
            "",
            f"**{name}** (d = {entry['dim']}, n = {entry['n']:,}; {labels}; thresholds "
            f"{thresholds})",
            "",
            "| combination | " + " | ".join(f"{r:.0f}" for r in rungs) + " |",
            "|---|" + "---|" * len(rungs),
        ]
        for c, rows in entry["runs"].items():
            lines.append(f"| {c} | " + " | ".join(_cells(rows, rungs)) + " |")
    return lines


def _stiff_lines(diff):
    """Signed stiff-direction variance errors of the Gaussian targets at tight accuracy."""
    gauss = [n for n, e in diff["targets"].items() if e["family"] == "ill_gaussian"]
    if not gauss:
        return []
    combos = _ran(diff, gauss)
    lines = [
        "",
        "Signed variance error r − 1 along the stiffest eigen-directions (λ within 10 % of "
        "the smallest) of the Gaussian targets, at each combination's NFE to the tight "
        "accuracy (or its last run):",
        "",
        "| target | " + " | ".join(combos) + " |",
        "|---|" + "---:|" * len(combos),
    ]
    for name in gauss:
        entry = diff["targets"][name]
        cells = []
        for c in combos:
            rows = [r for r in entry["runs"].get(c, []) if r["nfe"] is not None]
            nfe = entry["nfe_to_accuracy"]["tight"].get(c)
            pick = next((r for r in rows if r["nfe"] == nfe), rows[-1] if rows else None)
            cells.append("" if pick is None else
                         f"{pick['stiff_var_error']:+.3f} @{pick['nfe']:.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _claim_lines(diff, level):
    """Plain statements, at one accuracy level, of where RM + corrector wins and not."""
    summary = diff["summary"][level]
    wins, losses, beaten = [], [], []
    for name, s in summary["per_target"].items():
        nfe = diff["targets"][name]["nfe_to_accuracy"][level]
        best_rmc = s["best_rm_corrected"]
        if best_rmc is None:
            losses.append(f"{name} (no RM + corrector combination got there)")
            continue
        ratio = _ratio_cell(diff, name, level)
        if ratio.startswith(">") or float(ratio) > 1:
            wins.append(f"{name} ({ratio})")
        else:
            losses.append(f"{name} ({ratio})")
        cheaper = [c for c, v in nfe.items()
                   if c not in RM_CORRECTED and v is not None and v < nfe[best_rmc]]
        if cheaper:
            beaten.append(f"{name}: " + ", ".join(f"{c} {nfe[c]:.0f}" for c in cheaper)
                          + f" vs {best_rmc} {nfe[best_rmc]:.0f}")
    trend = []
    for family, t in summary["trends"].items():
        if not t["points"]:
            continue
        points = ", ".join(f"d = {d}: {compact(r)}" for d, r in t["points"])
        slope = t["slope_log_ratio_per_log_d"]
        trend.append(f"{family} {points}" + (f" (fit ∝ d^{slope:+.2f})" if slope is not None
                                             else ""))
    return [
        f"**{level.capitalize()} accuracy.** RM + corrector needs fewer evaluations than "
        f"exp-euler (ratio) on: {', '.join(wins) or 'no target'}. It does **not** on: "
        f"{', '.join(losses) or 'no target'}. Combinations without an RM corrector that get "
        "there with fewer evaluations than the best RM + corrector: "
        f"{'; '.join(beaten) or 'none'}. Ratio against d (— where one of the two never got "
        "there): " + "; ".join(trend) + ".",
        "",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples, 6 rungs, the core combinations")
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), help="subset of targets")
    parser.add_argument("--combos", nargs="+", choices=list(COMBOS), help="subset of combinations")
    parser.add_argument("--json", default=str(RESULTS / "diffusion.json"),
                        help="write the results here (default benchmarks/results/diffusion.json)")
    opts = parser.parse_args(argv)
    machine = machine_info()
    out = run(quick=opts.quick, targets=opts.targets, combos=opts.combos)
    out["machine"] = machine
    print(f"done in {out['elapsed_s']:.0f} s")
    write_json(opts.json, out)
    print("\n".join(report_section(out)))
    return out


if __name__ == "__main__":
    main()
