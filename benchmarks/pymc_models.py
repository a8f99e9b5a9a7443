"""lcsample through PyMC (and hand-written) against nutpie and PyMC's NUTS, on real models.

Issue 14: on posteriordb models and the item-response model, the gradient evaluations per
chain to b² < 0.01 (:func:`lcsample.metrics.grads_to_accuracy`'s definition, warmup and
initialization included) and the total wall time including every compile, measured in
one run.

Models (``/work/shared/data`` or ``../shared/data``; each written once in PyMC following
the posteriordb Stan program, some also by hand as a numba :class:`lcsample.Target` on the
same unconstrained coordinates, checked against the PyMC one at a few points):
:data:`MODELS`.

Samplers, all with 4 chains, seeds 0, 1, 2 and :data:`DRAWS` draws per chain:

* ``lcsample-pymc``: ``lcsample.from_pymc(model)`` then ``lcsample.sample`` (defaults);
* ``lcsample-hand``: the hand-written target, ``lcsample.sample`` (defaults);
* ``nutpie``: ``nutpie.compile_pymc_model(model)`` then ``nutpie.sample`` (defaults:
  diagonal mass, 300 tuning draws); gradients = leapfrog steps (``n_steps``) of the
  tuning and the kept draws; nutpie's few gradients before the first draw are not counted;
* ``pymc``: ``pm.sample`` (PyMC's default NUTS, C backend, ``jitter+adapt_diag``, 1000
  tuning draws, chains in 2 processes) on :data:`PYMC_SAMPLE_MODEL` only.

Each (model, sampler) runs in fresh subprocesses (``--job``), one after another: first
with empty PyTensor and numba disk caches (``cold``: what the first run after installing
pays), then once more on the caches the first filled (``warm``: a later session). In
each, the compile is timed as building the compiled object plus a first short sampler
call less a second identical one; the cold process then runs the measured seeds. Total
= compile + run (the sampler call); time to accuracy = warm compile + the run up to the
crossing. The reference moments come from a long nutpie run per model
(:data:`REFERENCE`), cached in ``results/pymc_models_reference.json``; the results go
to ``results/pymc_models.json`` and ``results/pymc_models.md``.

    python benchmarks/pymc_models.py [--quick] [--models NAME ...] [--samplers NAME ...]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
from common import (  # noqa: E402
    DASH,
    RESULTS,
    compact,
    machine_info,
    median_inf,
    seconds,
    write_json,
)

THRESHOLD = 0.01
CHAINS = 4
SEEDS = {"quick": [0], "full": [0, 1, 2]}
DRAWS = {"quick": 300, "full": 2000}
#: Long nutpie runs giving the reference moments: (chains, tune, draws per chain).
REFERENCE = {"quick": (4, 500, 1000), "full": (4, 1000, 10000)}
#: Shorter where a gradient is slow (item response: ~1 ms; diamonds: ~250 steps a draw).
REFERENCE_OVERRIDES = {"item_response": (4, 1000, 2500), "diamonds": (4, 1000, 2500)}
REFERENCE_SEED = 20240614
#: Fewer draws where a NUTS run is slow (diamonds: ~250 leapfrog steps a draw; item
#: response: ~1 ms a gradient); NUTS's b² crosses 0.01 well before.
DRAWS_OVERRIDES = {("diamonds", "nutpie"): 1000, ("item_response", "nutpie"): 1000}
PYMC_SAMPLE_MODEL = "earnings"
SAMPLERS = ("lcsample-pymc", "lcsample-hand", "nutpie", "pymc")
JSON_PATH = RESULTS / "pymc_models.json"
MD_PATH = RESULTS / "pymc_models.md"
REFERENCE_PATH = RESULTS / "pymc_models_reference.json"


def _data_root():
    """The shared data folder: ``/work/shared/data`` or ``<repo>/../shared/data``."""
    for root in (Path("/work/shared/data"), Path(__file__).resolve().parents[2] / "shared/data"):
        if root.exists():
            return root
    raise FileNotFoundError("shared/data not found")


def _load(folder):
    """The ``data.json`` of a data folder, lists turned into float arrays."""
    raw = json.loads((_data_root() / folder / "data.json").read_text())
    return {k: np.asarray(v, dtype=float) if isinstance(v, list) else v for k, v in raw.items()}


# ---------------------------------------------------------------------------------------
# Data: design matrices as in each model's README


def earnings_data():
    """y = log earn, Z = [1, z, male, z·male] with z the standardized height (sd, n - 1)."""
    d = _load("posteriordb/earnings-logearn_interaction_z")
    z = (d["height"] - d["height"].mean()) / d["height"].std(ddof=1)
    Z = np.column_stack([np.ones_like(z), z, d["male"], z * d["male"]])
    return {"Z": Z, "y": np.log(d["earn"])}


def wells_data():
    """switched, and Z = [1, c_dist100, c_arsenic, their product, assoc, educ / 4]."""
    d = _load("posteriordb/wells_data-wells_daae_c_model")
    dist = (d["dist"] - d["dist"].mean()) / 100.0
    arsenic = d["arsenic"] - d["arsenic"].mean()
    Z = np.column_stack([np.ones_like(dist), dist, arsenic, dist * arsenic, d["assoc"],
                         d["educ"] / 4.0])
    return {"Z": Z, "y": d["switched"]}


def ark_data():
    """y[t] for t = K+1..T and the lagged matrix [y[t-1], ..., y[t-K]]."""
    d = _load("posteriordb/arK-arK")
    y, K = d["y"], int(d["K"])
    lags = np.column_stack([y[K - k:len(y) - k] for k in range(1, K + 1)])
    return {"lags": lags, "y": y[K:]}


def diamonds_data():
    """Y and Xc = columns 2..K of X with their means removed."""
    d = _load("posteriordb/diamonds-diamonds")
    Xc = d["X"][:, 1:] - d["X"][:, 1:].mean(axis=0)
    return {"Xc": Xc, "y": d["Y"]}


def item_response_data():
    """student and question ids (int) and the 0/1 answers."""
    d = _load("item_response")
    return {"student": d["student_ids"].astype(np.int64),
            "question": d["question_ids"].astype(np.int64), "y": d["correct"],
            "n_students": int(d["num_students"]), "n_questions": int(d["num_questions"])}


# ---------------------------------------------------------------------------------------
# PyMC models (the Stan programs of posteriordb; inference_gym's item-response model)


def earnings_pymc(data):
    """Flat priors on beta (4) and sigma > 0; log earn ~ Normal(Z beta, sigma)."""
    import pymc as pm

    with pm.Model() as model:
        beta = pm.Flat("beta", shape=4)
        sigma = pm.HalfFlat("sigma")
        pm.Normal("y", pm.math.dot(data["Z"], beta), sigma, observed=data["y"])
    return model


def wells_pymc(data):
    """Flat priors on alpha and beta (5); switched ~ Bernoulli(logit⁻¹(alpha + x beta))."""
    import pymc as pm

    with pm.Model() as model:
        alpha = pm.Flat("alpha")
        beta = pm.Flat("beta", shape=5)
        eta = alpha + pm.math.dot(data["Z"][:, 1:], beta)
        pm.Bernoulli("y", logit_p=eta, observed=data["y"])
    return model


def ark_pymc(data):
    """alpha, beta (5) ~ Normal(0, 10); sigma ~ half-Cauchy(2.5); AR(5) likelihood."""
    import pymc as pm

    with pm.Model() as model:
        alpha = pm.Normal("alpha", 0.0, 10.0)
        beta = pm.Normal("beta", 0.0, 10.0, shape=data["lags"].shape[1])
        sigma = pm.HalfCauchy("sigma", 2.5)
        pm.Normal("y", alpha + pm.math.dot(data["lags"], beta), sigma, observed=data["y"])
    return model


def diamonds_pymc(data):
    """b (24) ~ Normal(0, 1); Intercept ~ t(3, 8, 10); sigma ~ half-t(3, 10)."""
    import pymc as pm

    with pm.Model() as model:
        b = pm.Normal("b", 0.0, 1.0, shape=data["Xc"].shape[1])
        intercept = pm.StudentT("Intercept", nu=3.0, mu=8.0, sigma=10.0)
        sigma = pm.HalfStudentT("sigma", nu=3.0, sigma=10.0)
        pm.Normal("y", intercept + pm.math.dot(data["Xc"], b), sigma, observed=data["y"])
    return model


def item_response_pymc(data):
    """mu ~ N(0.75, 1), a (400), q (100) ~ N(0, 1); y ~ Bernoulli(logit⁻¹(mu + a_s - q_j))."""
    import pymc as pm

    with pm.Model() as model:
        mu = pm.Normal("mu", 0.75, 1.0)
        a = pm.Normal("a", 0.0, 1.0, shape=data["n_students"])
        q = pm.Normal("q", 0.0, 1.0, shape=data["n_questions"])
        eta = mu + a[data["student"]] - q[data["question"]]
        pm.Bernoulli("y", logit_p=eta, observed=data["y"])
    return model


# ---------------------------------------------------------------------------------------
# Hand-written numba targets, on PyMC's unconstrained coordinates (x in free_RVs order)


@numba.njit(cache=True, nogil=True)
def _linear_flat(x, grad_out, Z, Zt, y):
    """Flat priors on beta and sigma, x = (beta, log sigma); the + log sigma is the Jacobian."""
    p = Z.shape[1]
    tau = x[p]
    r = y - Z @ x[:p]
    rr = r @ r
    scale = np.exp(-2.0 * tau)
    grad_out[:p] = scale * (Zt @ r)
    grad_out[p] = 1.0 - y.shape[0] + scale * rr
    return (1.0 - y.shape[0]) * tau - 0.5 * scale * rr


@numba.njit(cache=True, nogil=True)
def _log1p_exp_and_sigmoid(eta):
    """log(1 + e^η) and σ(η) without overflow."""
    if eta > 0.0:
        t = np.exp(-eta)
        return eta + np.log1p(t), 1.0 / (1.0 + t)
    t = np.exp(eta)
    return np.log1p(t), t / (1.0 + t)


@numba.njit(cache=True, nogil=True)
def _logistic_flat(x, grad_out, Z, Zt, y):
    """Flat prior, x = (alpha, beta): Bernoulli log-likelihood of σ(Z x)."""
    eta = Z @ x
    residual = np.empty_like(eta)
    lp = 0.0
    for i in range(eta.shape[0]):
        softplus, s = _log1p_exp_and_sigmoid(eta[i])
        lp += y[i] * eta[i] - softplus
        residual[i] = y[i] - s
    grad_out[:] = Zt @ residual
    return lp


@numba.njit(cache=True, nogil=True)
def _item_response(x, grad_out, a_index, q_index, y):
    """x = (mu, a, q); ``a_index``, ``q_index`` are the observations' positions in x."""
    mu = x[0]
    grad_out[:] = -x
    grad_out[0] = 0.75 - mu
    lp = -0.5 * ((mu - 0.75) ** 2 + x[1:] @ x[1:])
    for k in range(y.shape[0]):
        eta = mu + x[a_index[k]] - x[q_index[k]]
        softplus, s = _log1p_exp_and_sigmoid(eta)
        lp += y[k] * eta - softplus
        grad_out[0] += y[k] - s
        grad_out[a_index[k]] += y[k] - s
        grad_out[q_index[k]] -= y[k] - s
    return lp


def earnings_hand(data):
    """The earnings model as a numba Target, x = (beta, log sigma)."""
    import lcsample

    Z = np.ascontiguousarray(data["Z"])
    return lcsample.Target(_linear_flat, Z.shape[1] + 1,
                           args=(Z, np.ascontiguousarray(Z.T), data["y"]))


def wells_hand(data):
    """The wells model as a numba Target, x = (alpha, beta)."""
    import lcsample

    Z = np.ascontiguousarray(data["Z"])
    return lcsample.Target(_logistic_flat, Z.shape[1],
                           args=(Z, np.ascontiguousarray(Z.T), data["y"]))


def item_response_hand(data):
    """The item-response model as a numba Target, x = (mu, a, q)."""
    import lcsample

    a_index = 1 + data["student"]
    q_index = 1 + data["n_students"] + data["question"]
    dim = 1 + data["n_students"] + data["n_questions"]
    return lcsample.Target(_item_response, dim, args=(a_index, q_index, data["y"]))


#: name -> (description, data, PyMC model, hand-written target or None).
MODELS = {
    "earnings": ("posteriordb earnings-logearn_interaction_z, linear, d = 5",
                 earnings_data, earnings_pymc, earnings_hand),
    "wells": ("posteriordb wells_data-wells_daae_c_model, logistic, d = 6",
              wells_data, wells_pymc, wells_hand),
    "arK": ("posteriordb arK-arK, AR(5), d = 7", ark_data, ark_pymc, None),
    "diamonds": ("posteriordb diamonds-diamonds, linear, κ ≈ 3.5e5, d = 26",
                 diamonds_data, diamonds_pymc, None),
    "item_response": ("inference_gym synthetic item response (Rasch), d = 501",
                      item_response_data, item_response_pymc, item_response_hand),
}


# ---------------------------------------------------------------------------------------
# Draws on PyMC's unconstrained coordinates, in lcsample's flat order


def unconstrained_draws(model, posterior):
    """(chains, draws, d) from an ArviZ posterior group, free_RVs order, log for log-transformed.

    Parameters
    ----------
    model : pymc.Model
    posterior : xarray.Dataset or DataTree node
        The constrained draws of every free variable.

    Returns
    -------
    ndarray, shape (chains, draws, d)
    """
    from pymc.logprob.transforms import LogTransform

    blocks = []
    for rv in model.free_RVs:
        values = np.asarray(posterior[rv.name].values, dtype=float)
        transform = model.rvs_to_transforms.get(rv)
        if isinstance(transform, LogTransform):
            values = np.log(values)
        elif transform is not None:
            raise NotImplementedError(f"{rv.name}: transform {transform} not handled")
        blocks.append(values.reshape(values.shape[0], values.shape[1], -1))
    return np.concatenate(blocks, axis=2)


def nuts_steps(idata, group):
    """Leapfrog steps per draw, (chains, draws), of a sample-stats group (0 if absent)."""
    if group not in idata.children:
        return None
    return np.asarray(idata[group]["n_steps"].values, dtype=float)


# ---------------------------------------------------------------------------------------
# Reference moments


def reference_settings(name, mode):
    """(chains, tune, draws) of the reference run of model ``name``."""
    return REFERENCE_OVERRIDES.get(name, REFERENCE[mode]) if mode == "full" else REFERENCE[mode]


def make_reference(name, mode, log=print):
    """Mean, sd (unconstrained) and min bulk ESS of a long nutpie run on model ``name``."""
    import arviz as az
    import nutpie

    chains, tune, draws = reference_settings(name, mode)
    model = MODELS[name][2](MODELS[name][1]())
    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model)
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains,
                          seed=REFERENCE_SEED, progress_bar=False)
    x = unconstrained_draws(model, idata["posterior"])
    ess = az.ess(az.convert_to_dataset(np.ascontiguousarray(x)), method="bulk")
    out = {"mean": x.mean(axis=(0, 1)), "sd": x.std(axis=(0, 1)),
           "ess_bulk_min": float(np.nanmin(np.asarray(ess["x"]))),
           "chains": chains, "tune": tune, "draws": draws, "seed": REFERENCE_SEED,
           "sampler": "nutpie (defaults, diag mass)",
           "divergences": int(np.asarray(idata["sample_stats"]["diverging"]).sum()),
           "seconds": time.perf_counter() - t0}
    log(f"  reference {name}: {chains}x{draws} draws, min ESS {out['ess_bulk_min']:.0f}, "
        f"{out['seconds']:.0f} s")
    return out


def references(names, mode, log=print):
    """Reference moments of ``names``, from the cache file or made (and cached) now."""
    cache = json.loads(REFERENCE_PATH.read_text()) if REFERENCE_PATH.exists() else {}
    key = lambda n: f"{n}:{mode}:{reference_settings(n, mode)}"  # noqa: E731
    missing = [n for n in names if key(n) not in cache]
    for name in missing:
        cache[key(name)] = make_reference(name, mode, log)
    if missing:
        write_json(REFERENCE_PATH, cache)
    return {n: cache[key(n)] for n in names}


# ---------------------------------------------------------------------------------------
# Hand-written targets against PyMC's log density


def check_hand_target(name, ref, points=4, seed=0):
    """Largest relative gradient error and spread of the log-density difference.

    At ``points`` points drawn around the reference moments (mean ± 2 sd), the hand-written
    target against ``model.compile_logp`` / ``compile_dlogp`` on the same flat vector.
    """
    _, data_fn, pymc_fn, hand_fn = MODELS[name]
    data = data_fn()
    model = pymc_fn(data)
    target = hand_fn(data)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    ip = model.initial_point()
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    sizes = [np.size(ip[n]) for n in names]
    rng = np.random.default_rng(seed)
    diffs, errors = [], []
    for _ in range(points):
        mean, sd = np.asarray(ref["mean"]), np.asarray(ref["sd"])
        x = mean + 2.0 * sd * rng.uniform(-1.0, 1.0, mean.shape)
        point = {n: v.reshape(np.shape(ip[n])) for n, v in
                 zip(names, np.split(x, np.cumsum(sizes)[:-1]), strict=True)}
        lp, grad = target.logdensity_and_gradient(x)
        diffs.append(lp - logp(point))
        g_ref = dlogp(point)
        errors.append(np.max(np.abs(grad - g_ref)) / max(np.max(np.abs(g_ref)), 1e-300))
    return {"points": points, "max_relative_gradient_error": float(max(errors)),
            "logp_difference_spread": float(np.ptp(diffs))}


# ---------------------------------------------------------------------------------------
# One job, in a fresh subprocess: (model, sampler, seeds)


def crossing_index(posterior, mean, sd):
    """Draws used (0..n) when b² < THRESHOLD from draw n on, None if never; final b²."""
    from lcsample.metrics import squared_bias

    b_x, b_x2 = squared_bias(posterior, mean, sd)
    above = np.flatnonzero((b_x >= THRESHOLD) | (b_x2 >= THRESHOLD) | ~np.isfinite(b_x + b_x2))
    n = 0 if above.size == 0 else int(above[-1] + 1)
    final = float(max(b_x[-1], b_x2[-1]))
    return (None if n >= b_x.shape[0] else n), final


def _warning_lines(caught):
    """The distinct warnings caught: category and message (400 characters at most)."""
    return sorted({f"{w.category.__name__}: {str(w.message)[:400]}" for w in caught})


def _timed(call):
    """``call()``, its wall seconds and the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        value = call()
        wall = time.perf_counter() - t0
    return value, wall, _warning_lines(caught)


class LcsampleRunner:
    """lcsample on a model: ``from_pymc(model)`` (or the hand-written target), then sample."""

    def __init__(self, name, hand):
        import lcsample

        _, data_fn, pymc_fn, hand_fn = MODELS[name]
        data = data_fn()
        self.lcsample = lcsample
        self.target, self.build_s, self.build_warnings = _timed(
            lambda: hand_fn(data) if hand else lcsample.from_pymc(pymc_fn(data)))

    def call(self, seed, draws, tune=None):
        """``lcsample.sample`` with 4 chains and the defaults; returns the result."""
        return self.lcsample.sample(self.target, draws=draws, tune=tune, chains=CHAINS,
                                    seed=seed, progressbar=False)

    def measure(self, seed, draws, ref):
        """One run: gradients to accuracy, wall time to it, timing and warnings."""
        from lcsample.metrics import grads_to_accuracy

        result, wall, caught = _timed(lambda: self.call(seed, draws))
        mean, sd = np.asarray(ref["mean"]), np.asarray(ref["sd"])
        n, final = crossing_index(result.posterior, mean, sd)
        timing = {k: float(v) for k, v in result.timing.items()}
        per_draw = np.asarray(result.sample_stats["n_steps"], dtype=float)
        to_acc = None
        if n is not None:  # the sampling after the crossing and the checks are not needed
            unused = per_draw[:, n + 1:].sum() / per_draw.sum() * timing["sampling"]
            to_acc = wall - unused - timing["checks"]
        init = float(result.attrs.get("init_grad_evals", 0))
        return {"seed": seed, "draws": draws, "grads": grads_to_accuracy(result, mean, sd,
                                                                         THRESHOLD),
                "crossing_draw": n, "final_b2": final,
                "grads_total_per_chain": float(np.mean(result.n_grad_evals)) + init,
                "init_grads": init, "tune": int(result.attrs["tune"]),
                "modes_found": int(result.attrs.get("modes_found", 1)),
                "step_size": float(np.median(result.attrs["step_size"])),
                "run_s": wall, "run_to_accuracy_s": to_acc, "timing": timing,
                "warnings": caught}


class NutpieRunner:
    """nutpie on a model: ``compile_pymc_model`` once, then ``nutpie.sample`` per seed."""

    def __init__(self, name):
        import nutpie

        _, data_fn, pymc_fn, _ = MODELS[name]
        self.nutpie, self.model = nutpie, pymc_fn(data_fn())
        self.compiled, self.build_s, self.build_warnings = _timed(
            lambda: nutpie.compile_pymc_model(self.model))

    def call(self, seed, draws, tune=None):
        """``nutpie.sample`` with 4 chains and the defaults; returns the DataTree."""
        kwargs = {} if tune is None else {"tune": tune}
        return self.nutpie.sample(self.compiled, draws=draws, chains=CHAINS, seed=seed,
                                  progress_bar=False, **kwargs)

    def measure(self, seed, draws, ref):
        """One run: gradients to accuracy and times (:func:`nuts_summary`)."""
        idata, wall, _ = _timed(lambda: self.call(seed, draws))
        return nuts_summary(self.model, idata, seed, wall, ref)


class PymcRunner:
    """PyMC's default NUTS, ``pm.sample``: it compiles the model itself in every call."""

    def __init__(self, name):
        import pymc as pm

        _, data_fn, pymc_fn, _ = MODELS[name]
        self.pm, self.model = pm, pymc_fn(data_fn())
        self.build_s, self.build_warnings = 0.0, []

    def call(self, seed, draws, tune=None):
        """``pm.sample`` with 4 chains, tuning draws kept; returns the DataTree."""
        kwargs = {} if tune is None else {"tune": tune}
        with self.model:
            return self.pm.sample(draws=draws, chains=CHAINS, random_seed=seed,
                                  progressbar=False, discard_tuned_samples=False, **kwargs)

    def measure(self, seed, draws, ref):
        """One run: gradients to accuracy and times (:func:`nuts_summary`)."""
        idata, wall, _ = _timed(lambda: self.call(seed, draws))
        return nuts_summary(self.model, idata, seed, wall, ref)


def nuts_summary(model, idata, seed, wall, ref):
    """Gradients (leapfrog steps) to accuracy and times of a NUTS run (nutpie or PyMC).

    The time to accuracy prorates the call's wall time by gradients (tuning counted in
    full, the draws up to the crossing).
    """
    x = unconstrained_draws(model, idata["posterior"])
    n, final = crossing_index(x, np.asarray(ref["mean"]), np.asarray(ref["sd"]))
    tuning = nuts_steps(idata, "warmup_sample_stats")
    draws = nuts_steps(idata, "sample_stats")
    tuning_total = tuning.sum(axis=1) if tuning is not None else np.zeros(draws.shape[0])
    all_grads = tuning_total.sum() + draws.sum()
    grads, to_acc = None, None
    if n is not None:
        used = tuning_total + draws[:, :n + 1].sum(axis=1)
        grads = float(used.mean())
        to_acc = wall * float(used.sum() / all_grads)
    return {"seed": seed, "draws": int(draws.shape[1]), "grads": grads, "crossing_draw": n,
            "final_b2": final, "grads_total_per_chain": float(all_grads / draws.shape[0]),
            "tuning_grads_per_chain": float(tuning_total.mean()),
            "tune": 0 if tuning is None else int(tuning.shape[1]),
            "divergences": int(np.asarray(idata["sample_stats"]["diverging"]).sum()),
            "run_s": wall, "run_to_accuracy_s": to_acc}


RUNNERS = {"lcsample-pymc": lambda n: LcsampleRunner(n, hand=False),
           "lcsample-hand": lambda n: LcsampleRunner(n, hand=True),
           "nutpie": NutpieRunner, "pymc": PymcRunner}
#: Draws and tuning of the two short calls that time the compile (first minus second).
PROBE_DRAWS = 10


def run_job(spec):
    """One (model, sampler) in this process: the compile probe, then the measured seeds.

    compile_s = build + first short call − second short call: everything the first call
    pays beyond a call that finds everything compiled (lazy numba compiles included).
    """
    t0 = time.perf_counter()
    runner = RUNNERS[spec["sampler"]](spec["model"])
    _, first, _ = _timed(lambda: runner.call(999, PROBE_DRAWS, PROBE_DRAWS))
    _, second, _ = _timed(lambda: runner.call(998, PROBE_DRAWS, PROBE_DRAWS))
    rows = [runner.measure(seed, spec["draws"], spec["reference"]) for seed in spec["seeds"]]
    return {"build_s": runner.build_s, "first_probe_s": first, "second_probe_s": second,
            "compile_s": runner.build_s + max(first - second, 0.0),
            "build_warnings": runner.build_warnings, "seeds": rows,
            "job_s": time.perf_counter() - t0}


def spawn_job(spec, cache_dir, log=print):
    """Run ``spec`` in a fresh Python process with its disk caches under ``cache_dir``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(cache_dir) / "numba"),
               PYTENSOR_FLAGS=f"base_compiledir={Path(cache_dir) / 'pytensor'}")
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        write_json(spec_path, spec)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--job", str(spec_path), str(out_path)],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            log(proc.stderr[-3000:])
            return {"error": proc.stderr[-2000:], "process_s": wall}
        out = json.loads(out_path.read_text())
    out["process_s"] = wall  # interpreter start and imports included
    return out


# ---------------------------------------------------------------------------------------
# Driver


def jobs_for(models, samplers):
    """The (model, sampler) pairs measured."""
    pairs = []
    for name in models:
        for sampler in samplers:
            if sampler == "lcsample-hand" and MODELS[name][3] is None:
                continue
            if sampler == "pymc" and name != PYMC_SAMPLE_MODEL:
                continue
            pairs.append((name, sampler))
    return pairs


def draws_for(name, sampler, mode):
    """Draws per chain of the measured runs of (``name``, ``sampler``)."""
    return DRAWS_OVERRIDES.get((name, sampler), DRAWS[mode]) if mode == "full" else DRAWS[mode]


def measure(name, sampler, mode, ref, log=print):
    """Cold process (empty caches: probe and seeds), then a warm one (probe only)."""
    with tempfile.TemporaryDirectory(prefix="pymc_bench_") as cache:
        spec = {"model": name, "sampler": sampler, "seeds": SEEDS[mode],
                "draws": draws_for(name, sampler, mode), "reference": ref}
        cold = spawn_job(spec, cache, log)
        warm = spawn_job(spec | {"seeds": []}, cache, log)
    entry = {"model": name, "sampler": sampler, "cold": cold, "warm": warm}
    log(f"  {name:14s} {sampler:14s} " + _progress_line(summarize(entry)))
    return entry


def _progress_line(s):
    """One line of progress from a summary entry."""
    if s.get("error"):
        return "FAILED"
    return (f"grads {compact(s['median_grads'])} ({s['reached']}/{s['seeds']})  compile "
            f"cold {seconds(s['compile_cold_s'])} warm {seconds(s['compile_warm_s'])}  run "
            f"{seconds(s['median_run_s'])} s  final b² {compact(s['median_final_b2'])}")


def summarize(entry):
    """Medians over seeds of one (model, sampler) entry; compile from the cold and warm runs."""
    cold, warm = entry["cold"], entry["warm"]
    if "error" in cold or "error" in warm:
        return {"model": entry["model"], "sampler": entry["sampler"], "error": True}
    rows = cold["seeds"]
    run_s = float(np.median([r["run_s"] for r in rows]))
    to_acc = median_inf([r["run_to_accuracy_s"] for r in rows])
    warnings_seen = sorted({w for r in rows for w in r.get("warnings", [])}
                           | set(cold["build_warnings"]))
    return {
        "model": entry["model"], "sampler": entry["sampler"], "seeds": len(rows),
        "draws": rows[0]["draws"], "reached": sum(r["grads"] is not None for r in rows),
        "grads": [r["grads"] for r in rows],
        "median_grads": median_inf([r["grads"] for r in rows]),
        "median_grads_total_per_chain": float(np.median([r["grads_total_per_chain"]
                                                         for r in rows])),
        "median_final_b2": float(np.median([r["final_b2"] for r in rows])),
        "compile_cold_s": cold["compile_s"], "compile_warm_s": warm["compile_s"],
        "median_run_s": run_s, "total_cold_s": cold["compile_s"] + run_s,
        "total_warm_s": warm["compile_s"] + run_s,
        "median_time_to_accuracy_warm_s": None if to_acc is None
        else warm["compile_s"] + to_acc,
        "modes_found": [r.get("modes_found") for r in rows],
        "warnings": warnings_seen,
    }


def run(mode, models, samplers, log=print):
    """Every measurement, in one run; returns the JSON-ready results."""
    t_start = time.perf_counter()
    machine = machine_info()
    log(f"load average at start: {machine['load_average_1min_at_start']}")
    refs = references(models, mode, log)
    checks = {n: check_hand_target(n, refs[n]) for n in models if MODELS[n][3] is not None}
    log(f"hand-written targets against PyMC: {checks}")
    entries = [measure(n, s, mode, refs[n], log) for n, s in jobs_for(models, samplers)]
    return {
        "benchmark": "pymc_models", "mode": mode, "machine": machine,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "settings": _settings(mode),
        "versions": _versions(),
        "models": {n: MODELS[n][0] for n in models},
        "references": {n: {k: v for k, v in refs[n].items()} for n in models},
        "hand_target_checks": checks,
        "summary": [summarize(e) for e in entries],
        "runs": entries,
        "elapsed_s": time.perf_counter() - t_start,
    }


def _settings(mode):
    """The settings of a run, for the JSON."""
    return {"chains": CHAINS, "seeds": SEEDS[mode], "draws": DRAWS[mode],
            "threshold": THRESHOLD, "reference": REFERENCE[mode],
            "reference_overrides": REFERENCE_OVERRIDES if mode == "full" else {},
            "pymc_sample_model": PYMC_SAMPLE_MODEL,
            "draws_overrides": list(DRAWS_OVERRIDES.items()) if mode == "full" else [],
            "compile_probe_draws": PROBE_DRAWS}


def _versions():
    """Versions of the packages measured."""
    import importlib.metadata as md

    return {p: md.version(p) for p in ("lcsample", "pymc", "pytensor", "nutpie", "numba",
                                       "arviz", "numpy")}


# ---------------------------------------------------------------------------------------
# Markdown


LABELS = {"lcsample-pymc": "lcsample (from_pymc)", "lcsample-hand": "lcsample (hand-written)",
          "nutpie": "nutpie", "pymc": "PyMC NUTS (pm.sample)"}


def warning_tags(lines):
    """Short names of lcsample's warnings, for the table."""
    tags = {"several modes": "optima", "not log-concave": "log-concave",
            "convergence checks": "convergence checks", "warmup tuned": "step_size="}
    return [tag for tag, key in tags.items() if any(key in line for line in lines)]


def table(out):
    """The results table, one row per (model, sampler)."""
    lines = ["| model | sampler | draws | grads/chain to b² < 0.01: median (seeds reached) | "
             "compile cold / warm (s) | run (s) | total cold / warm (s) | "
             "time to b² < 0.01, warm (s) | final b² | lcsample warnings (seeds) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in out["summary"]:
        if s.get("error"):
            lines.append(f"| {s['model']} | {LABELS[s['sampler']]} | failed |" + " |" * 7)
            continue
        warn = DASH
        if s["sampler"].startswith("lcsample"):
            per_seed = [warning_tags(r["warnings"]) for r in _rows(out, s)]
            counts = {t: sum(t in tags for tags in per_seed) for t in sum(per_seed, [])}
            warn = ", ".join(f"{t} ({c})" for t, c in counts.items()) or "none"
        lines.append(
            f"| {s['model']} | {LABELS[s['sampler']]} | {s['draws']:,} | "
            f"{compact(s['median_grads'])} ({s['reached']}/{s['seeds']}) | "
            f"{seconds(s['compile_cold_s'])} / {seconds(s['compile_warm_s'])} | "
            f"{seconds(s['median_run_s'])} | {seconds(s['total_cold_s'])} / "
            f"{seconds(s['total_warm_s'])} | {seconds(s['median_time_to_accuracy_warm_s'])} | "
            f"{compact(s['median_final_b2'])} | {warn} |")
    return lines


def _rows(out, s):
    """The per-seed rows of summary entry ``s``."""
    for e in out["runs"]:
        if e["model"] == s["model"] and e["sampler"] == s["sampler"]:
            return e["cold"]["seeds"]
    return []


def per_seed_lines(out):
    """Per seed: gradients to accuracy and the warnings, for every (model, sampler)."""
    lines = []
    for s in out["summary"]:
        if s.get("error"):
            continue
        cells = []
        for r in _rows(out, s):
            extra = f", {r['modes_found']} optima" if r.get("modes_found", 1) > 1 else ""
            cells.append(f"seed {r['seed']}: {compact(r['grads'])} (final b² "
                         f"{compact(r['final_b2'])}{extra})")
        lines.append(f"- {s['model']}, {LABELS[s['sampler']]}: " + "; ".join(cells))
        lines += [f"  - warning: {w}".replace("\n", " ") for w in s["warnings"]
                  if s["sampler"].startswith("lcsample")]
    return lines


def markdown(out):
    """The whole results page: table, references, checks, how it was measured."""
    m = out["machine"]
    lines = [f"# lcsample via PyMC against nutpie and PyMC ({out['mode']} run)", "",
             f"{m['cpu_model']}, {m['cpus_available']} cores; load average "
             f"{m['load_average_1min_at_start']} at the start, "
             f"{out['load_average_1min_at_end']} at the end; {m['date_utc']} UTC; "
             f"lcsample commit {m['git_commit']} (lcsample modified since: "
             f"{m['lcsample_modified_since_commit']}); " +
             ", ".join(f"{k} {v}" for k, v in out["versions"].items()) + ".", ""]
    lines += table(out)
    lines += ["", "## Per seed", ""] + per_seed_lines(out)
    lines += ["", "## Models", ""]
    lines += [f"- `{n}`: {d}" for n, d in out["models"].items()]
    lines += ["", "## Reference moments", ""]
    for n, r in out["references"].items():
        lines.append(f"- `{n}`: nutpie, {r['chains']} chains × {r['draws']:,} draws after "
                     f"{r['tune']:,} tuning, seed {r['seed']}; min bulk ESS "
                     f"{r['ess_bulk_min']:,.0f}; {r['divergences']} divergences")
    lines += ["", "## Hand-written targets against PyMC's `compile_logp`/`compile_dlogp`", ""]
    for n, c in out["hand_target_checks"].items():
        lines.append(f"- `{n}`: {c['points']} points, max relative gradient error "
                     f"{c['max_relative_gradient_error']:.1e}, spread of the log-density "
                     f"difference {c['logp_difference_spread']:.1e}")
    lines += ["", "## How it was measured", ""] + _method_lines(out)
    return "\n".join(lines) + "\n"


def _method_lines(out):
    s = out["settings"]
    overrides = ", ".join(f"{m} {smp} {n:,}" for (m, smp), n in s["draws_overrides"])
    return [
        f"One run of `benchmarks/pymc_models.py` ({out['elapsed_s'] / 60:.0f} min), "
        "samplers one after another (never two at once). "
        f"{s['chains']} chains, seeds {s['seeds']}, {s['draws']:,} draws per chain "
        f"({overrides or 'for every sampler'}"
        f"{' instead' if overrides else ''}) after each sampler's default tuning. Each "
        "(model, sampler) runs in a fresh Python process with empty numba and PyTensor disk "
        "caches (**cold**: what a first run after installing pays), then in one more fresh "
        "process on the caches the first one filled (**warm**: a later session).",
        "",
        "- **grads/chain to b² < 0.01**: b² = max(b²_x, b²_x²), the squared bias of the "
        "pooled running means of x and x² in units of the reference sd, on PyMC's "
        "unconstrained coordinates (log σ); gradients per chain until it stays below 0.01. "
        "lcsample: `lcsample.metrics.grads_to_accuracy` (its initialization — mode search, "
        "curvature — counted in full for every chain, warmup, draws to the crossing). NUTS: "
        "leapfrog steps (`n_steps`) of all tuning draws plus the draws to the crossing, mean "
        "over chains (the few gradients before the first draw not counted). Median over "
        "seeds, — when fewer than half of them reached it.",
        "- **compile** = building the compiled object (`lcsample.from_pymc(model)`, the "
        "hand-written `Target`, `nutpie.compile_pymc_model(model)`; nothing for `pm.sample`) "
        f"+ the first short sampler call ({PROBE_DRAWS} tuning + {PROBE_DRAWS} draws) − a "
        "second identical call: all the first call pays beyond one that finds everything "
        "compiled (lcsample's `timing['compile']` and its lazily compiled kernels; for "
        "`pm.sample`, which compiles the model in every call, the part of that which the "
        "PyTensor cache of the process does not save).",
        "- **run**: the wall time of the measured sampler call (`lcsample.sample`: "
        "initialization, warmup, sampling, convergence checks; `nutpie.sample`; "
        "`pm.sample`), median over seeds, in the cold process after the compile probe.",
        "- **total** = compile + run. **time to b² < 0.01** = warm compile + the run up to "
        "the crossing (lcsample: the call less its sampling after the crossing, prorated by "
        "gradients, and less its convergence checks; NUTS: the call prorated by gradients).",
        "- **warnings**: every warning raised by `from_pymc` and `lcsample.sample`, "
        "captured per seed (the count of seeds in brackets); the messages are listed under "
        "*Per seed*.",
        "",
        "Command (from the repository root, `/work/venv-pymc`: Python 3.12, PyMC 6):",
        "",
        "```bash",
        "python benchmarks/pymc_models.py" + ("" if out["mode"] == "full" else " --quick"),
        "```",
    ]


def main(argv=None):
    """Command line: the whole benchmark, or one ``--job`` (what a subprocess runs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 300 draws, short refs")
    parser.add_argument("--models", nargs="+", choices=list(MODELS))
    parser.add_argument("--samplers", nargs="+", choices=list(SAMPLERS))
    parser.add_argument("--job", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    opts = parser.parse_args(argv)
    if opts.job:
        write_json(opts.job[1], run_job(json.loads(Path(opts.job[0]).read_text())))
        return None
    mode = "quick" if opts.quick else "full"
    out = run(mode, opts.models or list(MODELS), opts.samplers or list(SAMPLERS))
    print(f"done in {out['elapsed_s']:.0f} s")
    if not opts.no_write:
        write_json(JSON_PATH, out)
        MD_PATH.write_text(markdown(out))
    else:
        print(markdown(out))
    return out


if __name__ == "__main__":
    main()
