"""The peer samplers of ``peers.py``: BlackJAX NUTS, NumPyro NUTS and BlackJAX MCLMC.

An adapter is built once per target from an :class:`accuracy.Problem` (its lcsample
target written again in JAX by :func:`jax_logdensity`), which compiles nothing yet, and
is called once per seed with the chains' starting points. It returns the raw outputs
that ``peers.summarize_run`` turns into a record: the pooled running b² curves of x and
x², the gradients of warmup and of each draw per chain, the draws of the first
:data:`ESS_MAX_COORDS` coordinates, and the compile, warmup and sampling seconds.

JAX is imported on first use, float64 on, CPU backend, so this module imports without the
peer packages (:func:`missing_packages` names those absent). Also here: the long BlackJAX
NUTS run that makes the Poisson-regression reference moments
(:func:`make_poisson_reference`).
"""

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
import accuracy  # noqa: E402
from common import write_json  # noqa: E402

import lcsample  # noqa: E402
from lcsample.metrics import squared_bias  # noqa: E402

CHAINS = accuracy.CHAINS
NUTS_WARMUP = 1000
#: ESS is computed on at most this many coordinates (the first ones).
ESS_MAX_COORDS = 1000
PACKAGES = ("jax", "blackjax", "numpyro", "arviz")


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


def problem_logdensity(problem):
    """The problem's JAX log density: its own, or that of its built-in target."""
    if problem.jax_logdensity is not None:
        return problem.jax_logdensity()
    return jax_logdensity(problem.target)


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


# ---------------------------------------------------------------------------------------
# The peers


class _VmappedPeer:
    """A BlackJAX sampler with ``jax.vmap``-ed chains, compiled once per target.

    ``warm(keys, x0) -> (state, params, ...)`` tunes every chain; ``sample(key, state,
    params)`` is a :func:`_scan_sampler`. Subclasses say what the warmup cost in gradients
    (:meth:`warmup_grads`) and what it tuned (:meth:`tuned`).
    """

    def __init__(self, problem, warm_one, step, n_draws):
        jax, _ = _jax()
        self.warm = jax.jit(jax.vmap(warm_one))
        self.sample = _scan_sampler(step, n_draws, problem,
                                    min(problem.target.dim, ESS_MAX_COORDS))

    def __call__(self, seed, x0):
        jax, jnp = _jax()
        k_warm, k_draw = jax.random.split(jax.random.key(seed))
        timer = _JaxTimer()
        warm, warm_s = timer(self.warm, jax.random.split(k_warm, CHAINS), jnp.asarray(x0))
        (b2x, b2x2, grads, draws), samp_s = timer(self.sample, k_draw, warm[0], warm[1])
        return {
            "b2": (np.asarray(b2x), np.asarray(b2x2)),
            "warmup_grads": self.warmup_grads(warm),
            "draw_grads": np.asarray(grads).T.astype(float),
            "draws": np.asarray(draws).transpose(1, 0, 2),
            "compile_s": timer.compile_s, "warmup_s": warm_s, "sampling_s": samp_s,
            **self.tuned(warm[1]),
        }


def _median(x):
    return float(np.median(np.asarray(x)))


class BlackjaxNuts(_VmappedPeer):
    """BlackJAX window adaptation + NUTS, chains vmapped; compiled once per target."""

    def __init__(self, problem, n_draws, warmup=NUTS_WARMUP):
        _jax()  # float64 and the CPU backend set before blackjax imports JAX
        import blackjax
        from blackjax.adaptation.base import get_filter_adapt_info_fn

        logp = problem_logdensity(problem)

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

        super().__init__(problem, warm_one, step, n_draws)

    def warmup_grads(self, warm):
        return np.asarray(warm[2]).sum(axis=1).astype(float)

    def tuned(self, params):
        return {"step_size": _median(params["step_size"])}


class Mclmc(_VmappedPeer):
    """BlackJAX MCLMC: per-chain ``mclmc_find_L_and_step_size(num_steps)``, then num_steps."""

    def __init__(self, problem, num_steps):
        jax, jnp = _jax()
        import blackjax

        logp = problem_logdensity(problem)
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

        super().__init__(problem, warm_one, step, num_steps)

    def warmup_grads(self, warm):
        return np.full(CHAINS, 2.0 * self.tuning_steps)

    def tuned(self, params):
        return {"step_size": _median(params[1]), "L": _median(params[0]),
                "tuning_steps": self.tuning_steps}


class NumpyroNuts:
    """NumPyro NUTS (diagonal mass), 4 vectorized chains; one MCMC object per target."""

    def __init__(self, problem, n_draws, warmup=NUTS_WARMUP):
        _jax()  # float64 and the CPU backend set before numpyro imports JAX
        from numpyro.infer import MCMC, NUTS

        logp = problem_logdensity(problem)
        self.mean, self.sd = problem.mean, problem.sd
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
            "b2": squared_bias(samples, self.mean, self.sd),
            "warmup_grads": np.asarray(warm_steps).sum(axis=1).astype(float),
            "draw_grads": np.asarray(extra["num_steps"]).astype(float),
            "draws": samples[:, :, :self.k_ess],
            "compile_s": timer.compile_s, "warmup_s": warm_s, "sampling_s": samp_s,
            "divergent_draws": int(np.asarray(extra["diverging"]).sum()),
            "step_size": _median(self.mcmc.last_state.adapt_state.step_size),
        }


# ---------------------------------------------------------------------------------------
# Poisson reference


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
    write_json(path, ref)
    log(f"  Poisson reference: {chains}x{draws} NUTS draws, min bulk ESS "
        f"{ref['ess_bulk_min']:.0f}, max R-hat {ref['rhat_max']:.4f}, "
        f"{ref['divergences']} divergences, {ref['seconds']:.0f} s -> {path}")
    return ref
