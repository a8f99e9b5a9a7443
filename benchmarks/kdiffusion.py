"""lcsample's diffusion sampler against k-diffusion's solvers, same model, equal NFE.

The question: does ``lcsample.diffusion.sample`` at its defaults reach the error of the
best k-diffusion solver (Karras, Aittala, Aila & Laine 2022; DPM-Solver++, Lu et al.
2022) with as few denoiser evaluations? k-diffusion is imported as a peer (its
``k_diffusion.sampling`` module, :func:`load_k_diffusion`), never copied.

Targets (:mod:`lcsample.diffusion.testbed`, exact denoisers): the 25-mode
``grid_mixture(d)`` and the stiff ``ill_conditioned_gaussian(d, condition=1e4)``
(covariance eigenvalues 1 down to 1e-4), d = 8 and 80, n = 4,000 samples each; and
``digits``, the trained denoiser of 8×8 digits (d = 64, ``benchmarks/digits_model.py``,
below).

One model per target: the exact denoiser in variance-exploding (k-diffusion) coordinates,
D(x̃, σ) = E[x₀ | x₀ + σε = x̃]. With OU time t = ½ log(1 + σ²) and α = e^{-t}, x = αx̃
is the OU state and D = (x + σ_t² s_t(x))/α, s_t the testbed's OU score. k-diffusion calls
it as a float64 ``model(x̃, sigma)``; lcsample calls the OU score s_t (the same kernel).
Both wrappers count rows: NFE = rows / n, counted, not assumed.

Same noise range and start for everyone: σ_max = sigma_ve(t_max) with t_max =
``diffusion.start_time`` (KL(p_{t_max} ‖ N(0, I)) ≤ 1e-4: σ_max = 2,322 for the grid at
d = 8, 8,103 at d = 80, 148 for the Gaussians), σ_min = 0.002 (EDM's), Karras ρ = 7.
z ~ N(0, I) drawn once per target; k-diffusion starts at x̃ = σ_max z, lcsample at the
same point in OU coordinates, x = α_{t_max} σ_max z = σ_{t_max} z (exact).

The end: k-diffusion's grid is ``get_sigmas_karras(N, σ_min, σ_max)`` plus a final 0; its
last step, σ_min → 0, returns the denoiser output D(x̃, σ_min) for every solver here (the
Euler step to σ = 0 is x̃ + (0 - σ)(x̃ - D)/σ = D; DPM++(2M) sets x̃ = D). lcsample runs
to t_min = t_from_sigma_ve(σ_min) and finishes with ``denoise=True``: the Tweedie step
(x + σ²s)/α, the same D(x̃, σ_min), 1 counted evaluation. So both sides approximate the
same map, "exact flow from σ_max to σ_min, then D", and are scored against it:

* *flow RMS* (noise-free): RMS over samples of ‖x − x_ref‖, x_ref that exact map applied
  to the same z. Gaussian: ``GaussianData.flow`` (exact) then D. Mixtures: k-diffusion's
  DPM-Solver++(2M) with 4,000 Karras steps (its distance to the 2,000-step solve, and the
  same reference solver's error on the Gaussians, whose exact map is known, are recorded).
  DPM++ SDE is a stochastic sampler: its flow RMS is shown but not a flow error. On the
  mixtures the flow RMS is dominated by the samples that end in another mode than x_ref
  (neighbouring modes lie 8·sqrt(d/2) apart, 16 at d = 8 and 51 at d = 80: one such
  sample in 4,000 alone gives a flow RMS of 0.25 and 0.8), so the tables of every run
  also give *mode flips*, the fraction of samples whose ``mode_assign`` differs from
  x_ref's.
* *sliced W2* (200 directions) against an exact sample set of the law of that map's
  output, D(X, σ_min) with X ~ p_{σ_min} exact; its noise floor (two exact sets,
  ``lcsample.metrics.noise_floor``). That law is the data law shrunk by the σ_min
  truncation (negligible for the unit-variance modes; for the κ = 1e4 Gaussian the
  stiffest variance λ = 1e-4 becomes λ²/(λ + σ_min²), 3.8 % less): the "truncation" row
  of each target gives the metrics of exact data samples against it.
* mixtures: *mode TV* ½ Σ|ŵ_k − w_k| (``mode_assign``), against the true weights;
  Gaussians: *max rel. var. error* max_k |r_k − 1| over the eigen-directions of the exact
  output covariance (``accuracy.direction_variance_errors``), and the signed error along
  the stiffest ones.

Samplers. k-diffusion 0.1.1 ``sample_euler``, ``sample_heun``, ``sample_dpm_2``,
``sample_lms`` (order 4), ``sample_dpmpp_2m``, ``sample_dpmpp_sde`` (η = 1, r = ½) on the
Karras grid; DPM++ SDE's noise comes from a seeded ``torch.randn`` per call (independent
increments) because k-diffusion's default Brownian-tree noise costs ~2 s per call at
4,000 × 80; at d = 8 the Brownian-tree run is added as ``dpmpp_sde_bt``. lcsample:
the default (``sample`` with only the grid arguments: predictor "dpm-pc", log-SNR grid),
``predictor="rm"`` (the paper's, the default before), ``predictor="ddim"``,
``predictor="heun"`` and ``method="rm-uld"``, each on its default
log-SNR grid and on the Karras grid (``grid="karras"``, the same σ_max, σ_min, ρ). For each
sampler and target NFE ∈ {10, 20, 40, 80} the step count is the largest whose counted NFE
is at most the target (Heun/DPM-2/DPM++ SDE: 2N − 1 for N k-diffusion sigmas; lcsample
"rm": 2·steps + 1 with the final denoise, "dpm-pc": steps + 1, its denoise free).
lcsample's default also runs at 160 and 320 to see where it gets. Warnings lcsample emits
are recorded; a grid it refuses (or a run that blows up) is a failed row with the message.

The trained model, ``digits``: ``digits_model.load_denoiser`` in float64 on the CPU for
both sides. k-diffusion calls the denoiser as is; lcsample calls
``lcsample.diffusion.score_from_denoiser(model)`` on torch tensors (its torch route,
``device="cpu"``, ``dtype=torch.float64``, x_init the same σ_{t_max} z as a tensor); both
through one row counter on the denoiser. EDM's σ_max = 80 and σ_min = 0.002
(``digits_model.SAMPLER``). n = 1,000 (not more: the data floor below needs n training
digits, and there are 1,500). Metrics: *flow RMS* against the same map solved finely,
k-diffusion's DPM-Solver++(2M) with 2,000 Karras steps (its RMS change from 1,000 steps
is recorded; the solver is second order: ~6e-5 there, ~1.5e-5 left at 2,000); *sliced W2*
against the 297 held-out digits (``digits_split``). Two floors of it, each over
``FLOOR_REPEATS`` sets, mean ± sd. The *model's floor*, n converged samples of the model
from other start noises (DPM-Solver++(2M), ``DIGITS_MODEL_FLOOR_STEPS`` steps) against
the held-out digits, is the analogue of the exact targets' floors (exact draws of the law
the samplers approximate) and gives the tie rule. The *data floor*, subsets of n
training digits (without replacement; they share digits, so its sd is below that of
independent sets) against the held-out digits, is shown: the gap between the two is the
model's, no sampler's (in the committed run not even the converged model is within the
data floor + 3 sd; the verdicts against it are recorded too,
``verdict_against_data_floor``). All 1,500 training
digits, the reference solve and the data floor recorded with the model (re-splits, 1,500
vs 297) are shown beside them. Mode TV and variance errors do not apply.

Check: lcsample ``ddim`` on the Karras grid and k-diffusion Euler at the same NFE run on
the same grid (DDIM = the Euler step in VE coordinates); their largest difference is
recorded (round-off).

    python benchmarks/kdiffusion.py [--quick] [--targets NAME ...] [--merge] [--json PATH]
                                    [--md PATH]

writes ``benchmarks/results/kdiffusion.json`` and ``kdiffusion.md`` (``--quick``: two
d = 8 targets, n = 1,000, NFE 10 and 20, to ``/tmp``, about 10 s; ``--quick --targets
digits``: n = 500, about 20 s). ``--merge`` puts the targets of the run into the existing
JSON (same mode), replacing those of the same name and keeping the others with the run
that made them (``merged_runs``), and writes the Markdown of them all:
``python benchmarks/kdiffusion.py --targets digits --merge`` updates the digits rows
alone. Needs torch and
k-diffusion (``pip install torch==2.13.0 torchsde`` then ``pip install --no-deps
k-diffusion==0.1.1.post1``; k-diffusion's own ``__init__`` needs image
packages this file does not: only ``k_diffusion.sampling`` is loaded).
"""

import argparse
import contextlib
import importlib
import importlib.metadata
import importlib.util
import json
import math
import sys
import time
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
from accuracy import direction_variance_errors  # noqa: E402
from common import REPO, RESULTS, compact, machine_info, write_json  # noqa: E402
from diffusion import N_PROJECTIONS, start_kl, start_time  # noqa: E402

from lcsample.diffusion import (  # noqa: E402
    grid_mixture,
    ill_conditioned_gaussian,
    sample,
    sigma2,
    sigma_ve,
    t_from_sigma_ve,
)
from lcsample.metrics import NoiseFloor, mode_weights, noise_floor, sliced_w2  # noqa: E402

SIGMA_MIN = 0.002
RHO = 7.0
NFES = {"full": (10, 20, 40, 80), "quick": (10, 20)}
#: Extra rungs of lcsample's default, to see where it reaches the k-diffusion error.
EXTRA_NFES = {"full": (160, 320), "quick": ()}
SAMPLES = {"full": 4000, "quick": 1000}
FLOOR_REPEATS = {"full": 10, "quick": 5}
#: Steps of the reference DPM-Solver++(2M) solve of the mixtures, and the coarser solve
#: its convergence is checked against.
REFERENCE_STEPS = {"full": (2000, 4000), "quick": (1000, 2000)}
#: Rows of the check of the reference solver on the Gaussian (its exact map is known).
REFERENCE_CHECK_ROWS = 1000
SEED = 1  # lcsample's per-sample streams, DPM++ SDE's noise
Z_SEED = 2024  # the start noise z
REFERENCE_SEED = 12345  # the exact sample set the sliced W2 compares against
FLOOR_SEED = 7
#: The trained digits model (benchmarks/digits_model.py): samples per run (at most the
#: 1,500 training digits, whose subsets of this size give the floor), and the step counts
#: of its reference DPM-Solver++(2M) solves (convergence: the RMS between the two).
DIGITS_SAMPLES = {"full": 1000, "quick": 500}
DIGITS_REFERENCE_STEPS = {"full": (1000, 2000), "quick": (250, 500)}
#: Steps of the DPM-Solver++(2M) solves of the model's floor (n samples from other start
#: noises; 100 and 200 steps give its sliced W2 within 1e-4).
DIGITS_MODEL_FLOOR_STEPS = 100

#: k-diffusion solvers: name -> (function in k_diffusion.sampling, stochastic).
KD_SOLVERS = {
    "euler": ("sample_euler", False),
    "heun": ("sample_heun", False),
    "dpm_2": ("sample_dpm_2", False),
    "lms": ("sample_lms", False),
    "dpmpp_2m": ("sample_dpmpp_2m", False),
    "dpmpp_sde": ("sample_dpmpp_sde", True),
    "dpmpp_sde_bt": ("sample_dpmpp_sde", True),  # k-diffusion's Brownian-tree noise, d = 8
}
#: lcsample settings: name -> keyword arguments of ``sample`` beyond the grid.
LC_SETTINGS = {
    "default": {},  # predictor "dpm-pc"
    "rm": {"predictor": "rm"},  # the paper's randomized midpoint (the default until 0.x)
    "ddim": {"predictor": "ddim"},
    "heun": {"predictor": "heun"},
    "rm-uld": {"method": "rm-uld"},
}
LC_GRIDS = ("logsnr", "karras")
DEFAULT = "lc:default"  # the row the goal is about: lcsample's default, log-SNR grid
STOCHASTIC_LC = "rm-uld"  # its corrector adds noise: not a flow approximation

TORCH_HINT = ("benchmarks/kdiffusion.py needs torch and k-diffusion, which the [bench] "
              "extra does not install: pip install torch==2.13.0 torchsde && "
              "pip install --no-deps k-diffusion==0.1.1.post1")


# ---------------------------------------------------------------------------------------
# Loading k-diffusion's solvers without its package __init__


def load_k_diffusion():
    """``k_diffusion.sampling``, imported without running ``k_diffusion/__init__.py``.

    The package ``__init__`` imports every submodule, among them image and training
    extras (scikit-image, torchvision, wandb...) that the solvers do not need. A bare
    package module with the installed ``__path__`` is registered instead, then
    ``k_diffusion.sampling`` is imported from it. ``sampling`` itself imports
    ``torchdiffeq`` (for ``log_likelihood`` only) and ``k_diffusion.utils``, which imports
    torchvision (for its image helpers only; the solvers use ``utils.append_dims``).
    Where those two are missing, a placeholder module stands in that raises ImportError
    when anything in it is used.

    Returns
    -------
    sampling : module
    stubbed : list of str
        The modules that placeholders stand in for.
    """
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise ImportError(TORCH_HINT) from err
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"], _STUBBED
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(TORCH_HINT)
    if "k_diffusion" not in sys.modules:
        package = types.ModuleType("k_diffusion")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = spec.origin
        sys.modules["k_diffusion"] = package
    for name in ("torchdiffeq", "torchvision", "torchvision.transforms",
                 "torchvision.transforms.functional"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = _placeholder(name)
            _STUBBED.append(name)
    return importlib.import_module("k_diffusion.sampling"), _STUBBED


_STUBBED = []


def _placeholder(name):
    """A module whose every public attribute raises ImportError when called."""
    module = types.ModuleType(name)
    module.__path__ = []

    def attribute(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)

        def missing(*args, **kwargs):
            raise ImportError(f"{name}.{attr}: {name} is not installed (a placeholder from "
                              "benchmarks/kdiffusion.py stands in for it)")
        return missing

    module.__getattr__ = attribute
    return module


@contextlib.contextmanager
def float64_default():
    """torch's default dtype float64 inside (k-diffusion builds its grids in it)."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


# ---------------------------------------------------------------------------------------
# Targets and the shared model


@dataclass(frozen=True)
class TargetSpec:
    family: str  # "grid", "stiff" or "digits"
    builder: object  # the testbed constructor (None: the trained digits model)
    dim: int


TARGETS = {
    "grid_8": TargetSpec("grid", grid_mixture, 8),
    "grid_80": TargetSpec("grid", grid_mixture, 80),
    "stiff_8": TargetSpec("stiff", lambda d: ill_conditioned_gaussian(d, condition=1e4), 8),
    "stiff_80": TargetSpec("stiff", lambda d: ill_conditioned_gaussian(d, condition=1e4), 80),
    "digits": TargetSpec("digits", None, 64),
}
QUICK_TARGETS = ("grid_8", "stiff_8")


class Model:
    """The exact model of a target: OU score (lcsample) and VE denoiser (k-diffusion).

    Both count the rows they are called with (``rows``), the NFE of a run being the rows
    of its calls over its samples. ``torch_route`` False: lcsample runs on NumPy.
    """

    torch_route = False

    def __init__(self, target):
        self.target = target
        self.rows = 0
        if hasattr(target, "flow"):  # Gaussian data: the NumPy score (matrix products)
            self._score = target.score
        else:
            kernel, args = target.score_kernel, target.score_args

            def compiled(x, t):
                out = np.empty_like(x)
                kernel(np.ascontiguousarray(x), np.ascontiguousarray(t), out, *args)
                return out
            self._score = compiled

    def score(self, x, t):
        """∇log p_t(x) in OU time: what lcsample calls (counted)."""
        self.rows += x.shape[0]
        return self._score(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))

    def denoise_ve(self, x_ve, sig):
        """D(x̃, σ) = E[x₀ | x₀ + σε = x̃] as NumPy, not counted."""
        t = t_from_sigma_ve(sig)
        a = np.exp(-t)[:, None]
        x = a * x_ve
        return (x + sigma2(t)[:, None] * self._score(x, t)) / a

    def torch_model(self):
        """k-diffusion's ``model(x, sigma)`` on float64 tensors (counted)."""
        import torch

        def model(x, sigma):
            self.rows += x.shape[0]
            xn = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float64)
            sn = np.broadcast_to(sigma.detach().cpu().numpy().astype(np.float64),
                                 (x.shape[0],))
            return torch.from_numpy(self.denoise_ve(xn, np.ascontiguousarray(sn)))
        return model


class DenoiserModel:
    """A trained torch denoiser D(x̃, σ), float64 on the CPU, for both sides (counted).

    k-diffusion gets the denoiser as is (behind the row counter); lcsample gets
    ``lcsample.diffusion.score_from_denoiser`` of the same counted denoiser and runs on
    torch tensors (``torch_route``: ``device="cpu"``, ``dtype=torch.float64``).
    """

    torch_route = True

    def __init__(self, denoiser):
        from lcsample.diffusion import score_from_denoiser

        self.denoiser = denoiser
        self.rows = 0

        def counted(x, sigma):
            self.rows += x.shape[0]
            return denoiser(x, sigma)
        self._counted = counted
        self.score = score_from_denoiser(counted)

    def torch_model(self):
        """k-diffusion's ``model(x, sigma)``: the denoiser itself (counted)."""
        return self._counted


@dataclass
class Problem:
    """A target with its noise range, start noise, references and metrics."""

    name: str
    family: str
    dim: int
    n: int
    target: object
    model: Model
    t_max: float
    sigma_max: float
    t_min: float
    z: np.ndarray
    reference_set: np.ndarray  # exact draws of the exact map's output law
    x_ref: np.ndarray = None  # the exact map applied to z
    ref_modes: np.ndarray = None  # mixtures: the component of each x_ref row
    metrics: dict = field(default_factory=dict)
    floors: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def exact_output(target, t_min, n, seed):
    """Exact draws of D(X, σ_min), X ~ p_{σ_min}: the output law of the exact map."""
    return target.denoise(target.sample_t(n, t_min, seed), t_min)


def build(name, mode, kd, log):
    """The :class:`Problem` of target ``name``: floors, references, metrics."""
    spec = TARGETS[name]
    if spec.family == "digits":
        return build_digits(name, mode, kd, log)
    target = spec.builder(spec.dim)
    n = SAMPLES[mode]
    t_max = start_time(target)
    t_min = float(t_from_sigma_ve(SIGMA_MIN))
    z = np.random.default_rng(Z_SEED).standard_normal((n, spec.dim))
    p = Problem(name, spec.family, spec.dim, n, target, Model(target), t_max,
                float(sigma_ve(t_max)), t_min, z, exact_output(target, t_min, n, REFERENCE_SEED))
    p.info = {"start_kl_bound": start_kl(target, t_max)}

    def sw2(x, y=None):
        return sliced_w2(x, p.reference_set if y is None else y, N_PROJECTIONS, seed=0)
    p.metrics["sliced_w2"] = sw2
    if spec.family == "grid":
        p.metrics["mode_tv"] = lambda x: mode_weights(target.mode_assign(x), target.weights).tv
    else:
        lam, u = np.linalg.eigh(target.cov)
        out_var = lam**2 / (lam + SIGMA_MIN**2)  # variance of D(X, σ_min) per direction
        p.info["stiff_truncation_shrink"] = float(out_var.min() / lam.min() - 1.0)

        def variance_errors(x):
            return direction_variance_errors(x[None], out_var, u)
        p.metrics["max_rel_var_error"] = lambda x: variance_errors(x)["worst_error"]
        p.stiff = lambda x: variance_errors(x)["stiff_error"]
    t0 = time.perf_counter()
    repeats = FLOOR_REPEATS[mode]
    for metric, f in p.metrics.items():
        pair = (lambda x, y: sw2(x, y)) if metric == "sliced_w2" else (lambda x, y, f=f: f(x))
        p.floors[metric] = noise_floor(pair, lambda k, s: exact_output(target, t_min, k, s),
                                       n, repeats, seed=FLOOR_SEED)
    data = target.sample(n, REFERENCE_SEED + 1)
    p.info["truncation"] = {m: float(f(data)) for m, f in p.metrics.items()}
    p.info["floor_s"] = time.perf_counter() - t0
    p.x_ref, p.info["reference"] = flow_reference(p, mode, kd, log)
    if spec.family == "grid":
        p.ref_modes = target.mode_assign(p.x_ref)
    return p


def build_digits(name, mode, kd, log):
    """The trained digits model: float64 on the CPU, σ_max = 80, sliced W2 against the
    held-out digits, its floor from subsets of the training digits of the same size."""
    import torch
    from digits_model import DEFAULT_WEIGHTS, SAMPLER, digits_split, load_denoiser

    spec = TARGETS[name]
    n = DIGITS_SAMPLES[mode]
    train, held_out = digits_split()
    if n > train.shape[0]:
        raise ValueError(f"the floor needs n ≤ {train.shape[0]} training digits, got n = {n}")
    if SAMPLER["sigma_min"] != SIGMA_MIN:
        raise AssertionError("digits_model.SAMPLER's σ_min is not this benchmark's")
    sigma_max = float(SAMPLER["sigma_max"])
    t_max, t_min = float(t_from_sigma_ve(sigma_max)), float(t_from_sigma_ve(SIGMA_MIN))
    z = np.random.default_rng(Z_SEED).standard_normal((n, spec.dim))
    model = DenoiserModel(load_denoiser(dtype=torch.float64, device="cpu"))
    p = Problem(name, spec.family, spec.dim, n, None, model, t_max, sigma_max, t_min, z,
                held_out)

    def sw2(x, y=None):
        return sliced_w2(x, held_out if y is None else y, N_PROJECTIONS, seed=0)
    p.metrics["sliced_w2"] = sw2
    t0 = time.perf_counter()
    repeats = FLOOR_REPEATS[mode]
    # the data floor: n training digits (a subset, without replacement) against the held-out
    rng = np.random.default_rng(FLOOR_SEED)
    data = np.array([sw2(train[rng.choice(train.shape[0], n, replace=False)])
                     for _ in range(repeats)])
    # the model's floor (the tie rule): n converged samples of the model from other start
    # noises against the held-out, the analogue of the exact targets' floors
    model_values = []
    for seq in np.random.SeedSequence(FLOOR_SEED).spawn(repeats):
        zf = np.random.default_rng(seq).standard_normal((n, spec.dim))
        model_values.append(sw2(_fine_solve(model, p, kd, DIGITS_MODEL_FLOOR_STEPS, zf)))
    model_values = np.array(model_values)
    p.floors["sliced_w2"] = NoiseFloor(float(model_values.mean()),
                                       float(model_values.std(ddof=1)), model_values)
    record = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())["evaluation"]
    p.info = {"model": str(DEFAULT_WEIGHTS.relative_to(REPO)),
              "train": int(train.shape[0]), "held_out": int(held_out.shape[0]),
              "model_floor_kind": f"{n:,} samples of the model from {repeats} other start "
                                  f"noises (k-diffusion dpmpp_2m, {DIGITS_MODEL_FLOOR_STEPS} "
                                  f"Karras steps) against the {held_out.shape[0]} held-out",
              "data_floor": {"sliced_w2": {"mean": float(data.mean()),
                                           "sd": float(data.std(ddof=1)), "values": data}},
              "data_floor_kind": f"{n:,} of the {train.shape[0]:,} training digits (subsets "
                                 f"without replacement) against the {held_out.shape[0]} "
                                 "held-out",
              "train_vs_held_out": sw2(train),
              "recorded_data_floor": {
                  **{k: record["floor_resplits_1500_vs_297"][k] for k in ("mean", "sd")},
                  "what": "random re-splits of all 1,797 digits, 1,500 vs 297, "
                          f"{record['sliced_w2_projections']:,} projections; "
                          "tests/data/digits_denoiser.json"},
              "floor_s": time.perf_counter() - t0}
    p.x_ref, p.info["reference"] = flow_reference(p, mode, kd, log)
    p.info["reference"]["sliced_w2"] = sw2(p.x_ref)
    log(f"  sliced W2 floors: the model's {p.floors['sliced_w2'].mean:.4f} ± "
        f"{p.floors['sliced_w2'].sd:.4f}, the data's {data.mean():.4f} ± "
        f"{data.std(ddof=1):.4f}; the reference solve {p.info['reference']['sliced_w2']:.4f}")
    return p


def flow_reference(p, mode, kd, log):
    """The exact map applied to z, and how it was computed.

    Gaussian data: ``flow`` from t_max to t_min, then D. Mixtures: DPM-Solver++(2M) on
    the Karras grid with the larger of ``REFERENCE_STEPS``, its RMS distance to the solve
    with the smaller one recorded; the same solves on a Gaussian of the same dimension
    give the reference solver's true error. The trained digits model: the same solver
    with ``DIGITS_REFERENCE_STEPS`` (no Gaussian check).
    """
    t0 = time.perf_counter()
    start = p.z * float(np.sqrt(sigma2(p.t_max)))  # OU coordinates: σ_{t_max} z
    if hasattr(p.target, "flow"):
        x = p.target.flow(start, p.t_max, p.t_min)
        ref = p.target.denoise(x, p.t_min)
        return ref, {"kind": "exact: GaussianData.flow then D", "s": time.perf_counter() - t0}
    digits = p.family == "digits"
    coarse_steps, fine_steps = (DIGITS_REFERENCE_STEPS if digits else REFERENCE_STEPS)[mode]
    solves = [_fine_solve(p.model, p, kd, k) for k in (coarse_steps, fine_steps)]
    change = rms(solves[1] - solves[0])
    if digits:
        info = {"kind": f"k-diffusion dpmpp_2m, {fine_steps} Karras steps",
                "rms_change_from_steps": {"steps": coarse_steps, "rms": change},
                "max_abs_change_from_steps": float(np.abs(solves[1] - solves[0]).max()),
                "s": time.perf_counter() - t0}
        log(f"  reference: dpmpp_2m {fine_steps} steps; RMS change from {coarse_steps}: "
            f"{change:.2e} ({info['s']:.0f} s)")
        return solves[1], info
    # the reference solver on Gaussian data of the same dimension, against the exact map
    gauss = ill_conditioned_gaussian(p.dim, condition=1e4)
    rows = min(p.n, REFERENCE_CHECK_ROWS)
    gp = Problem("check", "stiff", p.dim, rows, gauss, Model(gauss), p.t_max, p.sigma_max,
                 p.t_min, p.z[:rows], None)
    exact = gauss.denoise(gauss.flow(start[:rows], p.t_max, p.t_min), p.t_min)
    gauss_error = rms(_fine_solve(gp.model, gp, kd, fine_steps) - exact)
    info = {"kind": f"k-diffusion dpmpp_2m, {fine_steps} Karras steps",
            "rms_change_from_steps": {"steps": coarse_steps, "rms": change},
            "same_solver_error_on_stiff_gaussian": gauss_error,
            "s": time.perf_counter() - t0}
    log(f"  reference: dpmpp_2m {fine_steps} steps; RMS change from {coarse_steps}: "
        f"{change:.2e}; its error on the κ = 1e4 Gaussian: {gauss_error:.2e} "
        f"({info['s']:.0f} s)")
    return solves[1], info


def _fine_solve(model, p, kd, steps, z=None):
    import torch

    with float64_default():
        sigmas = kd.get_sigmas_karras(steps, SIGMA_MIN, p.sigma_max, rho=RHO)
        x = torch.from_numpy((p.z if z is None else z) * p.sigma_max)
        return kd.sample_dpmpp_2m(model.torch_model(), x, sigmas, disable=True).numpy()


def rms(diff):
    """RMS over rows of the row norms."""
    return float(np.sqrt(np.mean(np.sum(diff**2, axis=1))))


# ---------------------------------------------------------------------------------------
# Runs


def kd_run(p, kd, solver, steps, num=None):
    """k-diffusion ``solver`` with ``steps`` Karras sigmas (plus the final 0).

    Returns (x̃ as NumPy, NFE per sample counted).
    """
    import torch

    fname, _ = KD_SOLVERS[solver]
    num = p.n if num is None else num
    with float64_default():
        sigmas = kd.get_sigmas_karras(steps, SIGMA_MIN, p.sigma_max, rho=RHO)
        x = torch.from_numpy(p.z[:num] * p.sigma_max)
        kwargs = {}
        if solver == "dpmpp_sde":
            gen = torch.Generator().manual_seed(SEED)
            kwargs["noise_sampler"] = lambda s, s_next: torch.randn(
                x.shape, generator=gen, dtype=x.dtype)
        elif solver == "dpmpp_sde_bt":
            kwargs["noise_sampler"] = kd.BrownianTreeNoiseSampler(
                x, SIGMA_MIN, p.sigma_max, seed=SEED)
        p.model.rows = 0
        with warnings.catch_warnings():
            # torchsde's Brownian interval warns when a query's end is a rounding past the
            # tree's ends (σ_max, σ_min as float64 vs the tree's times): harmless
            warnings.filterwarnings("ignore", "Should have t", UserWarning)
            out = getattr(kd, fname)(p.model.torch_model(), x, sigmas, disable=True, **kwargs)
    return out.numpy(), p.model.rows / num


def lc_run(p, setting, grid, steps, num=None):
    """lcsample's ``sample`` for ``setting`` on ``grid`` with ``steps`` and the final D.

    Returns (samples, NFE per sample counted by the model, info, warnings).
    """
    num = p.n if num is None else num
    p.model.rows = 0
    x_init = p.z[:num] * np.sqrt(sigma2(p.t_max))
    backend = {}
    if p.model.torch_route:  # lcsample's torch route: float64 tensors on the CPU
        import torch

        x_init = torch.from_numpy(x_init)
        backend = {"device": "cpu", "dtype": torch.float64}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, info = sample(p.model.score, dim=p.dim, num_samples=num, steps=steps, grid=grid,
                         t_max=p.t_max, t_min=p.t_min, x_init=x_init, denoise=True, seed=SEED,
                         progressbar=False, **backend, **LC_SETTINGS[setting])
    if p.model.torch_route:
        x = x.numpy()
    messages = [f"{w.category.__name__}: {w.message}" for w in caught
                if issubclass(w.category, (RuntimeWarning, UserWarning))]
    counted = p.model.rows / num
    if counted != info["nfe_per_sample"]:
        raise AssertionError(f"lcsample counted {info['nfe_per_sample']} evaluations per "
                             f"sample, the model {counted}")
    return x, counted, info, messages


def nfe_line(nfe_of):
    """NFE per sample as (slope, offset) in the step count: fitted on two one-sample
    probes, checked on a third (it is affine for every sampler here)."""
    a, b, c = 40, 80, 120
    fa, fb = nfe_of(a), nfe_of(b)
    slope = (fb - fa) / (b - a)
    offset = fa - slope * a
    check = nfe_of(c)
    if abs(check - (offset + slope * c)) > 1e-9:
        raise AssertionError(f"NFE not affine in the steps: {fa}, {fb}, {check}")
    return slope, offset


def steps_for(line, target, low=1):
    """The largest step count whose NFE is at most ``target`` (None below ``low``)."""
    slope, offset = line
    steps = int(math.floor((target - offset) / slope + 1e-9))
    return steps if steps >= low else None


def _probe_lc(p, setting, grid):
    """NFE per sample of a one-sample lcsample run, refusals ignored (they do not count)."""
    def nfe_of(steps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return lc_run(p, setting, grid, steps, num=1)[1]
    return nfe_of


def _probe_kd(p, kd, solver):
    return lambda steps: kd_run(p, kd, solver, steps, num=1)[1]


def score_row(p, x, nfe):
    """Every metric of a run's samples (NumPy, in data coordinates)."""
    row = {"nfe": nfe, "metrics": {m: float(f(x)) for m, f in p.metrics.items()}}
    row["metrics"]["flow_rms"] = rms(x - p.x_ref)
    if p.family == "grid":
        row["metrics"]["mode_flips"] = float(np.mean(p.target.mode_assign(x) != p.ref_modes))
    if p.family == "stiff":
        row["stiff_var_error"] = float(p.stiff(x))
    return row


def run_target(p, kd, mode, log):
    """Every sampler at every NFE on one target; rows in run order."""
    rows = []
    solvers = [s for s in KD_SOLVERS if s != "dpmpp_sde_bt" or p.dim <= 8]
    for solver in solvers:
        line = nfe_line(_probe_kd(p, kd, solver))
        for target_nfe in NFES[mode]:
            row = {"side": "k-diffusion", "sampler": f"kd:{solver}", "grid": "karras",
                   "nfe_target": target_nfe, "steps": steps_for(line, target_nfe, low=2)}
            _measure(p, row, lambda n, solver=solver: _kd_finite(kd_run(p, kd, solver, n)),
                     (FloatingPointError, ValueError, RuntimeError), log)
            rows.append(row)
    for setting in LC_SETTINGS:
        for grid in LC_GRIDS:
            line = nfe_line(_probe_lc(p, setting, grid))
            ladder = NFES[mode] + (EXTRA_NFES[mode] if setting == "default"
                                   and grid == "logsnr" else ())
            for target_nfe in ladder:
                name = f"lc:{setting}" + ("" if grid == "logsnr" else "@karras")
                row = {"side": "lcsample", "sampler": name, "grid": grid,
                       "nfe_target": target_nfe, "steps": steps_for(line, target_nfe)}
                x = _measure(p, row, lambda n, s=setting, g=grid: _lc_result(lc_run(p, s, g, n)),
                             (ValueError,), log)  # a refused grid or non-finite iterates
                if name == "lc:ddim@karras" and "error" not in row:
                    row["same_grid_as_kd_euler"] = _euler_check(p, kd, x, row["steps"])
                rows.append(row)
    return rows


def _kd_finite(result):
    """A k-diffusion run's (x, nfe, warnings); non-finite samples are its failure."""
    x, nfe = result
    if not np.isfinite(x).all():
        raise FloatingPointError("non-finite samples")
    return x, nfe, None


def _lc_result(result):
    """An lcsample run's (x, nfe, the warnings it gave)."""
    x, nfe, _, messages = result
    return x, nfe, messages


def _measure(p, row, run, errors, log):
    """Run ``run(steps) -> (x, nfe, warnings or None)`` for ``row``; fill in its metrics
    (or the error, for ``errors``) and wall time, log it; returns x (None on failure)."""
    t0 = time.perf_counter()
    x = None
    if row["steps"] is None:
        row["error"] = "no step count within the NFE"
    else:
        try:
            x, nfe, messages = run(row["steps"])
            row.update(score_row(p, x, nfe))
            if messages is not None:
                row["warnings"] = messages
        except errors as err:  # lcsample's own refusals read as they are
            row["error"] = str(err) if row["side"] == "lcsample" else (
                f"{type(err).__name__}: {err}")
    row["wall_s"] = time.perf_counter() - t0
    _log_row(log, row)
    return x


def _euler_check(p, kd, x, steps):
    """Largest |difference| between lcsample DDIM and k-diffusion Euler on one grid.

    lcsample's ``steps`` intervals to σ_min and the final D are k-diffusion's
    ``steps + 1`` sigmas plus 0: the same grid; DDIM is the Euler step in VE coordinates.
    """
    y, _ = kd_run(p, kd, "euler", steps + 1)
    return {"max_abs_diff": float(np.abs(x - y).max()), "scale": float(np.abs(y).max())}


def _log_row(log, row):
    head = f"    {row['sampler']:18s} NFE≤{row['nfe_target']:<4d}"
    if "error" in row:
        log(f"{head} failed: {row['error'].splitlines()[0][:110]}")
        return
    metrics = " ".join(f"{k}={compact(v)}" for k, v in row["metrics"].items())
    warn = f" [{len(row['warnings'])} warning(s)]" if row.get("warnings") else ""
    log(f"{head} steps={row['steps']:<4d} nfe={row['nfe']:g} {metrics} "
        f"({row['wall_s']:.1f} s){warn}")


# ---------------------------------------------------------------------------------------
# Summary


#: Metrics per family, in table order; flow_rms first (noise-free).
METRICS = {"grid": ("flow_rms", "sliced_w2", "mode_tv"),
           "stiff": ("flow_rms", "sliced_w2", "max_rel_var_error"),
           "digits": ("flow_rms", "sliced_w2")}
#: Shown in the tables of every run, not in the headline.
DETAIL_METRICS = {"grid": (*METRICS["grid"], "mode_flips"), "stiff": METRICS["stiff"],
                  "digits": METRICS["digits"]}
LABELS = {"flow_rms": "flow RMS", "sliced_w2": "sliced W2", "mode_tv": "mode TV",
          "max_rel_var_error": "max rel. var. error",
          "mode_flips": "mode flips (fraction of samples in another mode than x_ref's)"}


def threshold(entry, metric, floors="floors"):
    """Where a sample metric is indistinguishable from exact samples: floor + 3 sd."""
    f = entry.get(floors, {}).get(metric)
    return None if f is None else f["mean"] + 3.0 * f["sd"]


def _value(entry, sampler, nfe_target, metric):
    for r in entry["runs"]:
        if r["sampler"] == sampler and r["nfe_target"] == nfe_target:
            return r["metrics"][metric] if "metrics" in r else math.inf
    return None


def summarize(entry, nfes):
    """Per metric and NFE: the best k-diffusion solver, lcsample's default and best."""
    out = {}
    kd_names = sorted({r["sampler"] for r in entry["runs"] if r["side"] == "k-diffusion"})
    lc_names = sorted({r["sampler"] for r in entry["runs"] if r["side"] == "lcsample"})
    for metric in METRICS[entry["family"]]:
        # a stochastic sampler (DPM++ SDE, the Langevin corrector of rm-uld) is no
        # approximation of the flow map: left out of the best flow RMS
        kd_pool, lc_pool = kd_names, lc_names
        if metric == "flow_rms":
            kd_pool = [s for s in kd_names if not KD_SOLVERS[s[3:]][1]]
            lc_pool = [s for s in lc_names if STOCHASTIC_LC not in s]
        per_nfe = {}
        for k in nfes:
            kd_vals = {s: _value(entry, s, k, metric) for s in kd_pool}
            kd_vals = {s: v for s, v in kd_vals.items() if v is not None}
            best_kd = min(kd_vals, key=kd_vals.get)
            lc_vals = {s: _value(entry, s, k, metric) for s in lc_pool}
            lc_vals = {s: v for s, v in lc_vals.items() if v is not None}
            best_lc = min(lc_vals, key=lc_vals.get)
            default = lc_vals[DEFAULT]
            per_nfe[k] = {"best_kd": best_kd, "best_kd_value": kd_vals[best_kd],
                          "default": default,
                          "ratio": default / kd_vals[best_kd] if kd_vals[best_kd] else None,
                          "best_lc": best_lc, "best_lc_value": lc_vals[best_lc],
                          "verdict": _verdict(entry, metric, default, kd_vals[best_kd]),
                          "default_nfe_to_match": _nfe_to_match(entry, metric,
                                                                kd_vals[best_kd])}
            if metric in entry.get("data_floor", {}):
                per_nfe[k]["verdict_against_data_floor"] = _verdict(
                    entry, metric, default, kd_vals[best_kd], floors="data_floor")
        out[metric] = {"per_nfe": per_nfe, "excluded_from_flow_best": sorted(
            set(kd_names + lc_names) - set(kd_pool + lc_pool)) if metric == "flow_rms" else []}
    return out


def _verdict(entry, metric, lc, kd, floors="floors"):
    tie = threshold(entry, metric, floors)
    if tie is not None and lc <= tie and kd <= tie:
        return "tie (both within floor + 3 sd)"
    return "lcsample" if lc <= kd else "k-diffusion"


def _nfe_to_match(entry, metric, value):
    """The smallest NFE on lcsample default's ladder reaching ``value`` (or the floor)."""
    tie = threshold(entry, metric)
    goal = max(value, tie) if tie is not None else value
    hits = sorted(r["nfe"] for r in entry["runs"]
                  if r["sampler"] == DEFAULT and "metrics" in r and r["metrics"][metric] <= goal)
    return hits[0] if hits else None


# ---------------------------------------------------------------------------------------
# Markdown


def markdown(out):
    nfes = out["nfes"]
    families = {e["family"] for e in out["targets"].values()}
    exact = [k for k, e in out["targets"].items() if e["family"] != "digits"]
    digits = "digits" in families
    exact_n = sorted({e["n"] for e in out["targets"].values() if e["family"] != "digits"})
    digits_n = sorted({e["n"] for e in out["targets"].values() if e["family"] == "digits"})
    sizes = " or ".join(f"{k:,}" for k in exact_n or digits_n) + " samples"
    if exact_n and digits_n:
        sizes += f" (digits: {', '.join(f'{k:,}' for k in digits_n)})"
    title = ("exact models" + (" and the trained digits model" if "digits" in families else "")
             if exact else "the trained digits model")
    lines = [
        f"# lcsample against k-diffusion: equal NFE, {title}",
        "",
        _run_line(out) + ".",
        "",
        "Protocol (details in the module docstring): "
        + ("one denoiser per target (exact ones but for digits); " if digits
           else "one exact denoiser per target; ")
        +
        "σ from σ_max (t_max of `diffusion.start_time`"
        + ("; digits: EDM's 80" if digits else "") + f") to σ_min = {SIGMA_MIN}, then the "
        "final denoiser step (k-diffusion's last step to σ = 0; lcsample's `denoise=True`, "
        f"1 counted evaluation); n = {sizes} from one fixed start noise z. "
        "Step counts: the largest whose counted NFE per sample is at most the column's. "
        "k-diffusion on the Karras ρ = 7 grid; lcsample on its default log-SNR grid, "
        "`@karras` on the same Karras grid. **flow RMS**: RMS of ‖x − x_ref‖ against the "
        "exact map (flow σ_max → σ_min, then D) applied to the same z (noise-free; "
        "the stochastic samplers, DPM++ SDE and rm-uld, are left out of the 'best' "
        "of it" + ("; digits: a fine solve of the model stands in for the exact map"
                   if digits else "") + "). "
        "**sliced W2** / **mode TV** / **max rel. var. error**: against the exact "
        "output law; floors from pairs of exact sample sets"
        + (" (digits: sliced W2 against the held-out digits, the floor from as many "
           "training digits)" if digits else "") + ".",
        "",
        "## Headline: lcsample's default against the best k-diffusion solver",
        "",
        "Per target, metric and NFE: lcsample's default (`sample` with only the grid "
        "arguments), the best k-diffusion solver at that NFE, the ratio default / best "
        "(below 1: lcsample better), the best lcsample setting, the verdict (lower wins; "
        "*tie* where both are within floor + 3 sd) and the smallest NFE on the default's "
        f"ladder ({', '.join(str(k) for k in out['default_ladder'])}) at which it reaches "
        "the best k-diffusion value (or floor + 3 sd).",
        "",
    ]
    for name, entry in out["targets"].items():
        kind = "; the trained model" if entry["family"] == "digits" else ""
        lines += [f"### {name} (d = {entry['dim']}, σ_max = {entry['sigma_max']:.4g}{kind})", "",
                  "| metric | NFE | lcsample default | best k-diffusion | ratio | best lcsample "
                  "| verdict | default reaches it at NFE |",
                  "|---|---:|---:|---|---:|---|---|---:|"]
        for metric, s in entry["summary"].items():
            for k, c in s["per_nfe"].items():
                match = c["default_nfe_to_match"]
                reach = (f"{match:g}" if match is not None
                         else f"> {max(out['default_ladder'])}")
                lines.append(
                    f"| {LABELS[metric]} | {k} | {compact(c['default'])} | "
                    f"{compact(c['best_kd_value'])} ({c['best_kd'][3:]}) | {_ratio(c['ratio'])} "
                    f"| {compact(c['best_lc_value'])} ({c['best_lc'][3:]}) | "
                    f"{_short(c['verdict'])} | {reach} |")
        wins = {m: [_short(s["per_nfe"][k]["verdict"]) for k in s["per_nfe"]]
                for m, s in entry["summary"].items()}
        lines += ["", "Who wins (NFE " + ", ".join(str(k) for k in nfes) + "): " + "; ".join(
            f"{LABELS[m]}: {', '.join(v)}" for m, v in wins.items()) + ".", ""]
        if entry["family"] == "digits":
            lines += [_digits_note(entry), ""]
    lines += _detail_lines(out)
    return "\n".join(lines) + "\n"


def _run_line(out):
    """The command, run time, date and commit of the run, and of each merged run."""
    def one(command, elapsed, machine, what=""):
        dirty = (" + uncommitted lcsample changes"
                 if machine.get("lcsample_modified_since_commit") else "")
        return (f"`{command}` ({elapsed:.0f} s{what}, {machine.get('date_utc', '')} UTC, "
                f"commit {machine.get('git_commit')}{dirty})")
    first = out.get("command") or ("python benchmarks/kdiffusion.py"
                                   + (" --quick" if out["mode"] == "quick" else ""))
    parts = [one(first, out["elapsed_s"], out["machine"])]
    for m in out.get("merged_runs", []):
        parts.append(one(m["command"], m["elapsed_s"], m["machine"],
                         what=f"; {', '.join(m['targets'])} merged in"))
    return ("; ".join(parts) + f"; k-diffusion {out['k_diffusion']['version']}, "
            f"torch {out['k_diffusion']['torch']}")


def _digits_note(entry):
    f = entry["floors"]["sliced_w2"]
    g = entry["data_floor"]["sliced_w2"]
    other = [_short(c["verdict_against_data_floor"])
             for c in entry["summary"]["sliced_w2"]["per_nfe"].values()]
    return (f"Sliced W2 is against the {entry['held_out']} held-out digits. Its tie rule "
            f"uses the model's floor, {entry['n']:,} converged samples of the model from other "
            f"start noises: {compact(f['mean'])} ± {compact(f['sd'])} (+ 3 sd: "
            f"{compact(f['mean'] + 3 * f['sd'])}); the reference solve from this z is at "
            f"{compact(entry['reference']['sliced_w2'])}. The data floor, {entry['n']:,} "
            f"training digits against the held-out, is {compact(g['mean'])} ± "
            f"{compact(g['sd'])} (+ 3 sd: {compact(g['mean'] + 3 * g['sd'])}): the gap "
            "between the two is the model's, which no sampler of it closes. With the data "
            f"floor's tie rule the verdicts would read {', '.join(other)}"
            + (" (the converged model itself is above it: a sampler below the reference "
               "there is one whose error happens to land nearer the held-out digits)"
               if entry["reference"]["sliced_w2"] > g["mean"] + 3 * g["sd"] else "") + ".")


def _short(verdict):
    return {"lcsample": "lcsample", "k-diffusion": "k-diffusion"}.get(verdict, "tie")


def _ratio(r):
    return "—" if r is None else ("∞" if not np.isfinite(r) else f"{r:.3g}")


def _detail_lines(out):
    lines = ["## Every run", "",
             "Rows: samplers (`kd:` k-diffusion, `lc:` lcsample); columns: target NFE (the "
             "counted NFE in brackets where it is lower); ✗: failed (reason below); ⚠: "
             "lcsample warned (below). Bold: the column's best of the metric.", ""]
    for name, entry in out["targets"].items():
        ladder = sorted({r["nfe_target"] for r in entry["runs"]})
        about = _digits_detail if entry["family"] == "digits" else _exact_detail
        lines += [f"### {name}", "", about(entry), ""]
        for metric in DETAIL_METRICS[entry["family"]]:
            lines += [f"**{LABELS[metric]}**", "",
                      "| sampler | " + " | ".join(str(k) for k in ladder) + " |",
                      "|---|" + "---:|" * len(ladder)]
            best = {k: min((r["metrics"][metric] for r in entry["runs"]
                            if r["nfe_target"] == k and "metrics" in r), default=None)
                    for k in ladder}
            for sampler in dict.fromkeys(r["sampler"] for r in entry["runs"]):
                cells = []
                for k in ladder:
                    r = next((r for r in entry["runs"]
                              if r["sampler"] == sampler and r["nfe_target"] == k), None)
                    cells.append(_cell(r, metric, best[k]))
                lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
            lines.append("")
        if entry["family"] == "stiff":
            lines += ["Signed variance error along the stiffest directions (r − 1):", "",
                      "| sampler | " + " | ".join(str(k) for k in ladder) + " |",
                      "|---|" + "---:|" * len(ladder)]
            for sampler in dict.fromkeys(r["sampler"] for r in entry["runs"]):
                cells = []
                for k in ladder:
                    r = next((r for r in entry["runs"]
                              if r["sampler"] == sampler and r["nfe_target"] == k), None)
                    cells.append("" if r is None else "✗" if "error" in r
                                 else f"{r['stiff_var_error']:+.3f}")
                lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
            lines.append("")
        notes = [f"- {r['sampler']} NFE ≤ {r['nfe_target']}: ✗ {r['error'].splitlines()[0]}"
                 for r in entry["runs"] if "error" in r]
        notes += [f"- {r['sampler']} NFE ≤ {r['nfe_target']}: ⚠ {w}"
                  for r in entry["runs"] for w in r.get("warnings", [])]
        checks = [r for r in entry["runs"] if "same_grid_as_kd_euler" in r]
        if checks:
            worst = max(c["same_grid_as_kd_euler"]["max_abs_diff"] for c in checks)
            notes.append(f"- lc:ddim@karras against kd:euler on the same grid: largest "
                         f"|difference| {worst:.1e} over {len(checks)} NFE")
        lines += notes + [""]
    return lines


def _exact_detail(entry):
    trunc = entry["truncation"]
    return (f"d = {entry['dim']}, n = {entry['n']:,}, t_max = {entry['t_max']:g} "
            f"(σ_max = {entry['sigma_max']:.4g}, KL bound {entry['start_kl_bound']:.1e}), "
            f"σ_min = {SIGMA_MIN}. Reference map: {entry['reference']['kind']}"
            + _reference_note(entry["reference"]) + ". Floors (mean ± sd): "
            + "; ".join(f"{LABELS[m]} {compact(f['mean'])} ± {compact(f['sd'])}"
                        for m, f in entry["floors"].items())
            + ". Truncation (exact data samples against the exact output law): "
            + "; ".join(f"{LABELS[m]} {compact(v)}" for m, v in trunc.items()) + ".")


def _reference_note(ref):
    if "rms_change_from_steps" not in ref:
        return ""
    c = ref["rms_change_from_steps"]
    note = f" (RMS change from {c['steps']} steps {c['rms']:.1e}"
    if "same_solver_error_on_stiff_gaussian" in ref:
        note += (f"; the same solve on the κ = 1e4 Gaussian is "
                 f"{ref['same_solver_error_on_stiff_gaussian']:.1e} off its exact map")
    elif "max_abs_change_from_steps" in ref:
        note += f", largest |change| {ref['max_abs_change_from_steps']:.1e}"
    return note + ")"


def _digits_detail(entry):
    f = entry["floors"]["sliced_w2"]
    g = entry["data_floor"]["sliced_w2"]
    rec = entry["recorded_data_floor"]
    return (f"The trained digits model (`{entry['model']}`, `benchmarks/digits_model.py`) in "
            "float64 on the CPU: k-diffusion calls the denoiser as is, lcsample "
            "`score_from_denoiser(model)` on torch tensors (`device=\"cpu\"`, "
            f"`dtype=torch.float64`). d = {entry['dim']}, n = {entry['n']:,}, "
            f"σ_max = {entry['sigma_max']:g} (t_max = {entry['t_max']:.4g}), σ_min = {SIGMA_MIN}. "
            f"Reference map: {entry['reference']['kind']}" + _reference_note(entry["reference"])
            + f". Sliced W2 ({N_PROJECTIONS} directions, the same for every run) against the "
            f"{entry['held_out']} held-out digits. The model's floor (the tie rule): "
            f"{entry['model_floor_kind']}: {compact(f['mean'])} ± {compact(f['sd'])}; the "
            f"reference solve (the model, converged, from this z): "
            f"{compact(entry['reference']['sliced_w2'])}. The data floor: "
            f"{entry['data_floor_kind']}, {len(g['values'])} subsets: {compact(g['mean'])} ± "
            f"{compact(g['sd'])} (the subsets share digits: its sd is below that of "
            f"independent sets); all {entry['train']:,} training digits: "
            f"{compact(entry['train_vs_held_out'])}; the data floor recorded with the model "
            f"({rec['what']}): {compact(rec['mean'])} ± {compact(rec['sd'])}.")


def _cell(r, metric, best):
    if r is None:
        return ""
    if "error" in r:
        return "✗"
    v = r["metrics"][metric]
    text = compact(v)
    if best is not None and v == best:
        text = f"**{text}**"
    if r["nfe"] < r["nfe_target"]:
        text += f" [{r['nfe']:g}]"
    if r.get("warnings"):
        text += " ⚠"
    return text


# ---------------------------------------------------------------------------------------


def run(mode="full", targets=None, log=print):
    kd, stubbed = load_k_diffusion()
    import torch

    torch.set_num_threads(1)
    version = importlib.metadata.version("k-diffusion")
    t0 = time.perf_counter()
    names = targets or (QUICK_TARGETS if mode == "quick" else tuple(TARGETS))
    out = {"mode": mode, "n": SAMPLES[mode], "nfes": list(NFES[mode]),
           "default_ladder": list(NFES[mode] + EXTRA_NFES[mode]), "sigma_min": SIGMA_MIN,
           "rho": RHO, "seeds": {"lcsample": SEED, "z": Z_SEED, "reference": REFERENCE_SEED},
           "n_projections": N_PROJECTIONS, "floor_repeats": FLOOR_REPEATS[mode],
           "k_diffusion": {"version": version, "torch": torch.__version__,
                           "placeholders_for": list(stubbed)},
           "targets": {}}
    for name in names:
        t1 = time.perf_counter()
        log(f"{name}:")
        p = build(name, mode, kd, log)
        rows = run_target(p, kd, mode, log)
        entry = {"family": p.family, "dim": p.dim, "n": p.n, "t_max": p.t_max,
                 "sigma_max": p.sigma_max, "t_min": p.t_min, **p.info,
                 "floors": {m: {"mean": f.mean, "sd": f.sd, "values": f.values}
                            for m, f in p.floors.items()},
                 "runs": rows}
        entry["summary"] = summarize(entry, NFES[mode])
        entry["elapsed_s"] = time.perf_counter() - t1
        out["targets"][name] = entry
        log(f"  {entry['elapsed_s']:.0f} s")
    out["elapsed_s"] = time.perf_counter() - t0
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="d = 8 targets, n = 1,000, NFE 10 and 20 (about 10 s)")
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS),
                        help="default: all (--quick: grid_8 stiff_8)")
    parser.add_argument("--json", help="default benchmarks/results/kdiffusion.json "
                        "(/tmp/kdiffusion_quick.json with --quick)")
    parser.add_argument("--md", help="the Markdown tables (default: beside the JSON)")
    parser.add_argument("--merge", action="store_true",
                        help="put this run's targets into the existing JSON (same mode), "
                        "replacing those of the same name and keeping the others, and "
                        "write the Markdown of them all")
    opts = parser.parse_args(argv)
    mode = "quick" if opts.quick else "full"
    json_path = Path(opts.json or (RESULTS / "kdiffusion.json" if mode == "full"
                                   else "/tmp/kdiffusion_quick.json"))
    md_path = Path(opts.md or json_path.with_suffix(".md"))
    command = " ".join(["python benchmarks/kdiffusion.py",
                        *(sys.argv[1:] if argv is None else argv)])
    old = None
    if opts.merge:
        if not json_path.exists():
            parser.error(f"--merge: there is no {json_path}")
        old = json.loads(json_path.read_text())
        if old["mode"] != mode:
            parser.error(f"--merge: {json_path} is a {old['mode']} run, this one {mode}")
    machine = machine_info()
    out = run(mode, opts.targets, log=lambda s: print(s, flush=True))
    out["machine"] = machine
    out["command"] = command
    elapsed = out["elapsed_s"]
    if old is not None:
        out = merge(old, out)
    write_json(json_path, out)
    md_path.write_text(markdown(out))
    print(f"done in {elapsed:.0f} s: {json_path}, {md_path}")
    return out


def merge(old, new):
    """``new``'s targets put into the results ``old`` (replacing those of the same name),
    with ``new``'s command, time and machine in ``merged_runs``."""
    names = list(new["targets"])
    targets = {**old["targets"], **new["targets"]}
    order = [k for k in TARGETS if k in targets] + [k for k in targets if k not in TARGETS]
    earlier = []
    for m in old.get("merged_runs", []):  # runs whose targets are replaced now drop out
        kept = [k for k in m["targets"] if k not in names]
        if kept:
            earlier.append({**m, "targets": kept})
    return {**old, "targets": {k: targets[k] for k in order},
            "merged_runs": [*earlier, {"targets": names, "command": new["command"],
                                       "elapsed_s": new["elapsed_s"],
                                       "machine": new["machine"],
                                       "k_diffusion": new["k_diffusion"]}]}


if __name__ == "__main__":
    main()
