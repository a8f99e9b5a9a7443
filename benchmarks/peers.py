"""lcsample against the samplers users would pick instead, measured in the same run.

Peers (JAX CPU backend, float64, 4 chains, the same log densities written in JAX):

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
``rmd-parallel`` (``method="rmd-parallel"``, recorded as not available when this
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
* ArviZ bulk ESS, minimum over coordinates (the first :data:`ESS_MAX_COORDS`), of the
  draws after warmup, per gradient (all chains' sampling gradients) and per second of
  sampling.

Peers start every chain from Uniform(-2, 2)^d (NumPyro's and Stan's default); lcsample
from its own initialization (mode search and jitter), counted in its gradients.

    python benchmarks/peers.py [--quick] [--targets NAME ...] [--samplers NAME ...]
                               [--json PATH] [--make-reference]
"""

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import accuracy  # noqa: E402
import lcsample  # noqa: E402
from lcsample.metrics import squared_bias  # noqa: E402

THRESHOLD = accuracy.THRESHOLD
CHAINS = 4
SEEDS = {"quick": 1, "full": 3}
NUTS_WARMUP = 1000
#: NUTS draws after warmup (per chain): peer-numbers.md finds b² < 0.01 within 19-256.
NUTS_DRAWS = {"quick": 500, "full": 1000}
#: Fewer NUTS draws where a NUTS step is slow (N(0, I_10000): ~200 s per seed on 2 cores
#: with 1000 draws); the crossing comes within ~20 draws after warmup there.
NUTS_DRAWS_OVERRIDES = {"gaussian_10000": 500}
#: Draws per chain of lcsample (ulmc: 2x, its step is smaller).
LCSAMPLE_DRAWS = 1000
#: ESS is computed on at most this many coordinates (the first ones).
ESS_MAX_COORDS = 1000
#: A (target, sampler) whose first seed runs longer than this (compile excluded) skips
#: its other seeds.
SEED_CAP_S = {"quick": 60.0, "full": 120.0}
#: Points kept of each b² curve (log-spaced in the draw index) for the plots.
CURVE_POINTS = 150
PACKAGES = ("jax", "blackjax", "numpyro", "arviz")

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
}
QUICK_TARGETS = ("german_credit", "rotated_gaussian_100", "poisson_regression_20",
                 "gaussian_1000")

LCSAMPLE_SAMPLERS = {
    "rmd": ({}, 1),
    "ulmc": ({"method": "ulmc", "target_accuracy": 0.1}, 2),
    "rmd-tv": ({"method": "rmd-tv"}, 1),
    "rmd-parallel": ({"method": "rmd-parallel"}, 1),
}
PEER_SAMPLERS = ("blackjax_nuts", "numpyro_nuts", "mclmc small", "mclmc large")
SAMPLERS = tuple(LCSAMPLE_SAMPLERS) + PEER_SAMPLERS
QUICK_SAMPLERS = ("rmd", "ulmc", "rmd-parallel", "blackjax_nuts", "numpyro_nuts",
                  "mclmc small")
#: rmd-tv (16 extra gradients per draw) runs on these targets only.
RMD_TV_TARGETS = ("german_credit", "rotated_gaussian_100", "linear_regression_50",
                  "poisson_regression_20")

LABELS = {
    "rmd": "lcsample rmd", "ulmc": "lcsample ulmc", "rmd-tv": "lcsample rmd-tv",
    "rmd-parallel": "lcsample rmd-parallel", "blackjax_nuts": "BlackJAX NUTS",
    "numpyro_nuts": "NumPyro NUTS", "mclmc small": "BlackJAX MCLMC (small)",
    "mclmc large": "BlackJAX MCLMC (large)",
}


def missing_packages():
    """The peer packages that are not installed (empty when the benchmark can run)."""
    return [p for p in PACKAGES if importlib.util.find_spec(p) is None]


def versions():
    import arviz
    import blackjax
    import jax
    import jaxlib
    import numpyro

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "blackjax": blackjax.__version__, "numpyro": numpyro.__version__,
            "arviz": arviz.__version__, "jax_backend": jax.default_backend(),
            "jax_x64": bool(jax.config.jax_enable_x64)}


# ---------------------------------------------------------------------------------------
# JAX side
# ---------------------------------------------------------------------------------------

_JAX = {}


def _jax():
    """Import JAX once, float64 on."""
    if not _JAX:
        import jax

        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        import jax.numpy as jnp

        _JAX.update(jax=jax, jnp=jnp)
        _CompileClock.install(jax)
    return _JAX["jax"], _JAX["jnp"]


class _CompileClock:
    """Sums the JAX trace/lower/compile event durations (overlaps merged)."""

    EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
              "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")
    intervals = []
    installed = False

    @classmethod
    def install(cls, jax):
        if cls.installed:
            return

        def listener(event, duration, **kwargs):
            if event in cls.EVENTS:
                end = time.perf_counter()
                cls.intervals.append((end - duration, end))

        jax.monitoring.register_event_duration_secs_listener(listener)
        cls.installed = True

    @classmethod
    def since(cls, t0):
        """Seconds spent compiling since ``t0`` (perf_counter), overlaps merged."""
        spans = sorted((max(a, t0), b) for a, b in cls.intervals if b > t0)
        total, cur_a, cur_b = 0.0, None, None
        for a, b in spans:
            if cur_b is None or a > cur_b:
                if cur_b is not None:
                    total += cur_b - cur_a
                cur_a, cur_b = a, b
            else:
                cur_b = max(cur_b, b)
        if cur_b is not None:
            total += cur_b - cur_a
        return total


def jax_logdensity(target):
    """The log density of an lcsample built-in target, written in JAX."""
    jax, jnp = _jax()
    T = lcsample.targets
    if isinstance(target, T.Gaussian):
        mean, prec = jnp.asarray(target.mean), jnp.asarray(target.precision)
        if prec.ndim == 1:
            return lambda x: -0.5 * jnp.sum(prec * (x - mean) ** 2)
        return lambda x: -0.5 * (x - mean) @ (prec @ (x - mean))
    if isinstance(target, T.LogisticRegression):
        X, y, pp = jnp.asarray(target.X), jnp.asarray(target.y), 1.0 / target.prior_scale**2

        def logistic(w):
            eta = X @ w
            return jnp.sum(y * eta - jax.nn.softplus(eta)) - 0.5 * pp * (w @ w)
        return logistic
    if isinstance(target, T.LinearRegression):
        X, y = jnp.asarray(target.X), jnp.asarray(target.y)
        npr, pp = 1.0 / target.noise_scale**2, 1.0 / target.prior_scale**2

        def linear(w):
            r = y - X @ w
            return -0.5 * (npr * (r @ r) + pp * (w @ w))
        return linear
    if isinstance(target, T.PoissonRegression):
        X, y, pp = jnp.asarray(target.X), jnp.asarray(target.y), 1.0 / target.prior_scale**2

        def poisson(w):
            eta = X @ w
            return y @ eta - jnp.sum(jnp.exp(eta)) - 0.5 * pp * (w @ w)
        return poisson
    raise TypeError(f"no JAX log density for {type(target).__name__}")


def _initial_positions(seed, d):
    """Uniform(-2, 2)^d per chain (NumPyro's init_to_uniform, Stan's default)."""
    return np.random.default_rng([seed, 7]).uniform(-2.0, 2.0, (CHAINS, d))


def _scan_sampler(step, n_draws, problem, k_ess):
    """A jitted function running ``n_draws`` steps of all chains (vmapped ``step``).

    ``step(key, state, params) -> (state, grads)``. The pooled running sums of x and x²
    are carried through the scan, so the b² curves come out without storing all draws
    (d = 10,000); draws are kept for the first ``k_ess`` coordinates only (ESS).
    """
    jax, jnp = _jax()
    mean, sd = np.asarray(problem.mean), np.asarray(problem.sd)
    var_x, second = jnp.asarray(sd**2), jnp.asarray(mean**2 + sd**2)
    var_x2 = jnp.asarray(2 * sd**4 + 4 * mean**2 * sd**2)
    mean = jnp.asarray(mean)

    def run(key, states, params):
        def body(carry, key):
            states, s1, s2, n = carry
            keys = jax.random.split(key, CHAINS)
            states, grads = jax.vmap(step)(keys, states, params)
            x = states.position
            s1, s2, n = s1 + x.sum(0), s2 + (x**2).sum(0), n + 1
            count = CHAINS * n
            b2x = jnp.mean((s1 / count - mean) ** 2 / var_x)
            b2x2 = jnp.mean((s2 / count - second) ** 2 / var_x2)
            return (states, s1, s2, n), (b2x, b2x2, grads, x[:, :k_ess])

        zeros = jnp.zeros(mean.shape[0])
        init = (states, zeros, zeros, jnp.asarray(0, dtype=jnp.int64))
        (states, *_), out = jax.lax.scan(body, init, jax.random.split(key, n_draws))
        return out

    return jax.jit(run)


class _JaxTimer:
    """Times a call: wall, compile (from :class:`_CompileClock`) and the rest."""

    def __init__(self):
        self.compile_s, self.run_s = 0.0, 0.0

    def __call__(self, fn, *args):
        jax, _ = _jax()
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        wall = time.perf_counter() - t0
        compile_s = min(_CompileClock.since(t0), wall)
        self.compile_s += compile_s
        self.run_s += wall - compile_s
        return out, wall - compile_s


class BlackjaxNuts:
    """BlackJAX window adaptation + NUTS, chains vmapped; compiled once per target."""

    def __init__(self, problem, n_draws, warmup=NUTS_WARMUP):
        jax, jnp = _jax()
        import blackjax
        from blackjax.adaptation.base import get_filter_adapt_info_fn

        logp = jax_logdensity(problem.target)
        self.k_ess = min(problem.target.dim, ESS_MAX_COORDS)

        def warm_one(key, x0):
            adapt = blackjax.window_adaptation(
                blackjax.nuts, logp,
                adaptation_info_fn=get_filter_adapt_info_fn(info_keys={"num_integration_steps"}))
            (state, params), info = adapt.run(key, x0, num_steps=warmup)
            return state, params, info.info.num_integration_steps

        def step(key, state, params):
            state, info = blackjax.nuts(logp, params["step_size"],
                                        params["inverse_mass_matrix"]).step(key, state)
            return state, info.num_integration_steps

        self.warm = jax.jit(jax.vmap(warm_one))
        self.sample = _scan_sampler(step, n_draws, problem, self.k_ess)

    def __call__(self, seed, x0):
        jax, jnp = _jax()
        k_warm, k_draw = jax.random.split(jax.random.key(seed))
        timer = _JaxTimer()
        (state, params, warm_steps), warm_s = timer(
            self.warm, jax.random.split(k_warm, CHAINS), jnp.asarray(x0))
        (b2x, b2x2, grads, draws), samp_s = timer(self.sample, k_draw, state, params)
        return {
            "b2": (np.asarray(b2x), np.asarray(b2x2)),
            "warmup_grads": np.asarray(warm_steps).sum(axis=1).astype(float),
            "draw_grads": np.asarray(grads).T.astype(float),
            "draws": np.asarray(draws).transpose(1, 0, 2),
            "compile_s": timer.compile_s, "warmup_s": warm_s, "sampling_s": samp_s,
            "step_size": float(np.median(np.asarray(params["step_size"]))),
        }


class Mclmc:
    """BlackJAX MCLMC: per-chain ``mclmc_find_L_and_step_size(num_steps)``, then num_steps."""

    def __init__(self, problem, num_steps):
        jax, jnp = _jax()
        import blackjax

        logp = jax_logdensity(problem.target)
        self.k_ess = min(problem.target.dim, ESS_MAX_COORDS)
        self.tuning_steps = None

        def warm_one(key, x0):
            k_init, k_tune = jax.random.split(key)
            state = blackjax.mcmc.mclmc.init(position=x0, logdensity_fn=logp, rng_key=k_init)
            kernel = blackjax.mcmc.mclmc.build_kernel(
                integrator=blackjax.mcmc.integrators.isokinetic_mclachlan)
            state, params, n_tune = blackjax.mclmc_find_L_and_step_size(
                mclmc_kernel=kernel, num_steps=num_steps, state=state, rng_key=k_tune,
                logdensity_fn=logp)
            self.tuning_steps = int(n_tune)  # a Python int: fixed by num_steps
            return state, (params.L, params.step_size, params.inverse_mass_matrix)

        def step(key, state, params):
            L, h, imm = params
            state, _ = blackjax.mclmc(logp, L=L, step_size=h,
                                      inverse_mass_matrix=imm).step(key, state)
            return state, jnp.asarray(2)  # isokinetic McLachlan: 2 gradients per step

        self.warm = jax.jit(jax.vmap(warm_one))
        self.sample = _scan_sampler(step, num_steps, problem, self.k_ess)

    def __call__(self, seed, x0):
        jax, jnp = _jax()
        k_warm, k_draw = jax.random.split(jax.random.key(seed))
        timer = _JaxTimer()
        (state, params), warm_s = timer(self.warm, jax.random.split(k_warm, CHAINS),
                                        jnp.asarray(x0))
        (b2x, b2x2, grads, draws), samp_s = timer(self.sample, k_draw, state, params)
        return {
            "b2": (np.asarray(b2x), np.asarray(b2x2)),
            "warmup_grads": np.full(CHAINS, 2.0 * self.tuning_steps),
            "draw_grads": np.asarray(grads).T.astype(float),
            "draws": np.asarray(draws).transpose(1, 0, 2),
            "compile_s": timer.compile_s, "warmup_s": warm_s, "sampling_s": samp_s,
            "step_size": float(np.median(np.asarray(params[1]))),
            "L": float(np.median(np.asarray(params[0]))),
            "tuning_steps": self.tuning_steps,
        }


class NumpyroNuts:
    """NumPyro NUTS (diagonal mass), 4 vectorized chains; one MCMC object per target."""

    def __init__(self, problem, n_draws, warmup=NUTS_WARMUP):
        jax, jnp = _jax()
        from numpyro.infer import MCMC, NUTS

        logp = jax_logdensity(problem.target)
        self.k_ess = min(problem.target.dim, ESS_MAX_COORDS)
        self.mcmc = MCMC(NUTS(potential_fn=lambda x: -logp(x), target_accept_prob=0.8),
                         num_warmup=warmup, num_samples=n_draws, num_chains=CHAINS,
                         chain_method="vectorized", progress_bar=False)

    def __call__(self, seed, x0):
        jax, jnp = _jax()
        k_warm, k_draw = jax.random.split(jax.random.key(seed))
        timer = _JaxTimer()

        def warm():
            self.mcmc.warmup(k_warm, init_params=jnp.asarray(x0),
                             extra_fields=("num_steps",), collect_warmup=True)
            return self.mcmc.get_extra_fields(group_by_chain=True)["num_steps"]

        def draw():
            self.mcmc.run(k_draw, extra_fields=("num_steps", "diverging"))
            return (self.mcmc.get_samples(group_by_chain=True),
                    self.mcmc.get_extra_fields(group_by_chain=True))

        warm_steps, warm_s = timer(warm)
        (samples, extra), samp_s = timer(draw)
        samples = np.asarray(samples)
        return {
            "b2": squared_bias(samples, self.problem_mean, self.problem_sd),
            "warmup_grads": np.asarray(warm_steps).sum(axis=1).astype(float),
            "draw_grads": np.asarray(extra["num_steps"]).astype(float),
            "draws": samples[:, :, :self.k_ess],
            "compile_s": timer.compile_s, "warmup_s": warm_s, "sampling_s": samp_s,
            "divergent_draws": int(np.asarray(extra["diverging"]).sum()),
            "step_size": float(np.median(np.asarray(
                self.mcmc.last_state.adapt_state.step_size))),
        }


def nuts_draws(target, mode):
    return min(NUTS_DRAWS[mode], NUTS_DRAWS_OVERRIDES.get(target, NUTS_DRAWS[mode]))


def make_peer(sampler, problem, budgets, mode, target=None):
    if sampler == "blackjax_nuts":
        return BlackjaxNuts(problem, nuts_draws(target, mode))
    if sampler == "numpyro_nuts":
        peer = NumpyroNuts(problem, nuts_draws(target, mode))
        peer.problem_mean, peer.problem_sd = problem.mean, problem.sd
        return peer
    if sampler.startswith("mclmc"):
        return Mclmc(problem, budgets[0 if sampler == "mclmc small" else 1])
    raise ValueError(sampler)


# ---------------------------------------------------------------------------------------
# Measures shared by all samplers
# ---------------------------------------------------------------------------------------

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
    t0 = time.perf_counter()
    result = lcsample.sample(problem.target, draws=draws, chains=CHAINS, seed=seed,
                             progressbar=False, compute_convergence_checks=False, **options)
    wall = time.perf_counter() - t0
    timing = {k: float(v) for k, v in result.timing.items()}
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


def _median(values):
    """Median with None as +∞ (None when the median is +∞)."""
    vals = sorted(np.inf if v is None else v for v in values)
    if not vals:
        return None
    m = float(np.median(vals))
    return None if not np.isfinite(m) else m


def summarize(rows):
    def med(key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(np.median(vals)) if vals else None

    return {
        "seeds": len(rows),
        "reached": sum(r["grads"] is not None for r in rows),
        "median_grads": _median([r["grads"] for r in rows]),
        "median_time_to_accuracy_s": _median([r["time_to_accuracy_s"] for r in rows]),
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
        "median_final_b2": _median([max(r["final_b2_x"], r["final_b2_x2"]) for r in rows]),
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
                "grads_over_rmd": g / bg if g and bg else None,
                "time_over_rmd": t / bt if t and bt else None,
                "ess_per_grad_over_rmd": (s["median_ess_per_grad"] / base["median_ess_per_grad"]
                                          if base.get("median_ess_per_grad") else None),
                "ess_per_s_over_rmd": (s["median_ess_per_s"] / base["median_ess_per_s"]
                                       if s.get("median_ess_per_s")
                                       and base.get("median_ess_per_s") else None),
            }
    return out


# ---------------------------------------------------------------------------------------
# Poisson reference
# ---------------------------------------------------------------------------------------

def make_poisson_reference(path=accuracy.POISSON_REFERENCE, chains=8, warmup=2000,
                           draws=25_000, seed=12345, log=print):
    """Reference moments of ``accuracy.poisson_regression`` from a long BlackJAX NUTS run."""
    jax, jnp = _jax()
    import arviz as az
    import blackjax

    d, n = 20, 500
    X, y = accuracy.poisson_data(d, n)
    target = lcsample.targets.PoissonRegression(X, y)
    logp = jax_logdensity(target)

    def one(key, x0):
        k1, k2 = jax.random.split(key)
        (state, params), _ = blackjax.window_adaptation(blackjax.nuts, logp).run(
            k1, x0, num_steps=warmup)
        alg = blackjax.nuts(logp, **params)

        def body(s, k):
            s, info = alg.step(k, s)
            return s, (s.position, info.is_divergent)
        _, (xs, div) = jax.lax.scan(body, state, jax.random.split(k2, draws))
        return xs, div

    t0 = time.perf_counter()
    keys = jax.random.split(jax.random.key(seed), chains)
    x0 = jnp.asarray(np.random.default_rng(seed).uniform(-2, 2, (chains, d)))
    xs, div = jax.block_until_ready(jax.jit(jax.vmap(one))(keys, x0))
    xs = np.asarray(xs)
    ess = np.asarray(az.ess(az.convert_to_dataset(xs), method="bulk")["x"])
    rhat = np.asarray(az.rhat(az.convert_to_dataset(xs))["x"])
    ref = {
        "description": "accuracy.poisson_regression(d=20, n=500): BlackJAX NUTS "
                       f"(window adaptation, {warmup} warmup), {chains} chains x {draws} "
                       "draws, float64",
        "dim": d, "n": n,
        "mean": xs.mean(axis=(0, 1)).tolist(),
        "sd": xs.std(axis=(0, 1)).tolist(),
        "ess_bulk_min": float(ess.min()),
        "rhat_max": float(rhat.max()),
        "divergences": int(np.asarray(div).sum()),
        "seconds": time.perf_counter() - t0,
        "versions": versions(),
    }
    Path(path).write_text(json.dumps(ref, indent=1))
    log(f"  Poisson reference: {chains}x{draws} NUTS draws, min bulk ESS "
        f"{ref['ess_bulk_min']:.0f}, max R-hat {ref['rhat_max']:.4f}, "
        f"{ref['divergences']} divergences, {ref['seconds']:.0f} s -> {path}")
    return ref


# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------

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
        # in a subprocess: no JAX computation in this process before lcsample's runs
        log("  Poisson reference moments missing: computing them (long NUTS run)")
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--make-reference",
                        "--reference-only"], check=True)
    runs, summary, described, skipped, unavailable, failed = [], {}, {}, {}, {}, {}
    problems = {}
    for name in targets:
        builder, description, budgets = TARGETS[name]
        problems[name] = builder()
        described[name] = {"description": description, "dim": problems[name].target.dim,
                           "mclmc_num_steps": {"mclmc small": budgets[0],
                                               "mclmc large": budgets[1]}}
        summary[name] = {}
    # lcsample first, on every target, then the JAX peers: once XLA has run in a process
    # its idle CPU threads slow OpenBLAS calls (lcsample's mode search and Laplace
    # eigendecomposition took 5-10x longer after a JAX run on 2 cores).
    order = ([(n, s) for n in targets for s in samplers if s in LCSAMPLE_SAMPLERS]
             + [(n, s) for n in targets for s in samplers if s not in LCSAMPLE_SAMPLERS])
    for name, sampler in order:
        problem, budgets = problems[name], TARGETS[name][2]
        d = problem.target.dim
        if not applicable(name, sampler):
            continue
        t0 = time.perf_counter()
        rows, note, first_call = [], None, None
        try:
            if sampler in LCSAMPLE_SAMPLERS:
                options, factor = LCSAMPLE_SAMPLERS[sampler]
                first_call = lcsample_first_call(problem, options)
                call = lambda seed: run_lcsample(problem, options,  # noqa: E731
                                                 LCSAMPLE_DRAWS * factor, seed)
            else:
                _jax()
                peer = make_peer(sampler, problem, budgets, mode, name)
                call = lambda seed: summarize_run(  # noqa: E731
                    peer(seed, _initial_positions(seed, d)), seed)
            for seed in seeds:
                rows.append(call(seed))
                if rows[-1]["run_s"] > SEED_CAP_S[mode] and seed != seeds[-1]:
                    note = (f"seeds after {seed} skipped: run time "
                            f"{rows[-1]['run_s']:.0f} s > {SEED_CAP_S[mode]:.0f} s")
                    break
        except Exception as err:  # noqa: BLE001  (one failure must not end the run)
            why = f"{type(err).__name__}: {err}"
            if sampler == "rmd-parallel" and not rows:
                unavailable[f"{name}/{sampler}"] = why
                summary[name][sampler] = {"not_available": why}
                log(f"  {name:22s} {sampler:14s} not available: {why}")
                continue
            failed[f"{name}/{sampler}"] = why
            log(f"  {name:22s} {sampler:14s} FAILED: {why}")
            if not rows:
                summary[name][sampler] = {"failed": why}
                continue
            note = f"failed after {len(rows)} seed(s): {why}"
        if note:
            skipped[f"{name}/{sampler}"] = note
        elapsed = time.perf_counter() - t0
        runs.append({"target": name, "sampler": sampler, "rows": rows,
                     "elapsed_s": elapsed, "note": note, "first_call": first_call})
        s = summary[name][sampler] = summarize(rows)
        if first_call is not None:
            s["compile_s"] = max(s["compile_s"], first_call["compile_s"])
        g = "not reached" if s["median_grads"] is None else f"{s['median_grads']:9,.0f}"
        t = s["median_time_to_accuracy_s"]
        log(f"  {name:22s} {sampler:14s} grads {g} ({s['reached']}/{s['seeds']}), "
            f"to accuracy {'—' if t is None else f'{t:.2f} s'}, compile "
            f"{s['compile_s']:.1f} s, ESS/grad {s['median_ess_per_grad']:.2g}, "
            f"ESS/s {s['median_ess_per_s'] or 0:.3g}; {elapsed:.1f} s"
            + (f" [{note}]" if note else ""))
    summary = {name: {k: per[k] for k in samplers if k in per}
               for name, per in summary.items()}
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
                                 if k in targets and v < NUTS_DRAWS[mode]},
        "lcsample_draws": LCSAMPLE_DRAWS,
        "lcsample_samplers": {k: v[0] for k, v in LCSAMPLE_SAMPLERS.items()},
        "ess_max_coords": ESS_MAX_COORDS,
        "seed_cap_s": SEED_CAP_S[mode],
        "versions": versions(),
        "targets": described,
        "samplers": samplers,
        "labels": LABELS,
        "runs": runs,
        "summary": summary,
        "ratios": ratios(summary),
        "skipped": skipped,
        "not_available": unavailable,
        "failed": failed,
        "poisson_reference": poisson_ref,
        "elapsed_s": time.perf_counter() - t_start,
    }


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
    print(f"done in {out['elapsed_s']:.0f} s")
    if opts.json:
        Path(opts.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

def _g(x):
    return "—" if x is None else f"{x:,.0f}"


def _r(x):
    return "—" if x is None else f"{x:.2f}"


def _s(x):
    return "—" if x is None else (f"{x:.2f}" if x < 100 else f"{x:,.0f}")


def _e(x):
    return "—" if x is None else f"{x:.1e}"


def _grads_cell(s):
    if "not_available" in s:
        return "n/a"
    if "failed" in s:
        return "failed"
    if s["median_grads"] is None:
        return f"not reached ({s['reached']}/{s['seeds']})"
    cell = f"{s['median_grads']:,.0f}"
    return cell + (f" ({s['reached']}/{s['seeds']})" if s["reached"] < s["seeds"] else "")


def _best_mclmc(per):
    vals = [(per[k]["median_grads"], k) for k in ("mclmc small", "mclmc large")
            if per.get(k, {}).get("median_grads") is not None]
    return min(vals) if vals else (None, None)


def behind(peers):
    """(target, sampler, measure, peer value, rmd value) where a peer beats lcsample rmd."""
    out = []
    measures = (("median_grads", "gradients to b² < 0.01", False),
                ("median_time_to_accuracy_s", "seconds to b² < 0.01", False),
                ("median_ess_per_grad", "ESS per gradient", True),
                ("median_ess_per_s", "ESS per second", True))
    for name, per in peers["summary"].items():
        rmd = per.get("rmd", {})
        if "median_grads" not in rmd:
            continue
        for sampler in PEER_SAMPLERS:
            s = per.get(sampler, {})
            if "median_grads" not in s:
                continue
            for key, label, higher in measures:
                a, b = s.get(key), rmd.get(key)
                if a is None or b is None and not higher:
                    if a is not None and b is None:  # rmd did not reach, the peer did
                        out.append((name, sampler, label, a, None))
                    continue
                if b is None:
                    continue
                if (a > b) if higher else (a < b):
                    out.append((name, sampler, label, a, b))
    return out


def report_section(peers, machine=None, plots=(), number=5):
    """The Markdown section of ``report.md`` for the results of :func:`run`."""
    v = peers["versions"]
    summary, names = peers["summary"], list(peers["summary"])
    n_seeds = len(peers["seeds"])
    labels = peers.get("labels", LABELS)
    cpu = (f"{machine['cpu_model']}, {machine['cpus_available']} cores, 1-min load "
           f"average {machine['load_average_1min_at_start']} at the start, "
           f"{machine['date_utc']} UTC, commit {machine['git_commit']}"
           if machine else "the machine above")
    lines = [
        f"## {number}. Against the samplers users would pick instead",
        "",
        f"Measured **in this run, on this machine** ({cpu}): BlackJAX {v['blackjax']} and "
        f"NumPyro {v['numpyro']} on JAX {v['jax']} ({v['jax_backend']} backend, float64), "
        f"the same targets written as JAX log densities, {peers['chains']} chains, "
        f"{n_seeds} seed{'s' if n_seeds > 1 else ''} (medians; a seed that never reached "
        "the threshold counts as +∞, reached/seeds in brackets when not all did). "
        f"`benchmarks/peers.py`{' --quick' if peers['mode'] == 'quick' else ''}; the "
        "metric is that of section 3 (gradient evaluations **per chain**, warmup/tuning "
        f"included, until b² < {peers['threshold']} for x and x² and staying there); "
        "section 3 quotes NUTS and MCLMC figures measured elsewhere, this section "
        "measures them.",
        "",
        f"- **BlackJAX NUTS**: `window_adaptation` (diagonal mass, target acceptance 0.8, "
        f"{peers['nuts_warmup']} steps), then {peers['nuts_draws']} draws"
        + "".join(f" ({v} on {k})" for k, v in peers.get("nuts_draws_overrides", {}).items())
        + "; chains "
        "`jax.vmap`-ed. Gradients = Σ `num_integration_steps` over warmup and draws.",
        f"- **NumPyro NUTS**: `NUTS(potential_fn, target_accept_prob=0.8)` (diagonal "
        f"mass), {peers['nuts_warmup']} warmup steps, the same draws, "
        "`chain_method=\"vectorized\"`. Gradients = Σ `num_steps` (warmup collected with "
        "`collect_warmup=True`).",
        "- **BlackJAX MCLMC**: isokinetic McLachlan integrator (2 gradients per step), "
        "tuned per chain by `mclmc_find_L_and_step_size(num_steps=N)` (its tuning steps, "
        "≈ 0.33 N, counted), then N steps; *small* and *large* N per target below "
        "(as in `peer-numbers.md`).",
        f"- **lcsample**: `lcsample.sample` with {peers['lcsample_draws']} draws: `rmd` = "
        "defaults; `ulmc` = `method=\"ulmc\", target_accuracy=0.1` (2× draws); `rmd-tv` "
        "= `method=\"rmd-tv\"`; `rmd-parallel` = `method=\"rmd-parallel\"` (default "
        "`parallel`; all chains' gradients of a Picard round in one call: more gradients "
        "for fewer sequential rounds, the same draws as `rmd` once converged). Its mode "
        "search and curvature at the mode are counted in full for every chain.",
        "- Peers start from Uniform(−2, 2)^d per chain (NumPyro's and Stan's default); "
        "lcsample from its own initialization (part of its count).",
        "- Order: all lcsample runs come first in the process, then the JAX ones: after "
        "a JAX run, XLA's idle CPU threads slowed lcsample's OpenBLAS calls (mode search, "
        "Laplace eigendecomposition) 5–10× on this 2-core machine, which a user of "
        "lcsample alone would not see.",
        "- **Times** exclude compilation, reported separately: JAX = the trace, lowering "
        "and XLA compile events of `jax.monitoring` during the calls (first seed); "
        "lcsample = a first short call's `timing[\"compile\"]`, the target's numba "
        "compile and the extra start-up of its first mode search (numba compiles once "
        "per target function and process: samplers after the first on a target, and the "
        "N(0, I_d) after d = 10, which share one kernel, show ≈ 0). *to b²* = warmup "
        "(lcsample: initialization + warmup) + the sampling time prorated to the "
        "gradients used up to the crossing. ESS = ArviZ bulk ESS, minimum over "
        f"coordinates (the first {peers['ess_max_coords']:,}), of all draws after "
        "warmup; per gradient = over all chains' sampling gradients; per second = over "
        "the sampling time.",
        "",
        "### Headline: gradients and seconds to b² < 0.01",
        "",
        "Ratios are peer / lcsample `rmd` (above 1: the peer needs more). *MCLMC best* = "
        "the cheaper of its two budgets.",
        "",
        "| target | d | lcsample rmd | BlackJAX NUTS | NumPyro NUTS | MCLMC best (N) "
        "| NUTS / rmd | MCLMC / rmd | rmd s | NUTS s | MCLMC s | NUTS s / rmd s "
        "| MCLMC s / rmd s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    dims = {n: peers["targets"][n]["dim"] for n in names}
    for name in names:
        per = summary[name]
        rmd = per.get("rmd", {})
        nuts = per.get("blackjax_nuts", {})
        best, best_k = _best_mclmc(per)
        budget = peers["targets"][name]["mclmc_num_steps"].get(best_k) if best_k else None
        mclmc = per.get(best_k, {}) if best_k else {}
        rg, rt = rmd.get("median_grads"), rmd.get("median_time_to_accuracy_s")
        ng, nt = nuts.get("median_grads"), nuts.get("median_time_to_accuracy_s")
        mt = mclmc.get("median_time_to_accuracy_s")
        lines.append(
            f"| {name} | {dims[name]:,} | {_grads_cell(rmd) if rmd else '—'} "
            f"| {_grads_cell(nuts) if nuts else '—'} "
            f"| {_grads_cell(per['numpyro_nuts']) if 'numpyro_nuts' in per else '—'} "
            f"| {_g(best)}{f' ({budget:,})' if budget else ''} "
            f"| {_r(ng / rg if ng and rg else None)} | {_r(best / rg if best and rg else None)} "
            f"| {_s(rt)} | {_s(nt)} | {_s(mt)} | {_r(nt / rt if nt and rt else None)} "
            f"| {_r(mt / rt if mt and rt else None)} |")
    samplers = [s for s in peers["samplers"] if any(s in summary[n] for n in names)]
    lines += [
        "",
        "### Gradients per chain to b² < 0.01, every sampler",
        "",
        "| target | d | " + " | ".join(labels.get(s, s) for s in samplers) + " |",
        "|---|---:|" + "---:|" * len(samplers),
    ]
    for name in names:
        cells = [_grads_cell(summary[name][s]) if s in summary[name] else "—"
                 for s in samplers]
        lines.append(f"| {name} | {dims[name]:,} | " + " | ".join(cells) + " |")
    budgets = "; ".join(f"{n}: {t['mclmc_num_steps']['mclmc small']:,} / "
                        f"{t['mclmc_num_steps']['mclmc large']:,}"
                        for n, t in peers["targets"].items())
    lines += ["", f"MCLMC budgets N (small / large): {budgets}.", ""]
    lines += [
        "### Wall time, ESS",
        "",
        "Seconds for 4 chains on the machine's cores (medians over seeds; compile: the "
        "largest). *init*: lcsample's mode search and curvature at the mode (0 for the "
        "peers); *warmup*: lcsample warmup, NUTS window adaptation, MCLMC tuning. *to b²* as above; *ratio* = to b² over lcsample `rmd`'s. ESS/grad "
        "and ESS/s: minimum bulk ESS over coordinates; *×rmd* = over `rmd`'s (above 1: "
        "the peer is better). *grads/s*: sampling gradient evaluations per second, all "
        "chains together (the throughput of the gradient and the step, apart from how "
        "many steps a sampler needs).",
        "",
        "| target | sampler | compile s | init s | warmup s | sampling s | to b² s | ratio "
        "| grads/s | min ESS | ESS/grad | ×rmd | ESS/s | ×rmd | final b² |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        for sampler in samplers:
            s = summary[name].get(sampler)
            if not s or "median_grads" not in s:
                continue
            r = peers["ratios"][name].get(sampler, {})
            lines.append(
                f"| {name} | {labels.get(sampler, sampler)} | {s['compile_s']:.1f} "
                f"| {_s(s.get('median_init_s'))} | {_s(s['median_warmup_s'])} | {_s(s['median_sampling_s'])} "
                f"| {_s(s['median_time_to_accuracy_s'])} | {_r(r.get('time_over_rmd'))} "
                f"| {_g(s.get('median_sampling_grads_per_s'))} "
                f"| {_g(s['median_ess_bulk_min'])} | {s['median_ess_per_grad']:.3g} "
                f"| {_r(r.get('ess_per_grad_over_rmd'))} "
                f"| {_g(s['median_ess_per_s'])} | {_r(r.get('ess_per_s_over_rmd'))} "
                f"| {_e(s['median_final_b2'])} |")
    lost = behind(peers)
    lines += ["", "### Where lcsample `rmd` is behind a peer", ""]
    if lost:
        lines.append("Peer value against `rmd`'s, per target and peer (×: peer / rmd).")
        lines.append("")
        grouped = {}
        for name, sampler, label, a, b in lost:
            fmt = (lambda x: f"{x:.3g}") if "ESS" in label or "seconds" in label else _g
            grouped.setdefault((name, sampler), []).append(
                f"{label} {fmt(a)} vs {'not reached' if b is None else fmt(b)}"
                + (f" (×{a / b:.2f})" if b else ""))
        for (name, sampler), items in grouped.items():
            lines.append(f"- {name}, {labels.get(sampler, sampler)}: " + "; ".join(items))
    else:
        lines.append("- nowhere in this run, on these four measures.")
    notes = []
    for key, why in peers.get("not_available", {}).items():
        notes.append(f"- {key}: not available in this lcsample ({why}).")
    for key, why in peers.get("skipped", {}).items():
        notes.append(f"- {key}: {why}.")
    for key, why in peers.get("failed", {}).items():
        notes.append(f"- {key}: **failed** ({why}).")
    ref = peers.get("poisson_reference")
    if ref:
        notes.append(
            f"- Poisson regression reference (`results/poisson_reference.json`): "
            f"{ref['description']}; min bulk ESS {ref['ess_bulk_min']:,.0f}, max R-hat "
            f"{ref['rhat_max']:.4f}, {ref['divergences']} divergences. Its Monte Carlo "
            f"error adds ≈ 1/ESS ≈ {1 / ref['ess_bulk_min']:.0e} to b², far below "
            f"{peers['threshold']}. Data: `accuracy.poisson_data` (d = {ref['dim']}, "
            f"n = {ref['n']}, synthetic, seed 0).")
    if notes:
        lines += ["", "Notes:", ""] + notes
    if plots:
        lines += [""] + [f"![{p[:-4]}]({p})" for p in plots]
    lines.append("")
    return lines
