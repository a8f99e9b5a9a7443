"""The options of ``lcsample.sample``, checked once: the method table and every argument.

Invalid arguments raise ``ValueError`` naming the argument, before any work starts.
"""

import os
from typing import NamedTuple

import numpy as np

from .._executors import check_executor
from .._validate import choice, non_negative_float, positive_float, positive_int
from ..kernels.step import RMD, RMD_LAGGED, ULMC
from ..storage.zarr_store import as_zarr_store
from ..targets.base import Target
from .advance import lockstep_pays
from .budget import STORE_CHUNK_BYTES, check_run_size, stored_block
from .warmup.loop import TUNING_ROUTES
from .warmup.mass import InverseMass

__all__ = [
    "AUTO_DENSE_MAX_DIM",
    "INITS",
    "METHODS",
    "Method",
    "PICARD_STEPS",
    "PICARD_TOLERANCE",
    "SampleOptions",
    "validate",
]


class Method(NamedTuple):
    """What a ``method=`` name runs.

    Attributes
    ----------
    integrator : int
        :data:`~lcsample.kernels.step.RMD`, :data:`~lcsample.kernels.step.ULMC` or
        :data:`~lcsample.kernels.step.RMD_LAGGED`.
    corrected : bool
        Each stored draw is taken after a short ULMC corrector run (``"rmd-tv"``).
    picard : bool
        Chains advance in Picard blocks (``"rmd-picard"``, :mod:`lcsample.mcmc.picard`).
    sampler : str
        The name recorded in ``attrs["sampler"]``.
    """

    integrator: int
    corrected: bool
    picard: bool
    sampler: str


METHODS = {
    "rmd": Method(RMD, False, False, "RM-ULMC (Shen-Lee randomized midpoint)"),
    "ulmc": Method(ULMC, False, False, "ULMC (exponential Euler)"),
    "rmd-tv": Method(RMD, True, False, "RM-ULMC with an underdamped-Langevin corrector per "
                                       "draw (Gupta-Cai-Chen, log-concave TV)"),
    "rmd-picard": Method(RMD, False, True, "RM-ULMC in Picard blocks (parallel in time)"),
    "rmd-lagged": Method(RMD_LAGGED, False, False, "RM-ULMC with the midpoint predicted from "
                                                   "the last midpoint's gradient (one gradient "
                                                   "a step)"),
}
_RENAMED_METHODS = {"rmd-parallel": "rmd-picard"}
#: ``method="rmd-picard"`` defaults: steps per Picard block and the stopping tolerance
#: (RMS point change per round, in inverse-mass standard deviations).
PICARD_STEPS = 8
PICARD_TOLERANCE = 1e-3
INITS = ("mode", "uniform")
#: Largest dimension for which ``inverse_mass_matrix="auto"`` picks a dense matrix: its
#: O(d²) work per step stays below ~4 µs·(d/100)² and its d gradients once are cheap
#: next to what it saves on correlated posteriors (benchmarks/accuracy.py).
AUTO_DENSE_MAX_DIM = 200


class SampleOptions(NamedTuple):
    """The arguments of :func:`lcsample.sample`, checked and completed.

    ``method`` is the name and ``kind`` its :class:`Method`; ``adapt_mass`` is "diag",
    "auto" (diagonal, corrected by the warmup when that pays), "low_rank",
    "dense" or None (a fixed ``fixed_mass``); ``seed`` is an int, a SeedSequence or None;
    ``store_chunk`` is (chains, draws) per chunk of a run with ``store`` (None without);
    the rest are the arguments of :func:`lcsample.sample` under their own names.
    """

    draws: int
    tune: int | None
    chains: int
    seed: object
    method: str
    kind: Method
    step_size: float | None
    friction: float | None
    adapt_mass: str | None
    fixed_mass: InverseMass | None
    tuning: str
    target_accuracy: float
    init: str
    initial_positions: np.ndarray | None
    corrector_steps: int | None
    corrector_step_size: float | None
    thin: int | None
    cores: int
    progressbar: bool
    discard_tuned_samples: bool
    compute_convergence_checks: bool
    initial_state: object
    picard_steps: int | None
    tolerance: float | None
    max_rounds: int | None
    check_gradient: bool
    executor: object
    store: object
    resume: bool
    store_chunk: tuple | None


def validate(target, args):
    """Check the arguments of :func:`lcsample.sample` (``args``: name → value).

    Returns
    -------
    SampleOptions

    Raises
    ------
    TypeError
        ``target`` is not an :class:`lcsample.Target`.
    ValueError
        Any invalid argument; the message names it. Also a run whose records would not
        fit in the available memory, or that could not finish
        (:func:`lcsample.mcmc.budget.check_run_size`).
    """
    if not isinstance(target, Target):
        raise TypeError(f"target must be an lcsample.Target, got {type(target).__name__}")
    a = dict(args)
    if a["method"] in _RENAMED_METHODS:
        raise ValueError(f"method={a['method']!r} is now {_RENAMED_METHODS[a['method']]!r}")
    a["method"] = choice(a["method"], "method", METHODS)
    a["kind"] = METHODS[a["method"]]
    a.update(_counts(a))
    a.update(_tuning(a))
    a.update(_corrector(a))
    a.update(_picard(a))
    a["adapt_mass"], a["fixed_mass"] = _inverse_mass(a.pop("inverse_mass_matrix"), target.dim)
    a["initial_positions"] = _initial_positions(a["initial_positions"], a["chains"],
                                                target.structure)
    a["seed"] = _seed(a["seed"])
    if a["initial_state"] is not None and (a["seed"] is not None
                                           or a["initial_positions"] is not None):
        raise ValueError("initial_state continues a run: seed and initial_positions must be None")
    for flag in ("check_gradient", "resume"):
        if not isinstance(a[flag], bool):
            raise ValueError(f"{flag} must be True or False, got {a[flag]!r}")
    a["executor"] = check_executor(a["executor"])
    a["store"] = as_zarr_store(a["store"])
    if a["resume"] and a["store"] is None:
        raise ValueError("resume=True needs store= (the store of the run to continue)")
    if a["store"] is not None and a["initial_state"] is not None:
        raise ValueError("initial_state and store: a stored run continues with resume=True")
    dense = (a["adapt_mass"] == "dense"
             or (a["fixed_mass"] is not None and a["fixed_mass"].dense))
    a["store_chunk"] = None if a["store"] is None else _store_chunk(target, a)
    check_run_size(a["chains"], a["draws"], a["tune"], a["thin"], target.dim,
                   not a["discard_tuned_samples"], dense,
                   held=None if a["store"] is None else a["store_chunk"][1])
    return SampleOptions(**{name: a[name] for name in SampleOptions._fields})


def _store_chunk(target, a):
    """(Chains, draws) per chunk of a stored run: draws from
    :func:`lcsample.mcmc.budget.stored_block`; chains, those that make their blocks
    together.

    Chains advance one request at a time per thread, except batched targets, Picard
    blocks and compiled lockstep loops, which advance every chain's request at once (and
    so make their blocks together) and executors, which hold every chain's request.
    """
    lockstep = target.batched or a["kind"].picard or lockstep_pays(a["chains"], a["cores"])
    in_flight = (a["chains"] if lockstep or a["executor"] is not None
                 else min(a["cores"], a["chains"]))
    itemsize = np.dtype(a["store"].dtype).itemsize
    block = stored_block(a["draws"], a["thin"] or 1, in_flight, target.dim, itemsize)
    together = a["chains"] if lockstep and a["executor"] is None else 1
    # chunks of at most ~8 MiB of draws
    fit = max(1, STORE_CHUNK_BYTES * 4 // (block * target.dim * itemsize))
    return min(together, fit), block


def _counts(a):
    chains = positive_int(a["chains"], "chains")
    cores = a["cores"]
    cores = positive_int(min(chains, len(os.sched_getaffinity(0))) if cores is None else cores,
                         "cores")
    tune = None if a["tune"] is None else positive_int(a["tune"], "tune", minimum=0)
    return {"draws": positive_int(a["draws"], "draws"), "tune": tune, "chains": chains,
            "thin": None if a["thin"] is None else positive_int(a["thin"], "thin"),
            "cores": cores}


def _tuning(a):
    accuracy = positive_float(a["target_accuracy"], "target_accuracy")
    if accuracy >= 1.0:
        raise ValueError(f"target_accuracy must be below 1, got {accuracy!r}")
    return {"tuning": choice(a["tuning"], "tuning", TUNING_ROUTES),
            "init": choice(a["init"], "init", INITS), "target_accuracy": accuracy,
            "step_size": positive_float(a["step_size"], "step_size"),
            "friction": positive_float(a["friction"], "friction")}


def _corrector(a):
    steps, size = a["corrector_steps"], a["corrector_step_size"]
    if not a["kind"].corrected and (steps is not None or size is not None):
        raise ValueError("corrector_steps and corrector_step_size apply to method='rmd-tv' only")
    return {"corrector_steps": None if steps is None else positive_int(steps, "corrector_steps"),
            "corrector_step_size": positive_float(size, "corrector_step_size")}


def _picard(a):
    names = ("picard_steps", "tolerance", "max_rounds")
    if not a["kind"].picard:
        for name in names:
            if a[name] is not None:
                raise ValueError(f"{name} applies to method='rmd-picard' only")
        return {}
    steps, tol, rounds = (a[name] for name in names)
    return {"picard_steps": PICARD_STEPS if steps is None else positive_int(steps, "picard_steps"),
            "tolerance": PICARD_TOLERANCE if tol is None else non_negative_float(tol, "tolerance"),
            "max_rounds": None if rounds is None else positive_int(rounds, "max_rounds")}


def _seed(seed):
    """An int ≥ 0, a SeedSequence or None; ``attrs["seed"]`` text of an earlier run too."""
    if isinstance(seed, str) and seed.isdigit():
        return int(seed)  # attrs["seed"] of an earlier run (stored as text above 2**63)
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return seed
    return positive_int(seed, "seed", minimum=0)


def _inverse_mass(value, dim):
    """("diag" | "dense" | "low_rank" | "auto", None) to adapt, or (None, InverseMass)."""
    if isinstance(value, str):
        kind = choice(value, "inverse_mass_matrix", ("auto", "diag", "dense", "low_rank"))
        if kind == "auto" and dim <= AUTO_DENSE_MAX_DIM:
            # above, "auto" goes to the warmup: diagonal, low rank added where it pays
            kind = "dense"
        return kind, None
    try:
        u = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"inverse_mass_matrix must be 'auto', 'diag', 'dense' or an array, got {value!r}"
        ) from None
    if u.ndim == 0:
        u = np.full(dim, float(u))
    if u.shape not in ((dim,), (dim, dim)):
        raise ValueError(
            f"inverse_mass_matrix must be a scalar or have shape ({dim},) or ({dim}, {dim}), "
            f"got {u.shape}"
        )
    if not np.isfinite(u).all():
        raise ValueError("inverse_mass_matrix must be finite")
    if u.ndim == 1 and not (u > 0).all():
        raise ValueError("inverse_mass_matrix must be positive")
    if u.ndim == 2 and not (np.allclose(u, u.T) and np.linalg.eigvalsh(0.5 * (u + u.T))[0] > 0):
        raise ValueError("inverse_mass_matrix must be symmetric positive definite")
    return None, InverseMass(u if u.ndim == 1 else 0.5 * (u + u.T))


def _initial_positions(value, chains, structure):
    """Flat unconstrained starts (chains, d) from an array, or named constrained values."""
    if value is None:
        return None
    dim = structure.dim
    if isinstance(value, dict):  # {name: constrained value}, the same for every chain
        value = structure.flatten(value)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        value = [structure.flatten(v, f"initial_positions[{c}]") for c, v in enumerate(value)]
    x = np.array(value, dtype=np.float64)
    if x.shape == (dim,):
        x = np.tile(x, (chains, 1))
    if x.shape != (chains, dim):
        raise ValueError(
            f"initial_positions must have shape ({dim},) or ({chains}, {dim}), got {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("initial_positions must be finite")
    return x
