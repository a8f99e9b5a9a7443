"""``lcsample.sample``: chains, warmup, seeds, progress and interruption around the core."""

import concurrent.futures
import os
import sys
import threading
import time
import warnings

import numpy as np

from . import __version__
from ._chain import Chain, block_lengths
from .driver import GRADS_PER_STEP, RMD, ULMC, run_chain
from .results import ChainState, SamplingResult
from .target import Target
from .warmup import step_size_for_bias, window_schedule

__all__ = ["sample"]

METHODS = {"rmd": RMD, "ulmc": ULMC}
_SAMPLER_NAMES = {"rmd": "RM-ULMC (Shen-Lee randomized midpoint)", "ulmc": "ULMC (exponential Euler)"}
# Stan's default: initial positions uniform in (-2, 2) on the unconstrained scale.
_INIT_RADIUS = 2.0
_INIT_TRIES = 100


def _positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive_float(value, name):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def _inverse_mass(value, dim):
    if value is None:
        return None
    u = np.array(value, dtype=np.float64)
    if u.ndim == 0:
        u = np.full(dim, float(u))
    if u.shape != (dim,):
        raise ValueError(
            f"inverse_mass_matrix must be a scalar or have shape ({dim},), got {u.shape}"
        )
    if not (np.isfinite(u).all() and (u > 0).all()):
        raise ValueError("inverse_mass_matrix must be positive and finite")
    return u


def _initial_positions(value, chains, dim):
    if value is None:
        return None
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


class _Monitor:
    """Progress counter and stop flag shared by the worker threads."""

    def __init__(self):
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.count = 0

    def add(self, n):
        with self._lock:
            self.count += n


def _run_parallel(task, chains, cores, monitor, bar):
    """Run ``task(chain_index)`` for every chain on ``cores`` threads.

    Ctrl-C sets the stop flag; tasks finish their current compiled block and return what
    they have. Returns the task results and whether the run was interrupted.
    """
    interrupted = False
    with concurrent.futures.ThreadPoolExecutor(max_workers=cores) as pool:
        futures = [pool.submit(task, c) for c in range(chains)]
        pending = set(futures)
        shown = bar.n
        while pending:
            try:
                _, pending = concurrent.futures.wait(pending, timeout=0.1)
            except KeyboardInterrupt:
                interrupted = True
                monitor.stop.set()
            bar.update(monitor.count - shown)
            shown = monitor.count
    return [f.result() for f in futures], interrupted


def _progress_bar(total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not (enabled and sys.stderr.isatty()), unit="step",
                desc="Sampling", smoothing=0.1)


def sample(
    target,
    *,
    draws=1000,
    tune=1000,
    chains=4,
    seed=None,
    method="rmd",
    step_size=None,
    friction=None,
    inverse_mass_matrix=None,
    initial_positions=None,
    thin=1,
    cores=None,
    progressbar=True,
    discard_tuned_samples=True,
    initial_state=None,
):
    """Sample a target with randomized-midpoint underdamped Langevin Monte Carlo.

    Parameters
    ----------
    target : Target
        The log density and its gradient (see :class:`lcsample.Target`).
    draws : int
        Draws kept per chain, after thinning.
    tune : int
        Warmup steps per chain (0 allowed). Tuned values are those not given explicitly.
    chains : int
    seed : int or numpy.random.SeedSequence, optional
        Each chain gets its own stream from ``SeedSequence(seed).spawn(chains)``, so the
        draws do not depend on ``cores``.
    method : {"rmd", "ulmc"}
        ``"rmd"``: Shen–Lee randomized midpoint (2 gradients per step, O(h³) stationary
        variance bias on Gaussians). ``"ulmc"``: exponential-Euler ULMC (1 gradient per
        step, O(h) bias), the baseline.
    step_size, friction : float, optional
        h and γ; used as given when set, otherwise tuned so that the stationary variance
        error along the stiffest direction is about 1 %.
    inverse_mass_matrix : float or array_like, shape (d,), optional
        Diagonal inverse mass u; used as given when set, otherwise adapted from windowed
        variance estimates.
    initial_positions : array_like, shape (d,) or (chains, d), optional
        Default: uniform in (-2, 2) per coordinate, drawn from each chain's stream.
    thin : int
        Steps per kept draw.
    cores : int, optional
        Threads running chains in parallel (default: available CPUs, at most ``chains``).
    progressbar : bool
        Show a progress bar when stderr is a terminal.
    discard_tuned_samples : bool
        Drop the warmup draws (default) or keep them in ``result.warmup``.
    initial_state : ChainState, optional
        ``result.last_state`` of an earlier run: continue it exactly (positions,
        velocities, random streams and tuned parameters). ``seed`` and
        ``initial_positions`` must then be None.

    Returns
    -------
    SamplingResult

    Raises
    ------
    ValueError
        For an invalid argument (the message names it) or a target that fails its check
        at the initial point.

    Notes
    -----
    RM-ULMC is unadjusted: it samples a distribution within a small, controlled bias of
    the target, with no Metropolis correction. A chain whose state becomes non-finite is
    stopped; its remaining draws are NaN and flagged ``diverging``, and a warning names
    the chain and draw. Ctrl-C returns the draws made so far with a warning.

    References
    ----------
    Shen, R. and Lee, Y. T. (2019). The randomized midpoint method for log-concave
    sampling. NeurIPS.
    """
    if not isinstance(target, Target):
        raise TypeError(f"target must be an lcsample.Target, got {type(target).__name__}")
    draws = _positive_int(draws, "draws")
    tune = _positive_int(tune, "tune", minimum=0)
    chains = _positive_int(chains, "chains")
    thin = _positive_int(thin, "thin")
    if cores is None:
        cores = min(chains, len(os.sched_getaffinity(0)))
    cores = _positive_int(cores, "cores")
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    code = METHODS[method]
    step_size = _positive_float(step_size, "step_size")
    friction = _positive_float(friction, "friction")
    dim = target.dim
    u_fixed = _inverse_mass(inverse_mass_matrix, dim)
    x_init = _initial_positions(initial_positions, chains, dim)

    if initial_state is not None:
        if seed is not None or x_init is not None:
            raise ValueError("initial_state continues a run: seed and initial_positions must be None")
        chain_list, seed_attr = _resume(target, code, initial_state, chains, step_size, friction, u_fixed)
    else:
        if seed is not None and not isinstance(seed, np.random.SeedSequence):
            seed = _positive_int(seed, "seed", minimum=0)
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        seed_attr = seq.entropy if seq.entropy < 2**63 else str(seq.entropy)
        chain_list = [
            _start_chain(target, code, np.random.default_rng(child), None if x_init is None else x_init[c],
                         step_size, friction, u_fixed, c)
            for c, child in enumerate(seq.spawn(chains))
        ]

    timing = {"compile": _compile(target, code)}
    monitor = _Monitor()
    bar = _progress_bar(chains * (tune + draws), progressbar)
    try:
        t0 = time.perf_counter()
        tune_step, tune_friction, tune_mass = step_size is None, friction is None, u_fixed is None
        if initial_state is not None:
            tune_step = tune_friction = tune_mass = False
        segments = window_schedule(tune, adapt_mass=tune_mass)
        warm = _allocate(chains, tune, dim, keep_draws=not discard_tuned_samples)
        interrupted = _warmup(chain_list, segments, warm, tune_step, tune_friction, method,
                              cores, monitor, bar)
        timing["warmup"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        out = _allocate(chains, 0 if interrupted else draws, dim, keep_draws=True)

        def sampling_task(c):
            return _sample_chain(chain_list[c], c, thin, out, monitor)

        done, interrupted_now = _run_parallel(sampling_task, chains, cores, monitor, bar)
        interrupted = interrupted or interrupted_now
        timing["sampling"] = time.perf_counter() - t0
    finally:
        bar.close()
    n_kept = min(done) if done else 0
    if interrupted:
        warnings.warn(
            f"sampling interrupted: returning the {n_kept} draws per chain made so far",
            RuntimeWarning, stacklevel=2,
        )
        out = {k: v[:, :n_kept] for k, v in out.items()}
    _warn_divergences(chain_list)

    attrs = {
        "inference_library": "lcsample",
        "inference_library_version": __version__,
        "sampler": _SAMPLER_NAMES[method],
        "method": method,
        "is_calibrated": False,
        "seed": seed_attr,
        "tune": tune,
        "draws": draws,
        "thin": thin,
        "chains": chains,
        "step_size": np.array([ch.h for ch in chain_list]),
        "friction": np.array([ch.gamma for ch in chain_list]),
        "compile_time": timing["compile"],
        "tuning_time": timing["warmup"],
        "sampling_time": timing["sampling"],
    }
    return SamplingResult(
        posterior=out.pop("posterior"),
        sample_stats=out,
        warmup=None if discard_tuned_samples else {"posterior": warm.pop("posterior"), "sample_stats": warm},
        last_state=_last_state(chain_list),
        timing=timing,
        n_grad_evals=np.array([ch.n_grads for ch in chain_list]),
        attrs=attrs,
        var_name=target.name,
    )


def _start_chain(target, code, rng, x0, step_size, friction, u_fixed, c):
    """Check the target at the initial point and set up one chain."""
    if x0 is not None:
        try:
            lp, g = target.check(x0)
        except ValueError as err:
            raise ValueError(f"initial_positions[{c}]: {err}") from err
        tries = 1
    else:
        for tries in range(1, _INIT_TRIES + 1):
            x0 = rng.uniform(-_INIT_RADIUS, _INIT_RADIUS, target.dim)
            try:
                lp, g = target.check(x0)
                break
            except ValueError:
                # Stan's rule: retry a non-finite random start; after the last try the
                # check's own error (which says what is wrong) goes to the user
                if tries == _INIT_TRIES:
                    raise
    u = np.ones(target.dim) if u_fixed is None else u_fixed.copy()
    chain = Chain(target, code, rng, x0, np.zeros(target.dim), g, lp, step_size, friction, u)
    chain.n_grads = tries
    chain.refresh_velocity()
    return chain


def _resume(target, code, state, chains, step_size, friction, u_fixed):
    """Chains that continue ``state`` (a ChainState) exactly."""
    if not isinstance(state, ChainState):
        raise ValueError("initial_state must be the last_state of an earlier lcsample run")
    if state.position.shape != (chains, target.dim):
        raise ValueError(
            f"initial_state holds {state.position.shape[0]} chains of dimension "
            f"{state.position.shape[1]}, expected {chains} of dimension {target.dim}"
        )
    chain_list = []
    for c in range(chains):
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = state.rng_states[c]
        chain_list.append(Chain(
            target, code, rng, state.position[c].copy(), state.velocity[c].copy(),
            state.gradient[c].copy(), float(state.logdensity[c]),
            step_size or float(state.step_size[c]), friction or float(state.friction[c]),
            u_fixed.copy() if u_fixed is not None else state.inverse_mass_matrix[c].copy(),
        ))
    return chain_list, "resumed"


def _compile(target, code):
    """Compile the driver for this target in the main thread; returns seconds taken."""
    d = target.dim
    t0 = time.perf_counter()
    run_chain(target.logdensity_and_grad, target.args, code, 0.1, 1.0, np.ones(d), 1,
              np.zeros(d), np.zeros(d), np.zeros(d), 0.0, np.random.default_rng(0),
              np.empty((0, d)), np.empty(0))
    return time.perf_counter() - t0


def _allocate(chains, n, dim, keep_draws):
    arrays = {
        "lp": np.full((chains, n), np.nan),
        "diverging": np.zeros((chains, n), dtype=bool),
        "step_size": np.full((chains, n), np.nan),
        "friction": np.full((chains, n), np.nan),
        "n_steps": np.zeros((chains, n), dtype=np.int64),
    }
    if keep_draws:
        arrays["posterior"] = np.full((chains, n, dim), np.nan)
    return arrays


def _warmup(chain_list, segments, warm, tune_step, tune_friction, method, cores, monitor, bar):
    """Run the warmup segments; adaptation pools all chains at each segment's end.

    Pooling (as ChEES and MEADS do) gives every chain the same, better-estimated mass,
    friction and step, and it happens in the main thread after all chains reach the
    barrier, so it does not depend on ``cores``. Returns whether the run was interrupted.
    """
    chains, dim = len(chain_list), chain_list[0].x.shape[0]
    tuning = tune_step or tune_friction
    extra = _retune(chain_list, tune_step, tune_friction, method) if tuning else [0] * chains
    start = 0
    for length, ends_window in segments:
        buffers = np.empty((chains, length, dim))

        def task(c):
            return _warmup_segment(chain_list[c], c, start, buffers[c], warm, extra[c],
                                   tune_step, monitor)

        done, interrupted = _run_parallel(task, chains, cores, monitor, bar)
        if interrupted:
            return True
        if ends_window:
            window = np.concatenate([buffers[c, :done[c]] for c in range(chains)])
            n = window.shape[0]
            if n > 1:
                # Stan's regularization: shrink toward 1e-3 with weight 5/(n + 5)
                u = (n / (n + 5.0)) * window.var(axis=0) + 1e-3 * (5.0 / (n + 5.0))
                for chain in chain_list:
                    chain.u = u.copy()
                    chain.refresh_velocity()
        extra = [0] * chains
        if ends_window and tuning:
            extra = _retune(chain_list, tune_step, tune_friction, method)
        start += length
    return False


def _retune(chain_list, tune_step, tune_friction, method):
    """Common friction and step for all chains from their pooled curvature estimates.

    γ = 2√λ_min with the median λ_min over chains (critical damping of the softest
    direction); h from the largest λ_max over chains, so the stationary variance error
    stays within :data:`lcsample.warmup.STIFF_VARIANCE_BIAS` along the stiffest direction.
    Returns the gradient evaluations each chain spent.
    """
    estimates = [chain.curvatures() for chain in chain_list]
    lam_max = max(max(e[1] for e in estimates), 1e-12)
    # Finite differences far from the mode can give tiny or negative Ritz values; the
    # clip keeps γ finite there, and the next window re-estimates it.
    lam_min = min(max(float(np.median([e[0] for e in estimates])), 1e-6 * lam_max), lam_max)
    for chain in chain_list:
        if tune_friction:
            chain.gamma = 2.0 * np.sqrt(lam_min)
        if tune_step:
            chain.h = step_size_for_bias(lam_max, chain.gamma, method)
    return [e[2] for e in estimates]


def _warmup_segment(chain, c, start, buffer, warm, extra_grads, tune_step, monitor):
    """Advance one chain through one warmup segment; returns the steps kept in ``buffer``."""
    length = buffer.shape[0]
    per_step = GRADS_PER_STEP[chain.method]
    lp_buffer = np.empty(length)
    done = 0
    kept = 0
    for n in block_lengths(length):
        if monitor.stop.is_set() or chain.diverged_at is not None:
            break
        n_done, grads = chain.advance(buffer[kept:kept + n], lp_buffer[kept:kept + n])
        sl = slice(start + done, start + done + n_done)
        warm["lp"][c, sl] = lp_buffer[kept:kept + n_done]
        warm["step_size"][c, sl] = chain.h
        warm["friction"][c, sl] = chain.gamma
        warm["n_steps"][c, sl] = per_step
        if "posterior" in warm:
            warm["posterior"][c, sl] = buffer[kept:kept + n_done]
        warm["n_steps"][c, start] += extra_grads if done == 0 else 0
        done += n_done
        kept += n_done
        monitor.add(n)
        if n_done < n:
            # the failed step is recorded as diverging, its position as NaN
            warm["diverging"][c, start + done] = True
            warm["step_size"][c, start + done] = chain.h
            warm["friction"][c, start + done] = chain.gamma
            warm["n_steps"][c, start + done] += grads - n_done * per_step
            if not tune_step:
                chain.diverged_at = ("warmup", start + done)
                break
            # a tuned step that diverges was too large: halve it and carry on from the
            # last finite state; the rest of this block is skipped and flagged with it
            warm["diverging"][c, start + done:start + done + n - n_done] = True
            chain.h *= 0.5
            chain.refresh_velocity()
            done += n - n_done
    return kept


def _sample_chain(chain, c, thin, out, monitor):
    """Draw one chain's samples into ``out``; returns the number of draws made."""
    n_total = out["lp"].shape[1]
    if chain.diverged_at is not None:
        out["diverging"][c, :] = True
        return n_total
    done = 0
    for n in block_lengths(n_total):
        if monitor.stop.is_set():
            return done
        n_done, grads = chain.advance(out["posterior"][c, done:done + n], out["lp"][c, done:done + n], thin)
        out["step_size"][c, done:done + n_done] = chain.h
        out["friction"][c, done:done + n_done] = chain.gamma
        out["n_steps"][c, done:done + n_done] = thin * GRADS_PER_STEP[chain.method]
        done += n_done
        monitor.add(n_done)
        if n_done < n:
            # stopped on a non-finite state: the draws from here on are NaN and flagged
            out["n_steps"][c, done] = grads - n_done * thin * GRADS_PER_STEP[chain.method]
            out["posterior"][c, done:] = np.nan
            out["lp"][c, done:] = np.nan
            out["diverging"][c, done:] = True
            chain.diverged_at = ("sampling", done)
            monitor.add(n_total - done)
            return n_total
    return done


def _warn_divergences(chain_list):
    for c, chain in enumerate(chain_list):
        if chain.diverged_at is not None:
            phase, index = chain.diverged_at
            warnings.warn(
                f"chain {c} reached a non-finite state at {phase} step/draw {index} and was "
                "stopped; its remaining draws are NaN and marked diverging. Try a smaller "
                "step_size or check the target's log density.",
                RuntimeWarning, stacklevel=3,
            )


def _last_state(chain_list):
    return ChainState(
        position=np.array([ch.x for ch in chain_list]),
        velocity=np.array([ch.v for ch in chain_list]),
        gradient=np.array([ch.g for ch in chain_list]),
        logdensity=np.array([ch.lp for ch in chain_list]),
        rng_states=tuple(ch.rng.bit_generator.state for ch in chain_list),
        step_size=np.array([ch.h for ch in chain_list]),
        friction=np.array([ch.gamma for ch in chain_list]),
        inverse_mass_matrix=np.array([ch.u for ch in chain_list]),
    )
