"""``lcsample.sample``: chains, warmup, seeds, progress and interruption around the core."""

import time
import warnings

import numpy as np

from .._blas import one_blas_thread
from .._interrupt import ctrl_c_stops
from .._progress import progress_bar
from .._version import __version__
from ..kernels.compiled import run_chain
from ..kernels.step import RMD_LAGGED
from ..targets.gradient_check import check_gradient
from .advance import AdvanceSpec, lockstep_pays, make_advance
from .chain import Chain, Request, draw_costs
from .concavity import check_concavity, concavity_warning
from .execution import Monitor, run_tasks
from .many_chains import CompiledLockstep
from .options import validate
from .persist import open_stored_run
from .records import MemoryRecords
from .remote import RemoteAdvance
from .results import ChainState, SamplingResult
from .warmup.curvature import extreme_curvatures
from .warmup.loop import (
    WarmupOptions,
    auto_thin,
    flag_energy_jumps,
    run_warmup,
    warmup_converged,
)
from .warmup.mass import InverseMass
from .warmup.modes import several_modes_warning, spread_chains, survey_modes
from .warmup.starts import initial_points
from .warmup.step_size import (
    STIFF_VARIANCE_BIAS,
    chain_law,
    extreme_curvature_warning,
    large_step_warning,
)

__all__ = ["sample"]

# rmd-tv defaults: the corrector runs for time T = _CORRECTOR_TIME/√L in _CORRECTOR_STEPS
# steps (docs/theory.md §9: T ≲ 1/√L, step ≪ T). On a Gaussian at the default accuracy this
# lowers the stiffest direction's variance error from 1.0e-2 to 8.9e-3 and leaves softer
# ones within 2 % of RM-ULMC's (exact, lcsample.corrected_variance); T = 1/√L with 8
# steps would raise it to 1.6e-2, because exponential Euler's own O(h) bias takes over.
_CORRECTOR_TIME = 0.5
_CORRECTOR_STEPS = 16
# Chain states kept per chain during sampling for the concavity check (at block ends),
# and the most states the check takes (its pairs cost O(n²d) time and n² memory: 5,000
# pairs at 4 chains, 65,000 at most; at 1,000 chains all of them would be 3e8 pairs).
_TRAIL = 16
_CONCAVITY_POINTS = 256


class _Trail(list):
    """A chain's states for the concavity check: every other one dropped past ``cap``."""

    def __init__(self, cap):
        super().__init__()
        self.cap = cap

    def keep(self, chain):
        x, lp, g = chain.evaluation_point()
        self.append((x.copy(), lp, g.copy()))
        if len(self) > self.cap:
            del self[::2]


def sample(target, *, draws=1000, tune=None, chains=4, seed=None, method="rmd-lagged",
           step_size=None, friction=None, inverse_mass_matrix="auto", tuning="theory",
           target_accuracy=STIFF_VARIANCE_BIAS, init="mode", initial_positions=None,
           corrector_steps=None, corrector_step_size=None, thin=None, cores=None,
           progressbar=True, discard_tuned_samples=True, compute_convergence_checks=True,
           initial_state=None, picard_steps=None, tolerance=None, max_rounds=None,
           check_gradient=True, executor=None, store=None, resume=False):
    """Sample a target with randomized-midpoint underdamped Langevin Monte Carlo.

    The user guide explains each option at length: docs/tuning.md (warmup, mass, step),
    docs/chains.md (seeds, threads, continuing, Ctrl-C), docs/parallel.md (Picard),
    docs/scaling.md (executors, stores, resuming).

    Parameters
    ----------
    target : Target
        The log density and its gradient (a :class:`lcsample.Target`, jitted or batched).
    draws, chains, thin : int
        Draws kept per chain; chains; steps per kept draw (default: from the warmup, about
        half the softest direction's autocorrelation time, 1 to 10).
    tune : int, optional
        Warmup steps per chain. Default: 10 relaxation times of the softest direction
        (20 to 1000); 0 with ``initial_state``.
    seed : int or numpy.random.SeedSequence, optional
        One stream per chain: draws do not depend on ``cores`` or ``executor``.
    method : {"rmd-lagged", "rmd", "ulmc", "rmd-tv", "rmd-picard"}
        Randomized midpoint predicted from the last midpoint's gradient (1 gradient a step;
        ``lp``, ``energy`` at a draw's last midpoint); Shen–Lee's (2, O(h³) bias); exponential
        Euler (1, O(h)); the paper's log-concave TV algorithm; RM-ULMC in Picard blocks.
    step_size, friction : float, optional
        h and γ in preconditioned units; tuned unless given.
    inverse_mass_matrix : {"auto", "diag", "dense", "low_rank"} or array_like, (d,) or (d, d)
        Adapted diagonal, inverse Hessian at the mode, or a diagonal corrected along its worst
        directions; ``"auto"``: dense to d = 200, above low rank where the diagonal is poor.
    tuning : {"theory", "adaptive"}
        h from the exact stationary bias at the largest curvature, or from the energy error.
    target_accuracy : float
        Relative error of the stationary variance allowed along the stiffest direction.
    init : {"mode", "uniform"}
        Jittered around the mode (L-BFGS), or Stan's uniform(-2, 2).
    initial_positions : array_like or dict, optional
        Starts, shape (d,) or (chains, d) on the unconstrained scale, or named values
        ``{name: value}`` on the variables' supports (a list of dicts: one per chain).
    corrector_steps, corrector_step_size : int, float, optional
        ``"rmd-tv"``: the corrector run per draw (default 16 steps over 0.5/√L).
    cores : int, optional
        Threads (default: CPUs, at most ``chains``); chains share them in turns.
    progressbar, discard_tuned_samples, compute_convergence_checks : bool
        A progress bar on a terminal; drop the warmup draws (else ``result.warmup``); warn
        about R-hat, ESS, divergences and the warmup (:meth:`SamplingResult.diagnostics`).
    initial_state : ChainState, optional
        ``result.last_state`` of an earlier run, continued exactly (``seed`` and
        ``initial_positions`` must be None).
    picard_steps, tolerance, max_rounds : int, float, int, optional
        ``"rmd-picard"``: steps per block (8), the stopping tolerance in inverse-mass
        standard deviations (1e-3; 0 for the exact sequential draws), rounds per block.
    check_gradient : bool
        Compare a user's gradient with finite differences of the log density (16 evaluations).
    executor : dask.distributed.Client or concurrent.futures.Executor, optional
        Advance the chains on its workers: the same draws as a local run.
    store : str, os.PathLike or lcsample.ZarrStore, optional
        A Zarr store the draws stream to, block by block; the result reads them lazily.
    resume : bool
        Continue the interrupted run in ``store`` from its last complete block.

    Returns
    -------
    SamplingResult

    Raises
    ------
    ValueError
        An invalid argument (named), a run too large for memory, a target that fails its
        check at the starting point, or a gradient that disagrees with its log density.

    Notes
    -----
    RM-ULMC is unadjusted: no Metropolis correction, a small controlled bias. A chain that
    reaches a non-finite state is stopped, its remaining draws NaN and ``diverging``.
    Ctrl-C returns a partial result (``attrs["interrupted"]``) that continues exactly.

    References
    ----------
    Shen & Lee (2019), The randomized midpoint method for log-concave sampling, NeurIPS.
    Gupta, Cai & Chen (2025), Faster diffusion sampling with randomized midpoints, ICLR.
    """
    start = time.perf_counter()
    opts = validate(target, locals())  # the arguments as given, checked before any work
    monitor = Monitor()
    with ctrl_c_stops(monitor.stop), one_blas_thread():  # Ctrl-C stops, never loses; _blas
        timing = {"compile": target.compile()}
        stored = open_stored_run(target, opts)  # None without store=; checked before work
        chain_list, seed_attr, init_info = _build_chains(target, opts, timing, stored)
        advance_batch = _backend(target, opts, timing)
        records, history, interrupted = _run(chain_list, opts, advance_batch, init_info,
                                             monitor, timing, (stored, seed_attr))
        result = _assemble(target, opts, chain_list, records, history, timing, seed_attr,
                           init_info, interrupted)
    _finish(result, opts.compute_convergence_checks and not interrupted, start, stored)
    return result


def _build_chains(target, opts, timing, stored):
    """The chains at their starting points; returns (chains, attrs seed, init info).

    A resumed store's chains continue from its last committed states; a fresh store is
    created once the seed is known. The seconds go to ``timing["initialization"]``.
    """
    t0 = time.perf_counter()
    try:
        if stored is not None and stored.resumed:
            seed_attr, init_info, _, _ = stored.saved_info()
            return stored.resumed_chains(target, opts.kind.integrator), seed_attr, init_info
        chain_list, seed_attr, init_info = _chains_at_start(target, opts)
        if stored is not None:
            stored.create(target, opts, seed_attr)
        return chain_list, seed_attr, init_info
    finally:
        timing["initialization"] = time.perf_counter() - t0


def _chains_at_start(target, opts):
    """:func:`_build_chains` untimed."""
    x_init = opts.initial_positions
    init_info = {"init": "resumed" if opts.initial_state is not None else
                 ("initial_positions" if x_init is not None else opts.init), "init_grad_evals": 0}
    code = opts.kind.integrator
    if opts.initial_state is not None:
        chain_list = _resume(target, code, opts.initial_state, opts.chains, opts.step_size,
                             opts.friction, opts.fixed_mass, opts.kind.picard)
        _check_gradient(target, opts, chain_list, init_info)
        return chain_list, "resumed", init_info
    chain_list, seq = _fresh_chains(target, opts, code, init_info)
    _check_gradient(target, opts, chain_list, init_info)
    return chain_list, seq.entropy if seq.entropy < 2**63 else str(seq.entropy), init_info


def _fresh_chains(target, opts, code, init_info):
    """New chains from the seed: starts, first mass, the modes survey; returns (chains, seq).

    The streams: one per chain, one for the initialization, and one for the modes survey
    (spawned from the initialization's seed, so that the first two are as they were
    before the survey existed).
    """
    seed = opts.seed
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    children = seq.spawn(opts.chains + 1)
    rngs = [np.random.default_rng(child) for child in children[:opts.chains]]
    init_rng = np.random.default_rng(children[-1])
    x_init = opts.initial_positions
    starts, evaluated, mass, mode = initial_points(target, opts.init, x_init, rngs, init_rng,
                                                   opts.adapt_mass, opts.fixed_mass, init_info)
    chain_list = [_new_chain(target, code, rngs[c], starts[c],
                             None if evaluated is None else (evaluated[0][c], evaluated[1][c]),
                             opts.step_size, opts.friction, mass, c, x_init is not None)
                  for c in range(opts.chains)]
    if "flat_directions" in init_info:
        warnings.warn(
            f"the log density is flat, or curves upward, along {init_info['flat_directions']} "
            "at its mode: no curvature there to scale the sampler by. If a variable has "
            "neither a prior nor data the posterior is improper (give it a proper prior); "
            "otherwise the target is not log-concave at its mode (reparameterize, or use "
            "NUTS).", RuntimeWarning, stacklevel=5)  # sample -> _build_chains -> ... -> here
    # started around the mode: are there others? (Not for a target concave by construction,
    # nor along a flat direction, where every search ends elsewhere on the same ridge.)
    if target.log_concave:
        init_info.update(modes_found=1, concavity_points=0, concavity_failures=0)
    elif x_init is None and opts.init == "mode" and "flat_directions" not in init_info:
        survey_rng = np.random.default_rng(children[-1].spawn(1)[0])
        _survey_modes(target, chain_list, mode, mass, survey_rng, init_info)
    return chain_list, seq


def _survey_modes(target, chain_list, mode, mass, rng, init_info):
    """Test log-concavity at the starts; spread chains over distinct optima, with a warning."""
    survey = survey_modes(target, mode, mass, np.array([ch.x for ch in chain_list]),
                          np.array([ch.lp for ch in chain_list]),
                          np.array([ch.g for ch in chain_list]), rng)
    init_info.update(concavity_points=survey.n_points, concavity_failures=survey.n_failed,
                     modes_found=len(survey.optima))
    init_info["init_grad_evals"] += survey.n_grads
    if len(survey.optima) > 1:
        init_info["init_grad_evals"] += spread_chains(chain_list, survey.optima, mass, rng,
                                                      target.check)
        # sample -> _build_chains -> _chains_at_start -> _fresh_chains -> here
        warnings.warn(several_modes_warning(survey.optima, mass), RuntimeWarning, stacklevel=6)


def _check_gradient(target, opts, chain_list, init_info):
    """The gradient check at the first chain's start (not of a built-in target's own,
    tested gradient), its evaluations counted."""
    if opts.check_gradient and not target.gradient_tested:
        init_info["init_grad_evals"] += check_gradient(target, chain_list[0].x)


def _backend(target, opts, timing):
    """How chains advance; the seconds spent compiling for it go to ``timing["compile"]``.

    Returns
    -------
    advance_batch : callable or None
        Picard blocks (``"rmd-picard"``), lockstep rows (batched targets), the workers of
        ``executor`` (:class:`~lcsample.mcmc.remote.RemoteAdvance`, which compile there),
        compiled lockstep loops (a jitted target with many chains per core,
        :class:`~lcsample.mcmc.many_chains.CompiledLockstep`), or None: each chain in
        its own thread on the compiled loop.
    """
    t0 = time.perf_counter()
    try:
        spec = AdvanceSpec(opts.kind, opts.picard_steps, opts.tolerance, opts.max_rounds)
        if opts.executor is not None:
            return RemoteAdvance(opts.executor, target, spec)
        advance_batch = make_advance(target, spec)
        if advance_batch is None and lockstep_pays(opts.chains, opts.cores):
            advance_batch = CompiledLockstep(target, opts.cores)
            advance_batch.compile(opts.kind.integrator, opts.kind.corrected)
        elif advance_batch is None:
            _compile(target, opts.kind.integrator, opts.kind.corrected)
        return advance_batch
    finally:
        timing["compile"] += time.perf_counter() - t0


def _run(chain_list, opts, advance_batch, init_info, monitor, timing, storing):
    """Warmup, then sampling, timed into ``timing``; returns (records, history, interrupted).

    ``storing``: (the run's :class:`~lcsample.mcmc.persist.StoredRun` or None, its seed).
    """
    stored, seed_attr = storing
    t0 = time.perf_counter()
    bar = progress_bar(opts.chains * ((opts.tune or 0) + opts.draws), opts.progressbar)
    seen = [_states(chain_list)]  # chain states for the concavity check
    try:
        warm, history, interrupted = _warmup(chain_list, opts, advance_batch, init_info,
                                             monitor, bar, stored)
        if stored is not None and not stored.resumed and not interrupted:
            stored.save_warmup(chain_list, seed_attr, init_info, history,
                               None if opts.discard_tuned_samples else warm,
                               warm["lp"].shape[1])
        seen.append(_states(chain_list))
        timing["warmup"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_total = 0 if interrupted else opts.draws
        records = (stored.records() if stored is not None and not interrupted
                   else MemoryRecords(opts.chains, n_total, chain_list[0].x.shape[0]))
        monitor.reached = 0
        trails = [_Trail(max(1, min(_TRAIL, _CONCAVITY_POINTS // opts.chains)))
                  for _ in chain_list]
        tasks = [_sampling_task(ch, c, opts, records, n_total, monitor, trails[c])
                 for c, ch in enumerate(chain_list)]
        if opts.kind.picard:  # whole blocks, so the draws do not depend on the requests
            advance_batch = advance_batch.carrying()
        done, interrupted_now = run_tasks(chain_list, tasks, opts.cores, monitor, bar,
                                          advance_batch)
    finally:
        bar.close()
    n_kept = n_total
    if interrupted or interrupted_now:
        n_kept = min(done) if done else 0
        warnings.warn(f"sampling interrupted: returning the {n_kept} draws per chain made so "
                      "far (attrs['interrupted'] is True); initial_state=result.last_state "
                      "continues the chains", RuntimeWarning, stacklevel=3)
    _warn_divergences(chain_list)
    # not after several modes (warned about already), nor for Picard blocks solved to a
    # positive tolerance, whose states carry gradients from a nearby point, not their own
    approximate = opts.kind.picard and opts.tolerance > 0
    if init_info.get("modes_found", 1) == 1 and not approximate:
        seen += [tuple(map(np.array, zip(*states, strict=True)))
                 for states in zip(*trails, strict=False)]
        healthy = np.array([ch.diverged_at is None for ch in chain_list])
        _question_concavity(chain_list[0].target, seen, healthy, init_info)
    timing["sampling"] = time.perf_counter() - t0
    return ({"sampling": records.arrays(n_kept), "warmup": warm},
            history, interrupted or interrupted_now)


def _warmup(chain_list, opts, advance_batch, init_info, monitor, bar, stored):
    """The warmup, or its saved outcome when resuming a store.

    Returns
    -------
    (warmup records, tuning history, whether Ctrl-C interrupted)
    """
    if stored is not None and stored.resumed:
        # a store written before thin was saved was made (and matched) with thin given
        _set_thin(chain_list, opts.thin or stored.loaded["info"].get("thin"))
        return stored.warmup_records(), stored.saved_info()[2], False
    resumed = opts.initial_state is not None
    tune = (0 if resumed else None) if opts.tune is None else opts.tune
    warmup_opts = WarmupOptions(opts.method, opts.tuning, opts.target_accuracy,
                                opts.step_size is None and not resumed,
                                opts.friction is None and not resumed,
                                None if resumed else opts.adapt_mass)
    warm, history, interrupted = run_warmup(chain_list, tune, warmup_opts,
                                            not opts.discard_tuned_samples, opts.cores,
                                            monitor, bar, advance_batch)
    if opts.kind.integrator != RMD_LAGGED:  # see _sampling_task
        flag_energy_jumps(warm)
    if opts.step_size is not None:
        _question_step(chain_list, history, opts, init_info)
    _question_tuning(history, chain_list[0])
    saved_thin = getattr(opts.initial_state, "thin", None)
    _set_thin(chain_list, opts.thin or saved_thin
              or auto_thin(history, chain_list[0].step_size, chain_list[0].friction))
    if opts.kind.corrected:
        saved = getattr(opts.initial_state, "corrector", None) or (None, None)
        _set_corrector(chain_list, history, opts.corrector_steps or saved[0],
                       opts.corrector_step_size or saved[1])
    return warm, history, interrupted


def _set_thin(chain_list, thin):
    """Steps per draw of the sampling phase: given, continued, or from the warmup."""
    for chain in chain_list:
        chain.thin = int(thin)


def _states(chain_list):
    """Copies of the chains' last evaluations (x, lp, g), shapes (chains, d), (chains,),
    (chains, d) (:meth:`~.chain.Chain.evaluation_point`)."""
    points = [ch.evaluation_point() for ch in chain_list]
    return tuple(np.array([pt[i] for pt in points]) for i in range(3))


def _question_concavity(target, seen, healthy, init_info):
    """Warn when chain states prove the target is not log-concave (free unless it is).

    ``seen``: (x, lp, g) of every chain, at several times; ``healthy``, shape (chains,):
    the chains that never reached a non-finite state (a stopped chain's last states can
    be near overflow, where the test would only measure rounding).
    """
    x, lp, g = (np.concatenate(parts) for parts in zip(*seen, strict=True))
    use = np.tile(healthy, len(seen))[:len(lp)]
    use &= np.isfinite(lp) & np.isfinite(x).all(axis=1) & np.isfinite(g).all(axis=1)
    use = np.flatnonzero(use)
    if len(use) > _CONCAVITY_POINTS:  # evenly over chains and times
        use = use[np.linspace(0, len(use) - 1, _CONCAVITY_POINTS).round().astype(int)]
    check = check_concavity(target, x[use], lp[use], g[use])
    init_info.update(concavity_pairs=check.n_pairs, concavity_pair_failures=check.n_failed)
    init_info["init_grad_evals"] += check.n_grads
    if check.n_failed:
        warnings.warn(concavity_warning(check), RuntimeWarning,
                      stacklevel=4)  # sample -> _run -> here


def _question_tuning(history, chain):
    """Warn when the warmup's last curvature estimate is far outside the mode's scale."""
    last = next((e for e in reversed(history) if e.get("lam_min", 0) > 0), None)
    if last is None:
        return
    text = extreme_curvature_warning(last["lam_min"], last["lam_max"], chain.step_size,
                                     chain.friction)
    if text is not None:
        warnings.warn(text, RuntimeWarning, stacklevel=5)  # sample -> _run -> _warmup -> here


def _question_step(chain_list, history, opts, init_info):
    """Warn when a user-given step is far too large for the curvature the target shows.

    The curvature is the warmup's last estimate, or one taken here at the first chain's
    position with a generator of its own (the chains' streams are left as they are); its
    evaluations count in ``init_info["init_grad_evals"]``.
    """
    lam_max = next((e["lam_max"] for e in reversed(history) if e.get("lam_max", 0) > 0), None)
    if lam_max is None:
        chain = chain_list[0]
        _, lam_max, grads = extreme_curvatures(chain.target.logdensity_and_gradient, chain.x,
                                               chain.mass, np.random.default_rng(0))
        init_info["init_grad_evals"] += grads
    if not 0.0 < lam_max < np.inf:
        return
    text = large_step_warning(lam_max, opts.step_size, chain_list[0].friction,
                              chain_law(opts.method), opts.target_accuracy)
    if text is not None:
        warnings.warn(text, RuntimeWarning, stacklevel=5)  # sample -> _run -> _warmup -> here


def _attrs(opts, chain_list, history, timing, seed_attr, init_info, tune, interrupted):
    """Everything the run chose, for ``result.attrs`` and ArviZ."""
    converged = warmup_converged(history)
    attrs = {
        "inference_library": "lcsample", "inference_library_version": __version__,
        "interrupted": interrupted,
        "sampler": opts.kind.sampler, "method": opts.method, "is_calibrated": False,
        "seed": seed_attr, "tune": tune, "draws": opts.draws, "thin": chain_list[0].thin,
        "chains": opts.chains, "tuning": opts.tuning, "target_accuracy": opts.target_accuracy,
        "inverse_mass_matrix": chain_list[0].mass.kind,
        **init_info,
        "step_size": np.array([ch.step_size for ch in chain_list]),
        "friction": np.array([ch.friction for ch in chain_list]),
        "warmup_converged": converged,
        # the warmup's retunes, one entry each (the full records: result.tuning_history)
        **{f"tuning_{key}": np.array([e.get(key, np.nan) for e in history], dtype=float)
           for key in ("step", "step_size", "friction", "lam_min", "lam_max")},
        "compile_time": timing["compile"], "tuning_time": timing["warmup"],
        "sampling_time": timing["sampling"],
    }
    if not converged:
        attrs["warmup_note"] = (
            "the step size changed by more than a factor 1.5 between the last two windows, "
            "or no positive curvature was found; increase tune"
        )
    if opts.kind.corrected:
        attrs["corrector_steps"], attrs["corrector_step_size"] = chain_list[0].corrector
    if opts.kind.picard:
        attrs.update(picard_steps=opts.picard_steps, tolerance=opts.tolerance,
                     n_rounds=np.array([ch.n_rounds for ch in chain_list]),
                     picard_blocks=np.array([ch.picard_blocks for ch in chain_list]),
                     picard_unconverged_blocks=np.array(
                         [ch.picard_unconverged for ch in chain_list]))
    return attrs


def _assemble(target, opts, chain_list, records, history, timing, seed_attr, init_info,
              interrupted):
    """The :class:`SamplingResult` of a run."""
    out, warm = records["sampling"], records["warmup"]
    tune = warm["lp"].shape[1]
    return SamplingResult(
        posterior=out.pop("posterior"),
        sample_stats=out,
        warmup=(None if opts.discard_tuned_samples
                else {"posterior": warm.pop("posterior"), "sample_stats": warm}),
        last_state=_last_state(chain_list),
        timing=timing,
        n_grad_evals=np.array([ch.n_grads for ch in chain_list]),
        attrs=_attrs(opts, chain_list, history, timing, seed_attr, init_info, tune,
                     interrupted),
        structure=target.structure,
        tuning_history=history,
        store=None if opts.store is None else opts.store.path,
    )


def _finish(result, check, start, stored):
    """The convergence checks when ``check``; the last entries of ``result.timing``; the
    attributes of a stored run that finished, in its store.

    ``timing["checks"]`` is their time and ``timing["total"]`` the wall time of
    ``sample`` from its call: the parts add up to it but for the validation of the
    arguments and the assembly of the result.
    """
    t0 = time.perf_counter()
    if check:
        _check_convergence(result)
    result.timing["checks"] = time.perf_counter() - t0
    result.timing["total"] = time.perf_counter() - start
    result.attrs.update(checks_time=result.timing["checks"], total_time=result.timing["total"])
    if stored is not None and not result.attrs["interrupted"]:
        stored.store.finish(result.attrs)


def _check_convergence(result):
    """Warn, in one block, about what the convergence checks found.

    The checks never cost the run: if they fail (memory included), the result is returned
    with a warning that says so.
    """
    from .diagnostics import warn_convergence

    try:
        found = result.diagnostics()
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - never lose the draws
        warnings.warn(
            f"the convergence checks failed or were interrupted ({type(err).__name__}: "
            f"{err}); the draws are returned unchecked. Call result.diagnostics() to retry, "
            "or pass compute_convergence_checks=False.", RuntimeWarning,
            stacklevel=4)  # sample -> _finish -> here
        return
    # which coordinates were checked is worth saying only next to a problem
    if any(d.kind != "coverage" for d in found):
        warn_convergence(found, stacklevel=4)  # sample -> _finish -> here


def _new_chain(target, code, rng, x0, evaluated, step_size, friction, mass, c, user_given):
    """Set up one chain at ``x0``, checking the target there unless ``evaluated`` (lp, g)."""
    try:
        lp, g = evaluated or target.check(x0)
    except ValueError as err:
        if user_given:
            raise ValueError(f"initial_positions[{c}]: {err}") from err
        raise
    chain = Chain(target, code, rng, np.array(x0, dtype=np.float64), np.zeros(target.dim), g, lp,
                  step_size, friction, mass)
    chain.n_grads = 1
    chain.refresh_velocity()
    return chain


def _resume(target, code, state, chains, step_size, friction, fixed_mass, picard):
    """Chains that continue ``state`` (a ChainState) exactly.

    The steps a Picard block solved beyond the earlier run's end are taken first when the
    run continues by ``rmd-picard`` with the same step, friction and mass; otherwise they
    are dropped (their random numbers stay used).
    """
    if not isinstance(state, ChainState):
        raise ValueError("initial_state must be the last_state of an earlier lcsample run")
    if state.position.shape != (chains, target.dim):
        raise ValueError(
            f"initial_state holds {state.position.shape[0]} chains of dimension "
            f"{state.position.shape[1]}, expected {chains} of dimension {target.dim}"
        )
    masses = {}  # chains with equal matrices share one InverseMass (and advance together)
    chain_list = []
    for c in range(chains):
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = state.rng_states[c]
        matrix = state.inverse_mass_matrix[c]
        mass = fixed_mass or masses.setdefault(matrix.tobytes(), InverseMass(matrix))
        chain_list.append(Chain(
            target, code, rng, state.position[c].copy(), state.velocity[c].copy(),
            state.gradient[c].copy(), float(state.logdensity[c]),
            step_size or float(state.step_size[c]), friction or float(state.friction[c]), mass,
        ))
        chain_list[-1].forget_evaluation_point()
    same = picard and step_size is None and friction is None and fixed_mass is None
    if same and state.pending is not None:
        for chain, pending in zip(chain_list, state.pending, strict=True):
            chain.pending = pending
    return chain_list


def _set_corrector(chain_list, history, steps, step_size):
    """Corrector (steps, step size) per draw for rmd-tv, defaults from the tuned curvature."""
    steps = steps or _CORRECTOR_STEPS
    if step_size is None:
        lam_max = next((e["lam_max"] for e in reversed(history) if e.get("lam_max", 0) > 0), None)
        if lam_max is None:
            lam_max = chain_list[0].curvatures()[1]
        step_size = _CORRECTOR_TIME / np.sqrt(lam_max) / steps
    for chain in chain_list:
        chain.corrector = (int(steps), float(step_size))


def _compile(target, code, corrected):
    """Compile the chain loop(s) for this target in the main thread."""
    d = target.dim
    for corrector in ((None, (1, 0.1)) if corrected else (None,)):
        run_chain(target.logdensity_and_grad, target.args, code, 0.1, 1.0,
                  InverseMass(np.ones(d)).kernel_args, corrector, 1, np.zeros(d), np.zeros(d),
                  np.zeros(d), np.zeros(d), 0.0, np.random.default_rng(0), np.empty((0, d)),
                  np.empty(0), np.empty(0))


def _sampling_task(chain, c, opts, records, n_total, monitor, trail):
    """Draw one chain's ``n_total`` samples into ``records`` (a task generator); returns the
    draws made.

    Blocks the records hold already (a resumed store) are skipped. The chain's state after
    each block goes to ``trail`` (a :class:`_Trail`), for the concavity check.
    """
    if chain.diverged_at is not None:  # stopped during the warmup
        records.stop(c, 0, chain)
        return n_total
    thin, corrected = chain.thin, opts.kind.corrected
    per_draw = chain.grads_per_draw(thin, corrected)
    done, energy = 0, records.energy_before(c)
    for n in records.blocks(n_total, thin):
        if done < records.start[c]:  # written by the run this one resumes
            done += n
            continue
        # on Ctrl-C every chain stops at the furthest draw any chain asked for: the chains
        # end level, so the partial result's last state continues them exactly
        if monitor.stop.is_set() and done >= monitor.reached:
            return done
        monitor.reach(done + n)
        rows = records.rows(c, done, n)
        n_done, grads = yield Request(rows["posterior"], rows["lp"], rows["energy"], thin,
                                      corrected)
        rows["step_size"][:n_done], rows["friction"][:n_done] = chain.step_size, chain.friction
        rows["n_steps"][:n_done], failed = draw_costs(grads, n_done, n_done == n, per_draw)
        if chain.integrator != RMD_LAGGED:
            # the lagged step's energy is at its midpoints, which all coordinates reach at
            # one α: it swings by O(d) between draws, so a jump there is no divergence
            flag_energy_jumps({k: rows[k][:n_done] for k in ("energy", "diverging")}, energy)
        energy = rows["energy"][n_done - 1] if n_done else energy
        monitor.add(n_done)
        trail.keep(chain)
        if n_done < n:
            # stopped on a non-finite state: the draws from here on are NaN and flagged
            rows["n_steps"][n_done] = failed
            rows["posterior"][n_done:], rows["lp"][n_done:] = np.nan, np.nan
            rows["diverging"][n_done:] = rows["nonfinite"][n_done:] = True
            records.commit(c, done, rows, done + n, chain)
            records.stop(c, done + n, chain)
            chain.diverged_at = ("sampling", done + n_done)
            monitor.add(n_total - done - n_done)
            return n_total
        records.commit(c, done, rows, done + n_done, chain)
        done += n_done
    return done


def _warn_divergences(chain_list):
    for c, chain in enumerate(chain_list):
        if chain.diverged_at is not None:
            phase, index = chain.diverged_at
            # the lagged step evaluates midpoints only: its draws just before the stop
            # may lie where the log density is non-finite
            lagged = (" method='rmd-lagged' does not evaluate the target at its draws: on a "
                      "target that is non-finite somewhere (a support edge) use method='rmd', "
                      "which does." if chain.integrator == RMD_LAGGED else "")
            warnings.warn(
                f"chain {c} reached a non-finite state at {phase} step/draw {index} and was "
                "stopped; its remaining draws are NaN and marked diverging. Try a smaller "
                f"step_size or check the target's log density.{lagged}",
                RuntimeWarning, stacklevel=4,  # sample -> _run -> here
            )


def _last_state(chain_list):
    return ChainState(
        position=np.array([ch.x for ch in chain_list]),
        velocity=np.array([ch.v for ch in chain_list]),
        gradient=np.array([ch.g for ch in chain_list]),
        logdensity=np.array([ch.lp for ch in chain_list]),
        rng_states=tuple(ch.rng.bit_generator.state for ch in chain_list),
        step_size=np.array([ch.step_size for ch in chain_list]),
        friction=np.array([ch.friction for ch in chain_list]),
        inverse_mass_matrix=np.array([ch.mass.matrix for ch in chain_list]),
        corrector=chain_list[0].corrector,
        thin=chain_list[0].thin,
        pending=(tuple(ch.pending for ch in chain_list)
                 if any(ch.pending is not None for ch in chain_list) else None),
    )
