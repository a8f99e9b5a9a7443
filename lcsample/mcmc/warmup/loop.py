"""The warmup loop of an unadjusted sampler: mass windows pooled over chains, two tuning routes.

There is no acceptance rate to tune on, so the step size h and friction γ come from the
target's geometry:

* ``"theory"`` route: Lanczos estimates of the extreme curvatures m and L of the
  preconditioned target (at each chain's position, at the start and after each mass
  window). Friction γ = √m (damping ratio ½ in the softest direction); the step h is the
  largest whose exact stationary variance error on a Gaussian of curvature L, with this γ,
  is ``target_accuracy`` (:func:`~lcsample.mcmc.warmup.step_size.step_size_for_bias`) —
  the Shen–Lee analysis (L-smooth, m-strongly convex) with its unknown constant replaced by
  the exact calculation along the stiffest direction, where an unadjusted sampler's bias
  is largest.
* ``"adaptive"`` route (MCLMC/MEADS style): h is tuned so that the energy error of the
  dynamics, per dimension, meets a target
  (:func:`~lcsample.mcmc.warmup.step_size.energy_error`), and γ = 1/√λ_max of the
  preconditioned covariance of the window's draws (with fewer than 10 draws per dimension,
  √λ_min of the curvature, the same quantity on a Gaussian).

A diagonal inverse mass is updated at the end of each of Stan's windows where the
window's variances differ from it beyond their noise (:func:`~.mass.thresholded_variances`).
A low-rank one (:func:`_low_rank_if_it_pays`) has its variances rescaled the same way,
its correlations kept. A dense one stays the inverse Hessian at the mode (Laplace): windowed
covariance estimates from a few hundred autocorrelated draws made it worse (measured:
preconditioned condition number 1 → 2,300 on a rotated Gaussian in d = 100, 1.7 → 2.8 on
German credit), so its windows only retune h and γ. Pooling the chains at each window's
end (as ChEES and MEADS do) gives every chain the same, better-estimated parameters and
happens in the main thread, so results do not depend on ``cores``.
"""

from typing import NamedTuple

import numpy as np

from ..chain import Request, block_lengths, draw_costs
from ..execution import run_tasks
from .curvature import ritz_pairs
from .mass import InverseMass, Welford, thresholded_variances
from .starts import dense_inverse_mass
from .step_size import chain_law, energy_error, energy_target, step_size_for_bias

__all__ = [
    "MAX_ENERGY_ERROR",
    "TUNING_ROUTES",
    "WarmupOptions",
    "AUTO_THIN_MAX",
    "allocate_records",
    "auto_thin",
    "auto_tune",
    "flag_energy_jumps",
    "run_warmup",
    "warmup_converged",
    "window_schedule",
]

TUNING_ROUTES = ("theory", "adaptive")
# Draws per chain and window kept for the adaptive route's covariance eigenvalue, and the
# draws per dimension it needs (below, the curvature estimate stands in).
_RESERVOIR = 64
_MIN_DRAWS_PER_DIM = 10
# Steps of each energy-error probe and probe rounds per retune.
_PROBE_STEPS = 8
_PROBE_ROUNDS = 3
# Step and friction when no curvature estimate exists yet: 1 % stiff-direction error on a
# unit curvature is h = 0.78 at γ = 2; a tenth of it leaves room for curvature up to ~100.
_FALLBACK_STEP = 0.1
_FALLBACK_FRICTION = 2.0
# Automatic warmup length (tune=None): relaxation times, bounds, and the length when no
# curvature estimate exists.
_AUTO_TUNE_RELAXATIONS = 10.0
AUTO_TUNE_RANGE = (20, 1000)
AUTO_TUNE_DEFAULT = 200
# The warmup is called converged when h moved by less than this factor between the last
# two retunes that follow windows.
_CONVERGED_RATIO = 1.5


class WarmupOptions(NamedTuple):
    """What the warmup tunes and how.

    Attributes
    ----------
    method : str
        "rmd", "ulmc" or "rmd-tv" (tuned as "rmd").
    route : str
        One of :data:`TUNING_ROUTES`.
    target_accuracy : float
        Relative stationary variance error allowed along the stiffest direction.
    tune_step, tune_friction : bool
    mass : str or None
        "diag", "dense" or "low_rank" to adapt that kind of inverse mass, "auto" for a
        diagonal one corrected (low rank, or dense) when the first curvature estimate
        says it pays; None to keep it.
    """

    method: str
    route: str
    target_accuracy: float
    tune_step: bool
    tune_friction: bool
    mass: str | None


def run_warmup(chain_list, tune, opts, keep_draws, cores, monitor, bar, advance_batch=None):
    """Run the warmup, adapting after each window.

    Parameters
    ----------
    chain_list : list of Chain
    tune : int or None
        Warmup steps; None sizes the warmup from the first tuning (:func:`auto_tune`).
    opts : WarmupOptions
    keep_draws : bool
        Keep the warmup positions in the returned records.
    cores, monitor, bar, advance_batch
        As in :func:`lcsample.mcmc.execution.run_tasks`.

    Returns
    -------
    warm : dict of ndarray
        Per-step warmup records (``lp``, ``diverging``, ``step_size``, ``friction``,
        ``n_steps`` and, when kept, ``posterior``), shape (chains, tune, ...).
    history : list of dict
        One entry per retune: step index, step size, friction and the estimates used.
    interrupted : bool
    """
    chains, dim = len(chain_list), chain_list[0].x.shape[0]
    tuning = opts.tune_step or opts.tune_friction
    history = []
    extra = [0] * chains
    mass_kind = opts.mass
    if tuning:
        extra = _retune(chain_list, opts, None, history, 0)
        if mass_kind in ("auto", "low_rank"):
            mass_kind, extra = _low_rank_if_it_pays(chain_list, opts, history, extra)
    if tune is None:
        tune = auto_tune(history)
        bar.total += chains * tune
        bar.refresh()
    warm = allocate_records(chains, tune, dim, keep_draws)
    start = 0
    for length, ends_window in window_schedule(tune, windows=tuning or opts.mass is not None):
        adapt = ends_window and mass_kind in ("diag", "auto", "low_rank")
        stats = [Welford(dim) if adapt else None for _ in range(chains)]
        keep = max(1, length // _RESERVOIR) if ends_window and opts.route == "adaptive" else 0
        tasks = [_segment_task(ch, c, start, length, warm, extra[c], opts.tune_step, monitor,
                               stats[c], keep) for c, ch in enumerate(chain_list)]
        kept, interrupted = run_tasks(chain_list, tasks, cores, monitor, bar, advance_batch)
        if interrupted:
            return warm, history, True
        if adapt:
            _update_mass(chain_list, stats)
        extra = [0] * chains
        if ends_window and tuning:
            reservoir = np.concatenate(kept) if keep else None
            extra = _retune(chain_list, opts, reservoir, history, start + length)
        start += length
    return warm, history, False


def _low_rank_if_it_pays(chain_list, opts, history, extra):
    """Correct the diagonal mass along the directions where it leaves the target ill-conditioned.

    For ``inverse_mass_matrix="low_rank"``, and for ``"auto"`` above AUTO_DENSE_MAX_DIM
    (:mod:`lcsample.mcmc.options`) when the first curvature estimate under the diagonal
    mass gives λ_max/λ_min above :data:`AUTO_LOW_RANK_CONDITION`: Lanczos at the first
    chain's position (:data:`LOW_RANK_ITERATIONS` + 1 gradients, charged to that chain) finds
    the converged Ritz pairs (θ, y) of the whitened Hessian outside [1/c, c],
    c = :data:`LOW_RANK_CUTOFF`, at most :data:`LOW_RANK_MAX` of them, the most extreme
    first. The new mass inverts the curvature along each y (eigenvalue 1/θ) and keeps the
    diagonal elsewhere (:meth:`~.mass.InverseMass.low_rank`); velocities are redrawn and
    h, γ retuned. On the item-response posterior (d = 501: the global mean couples every
    parameter) three or four directions take the condition number from ~360 to ~3.5,
    where the dense Hessian cost 501 gradients and O(d²) per step. Under ``"auto"``, if
    more than LOW_RANK_MAX Ritz values lie outside [1/c, c], the condition number exceeds
    :data:`AUTO_DENSE_CONDITION` and d ≤ AUTO_SWITCH_MAX_DIM, the mass turns dense
    instead (:func:`_dense_switch`): a rotated Gaussian of condition 10³ in d = 240 has
    25 such values in 30, and a correction of 10 left its condition at ~370.

    Returns
    -------
    mass_kind : {"diag", "low_rank", "dense"}
    extra : list of int
        Each chain's gradient evaluations outside its draws, this one's added.
    """
    last = history[-1]
    if not last.get("lam_min", 0) > 0 or (
            opts.mass == "auto" and last["lam_max"] / last["lam_min"] <= AUTO_LOW_RANK_CONDITION):
        return "diag", extra
    first = chain_list[0]
    theta, vectors, residuals, n_grads = ritz_pairs(
        first.target.logdensity_and_gradient, first.x, first.mass, first.rng, LOW_RANK_ITERATIONS)
    first.n_grads += n_grads
    extra[0] += n_grads
    converged = np.flatnonzero((theta > 0) & (residuals <= _RITZ_TOLERANCE * np.abs(theta - 1.0)))
    spread = np.abs(np.log(theta[converged]))
    chosen = converged[np.argsort(-spread)][: int((spread > np.log(LOW_RANK_CUTOFF)).sum())]
    chosen = chosen[:LOW_RANK_MAX]
    off = np.count_nonzero((theta < 1.0 / LOW_RANK_CUTOFF) | (theta > LOW_RANK_CUTOFF))
    if (opts.mass == "auto" and off > LOW_RANK_MAX and first.x.shape[0] <= AUTO_SWITCH_MAX_DIM
            and last["lam_max"] / last["lam_min"] > AUTO_DENSE_CONDITION):
        # more directions are off than the correction takes (a correlation of full rank):
        # the inverse Hessian conditions them all
        return _dense_switch(chain_list, opts, history, extra)
    if chosen.size == 0:
        return "diag", extra
    mass = InverseMass.low_rank(first.mass.matrix, vectors[:, chosen], 1.0 / theta[chosen])
    for chain in chain_list:
        chain.mass = mass
        chain.refresh_velocity()
    last["note_mass"] = f"low_rank ({chosen.size})"  # the retune below is the one the run uses
    again = _retune(chain_list, opts, None, history, 0)
    return "low_rank", [e + a for e, a in zip(extra, again, strict=True)]


def _dense_switch(chain_list, opts, history, extra):
    """Make the inverse Hessian at the first chain's position every chain's mass.

    d gradients, charged to that chain; velocities are redrawn and h, γ retuned. On a
    rotated Gaussian of condition 10³ in d = 240 the preconditioned target becomes N(0, I).
    """
    first = chain_list[0]
    mass, _, _ = dense_inverse_mass(first.target.logdensity_and_gradient, first.x, first.g)
    first.n_grads += first.x.shape[0]
    extra[0] += first.x.shape[0]
    for chain in chain_list:
        chain.mass = mass
        chain.refresh_velocity()
    history[-1]["note_mass"] = "dense"  # the retune below is the one the run uses
    again = _retune(chain_list, opts, None, history, 0)
    return "dense", [e + a for e, a in zip(extra, again, strict=True)]


def window_schedule(tune, windows=True):
    """Split ``tune`` steps into segments, retuning after each.

    Parameters
    ----------
    tune : int
    windows : bool
        Whether segments are adaptation windows (Stan's schedule) or one plain segment.

    Returns
    -------
    list of (int, bool)
        (length, ends_a_window) for consecutive segments summing to ``tune``.
    """
    if tune == 0:
        return []
    if not windows or tune < 20:
        return [(tune, False)]
    if tune < 150:
        init, term = int(0.15 * tune), int(0.1 * tune)
        base = tune - init - term
    else:
        init, term, base = 75, 50, 25
    segments = [(init, False)] if init else []
    start, end = init, tune - term
    window = base
    while start < end:
        # a window that would leave less than twice its successor is merged into it
        if start + 3 * window > end:
            window = end - start
        segments.append((window, True))
        start += window
        window *= 2
    if term:
        segments.append((term, False))
    return segments


def auto_tune(history):
    """Warmup length from the tuning before it: 10 relaxation times of the softest direction.

    With damping near critical the softest direction relaxes in about 1/√m time units, i.e.
    1/(h√m) steps. Ten of them take a chain started within a few posterior standard
    deviations of the mode to stationarity and leave windows to refine the mass. The
    length is kept between 50 and 1000 steps; without an estimate it is 200.
    """
    entry = history[-1] if history else {}  # the mass's last change comes before it
    if "lam_min" not in entry:
        return AUTO_TUNE_DEFAULT
    relaxation = 1.0 / (entry["step_size"] * np.sqrt(entry["lam_min"]))
    return int(np.clip(np.ceil(_AUTO_TUNE_RELAXATIONS * relaxation), *AUTO_TUNE_RANGE))


#: Largest automatic ``thin``: a run's cost per draw stays predictable where the softest
#: direction relaxes slowly, whose remaining autocorrelation ESS reports.
AUTO_THIN_MAX = 10


def auto_thin(history, step_size, friction):
    """Steps per stored draw: half the integrated autocorrelation time of the position.

    Along a direction of curvature m, the position of underdamped Langevin dynamics has
    integrated autocorrelation time 2γ/m in time units (its spectral density at zero over
    its variance), 2γ/(m h) steps; in the softest direction (m = λ_min), that bounds every
    coordinate's. Keeping every ⌊γ/(λ_min h) + ½⌋-th step (at least 1, at most
    :data:`AUTO_THIN_MAX`) gives draws of about ½ ESS each, where one step gave ~0.2:
    with 1,000 draws of 4 chains, R-hat over 100 coordinates crossed 1.01 in 2 of 10
    seeds at ``thin=1`` and in none at 2 (N(0, I₁₀₀) and German credit). Thinning keeps
    the ESS per gradient: consecutive steps are that correlated.

    Parameters
    ----------
    history : list of dict
        The warmup's retunes; the last one with a curvature estimate is used.
    step_size, friction : float
        The chains' h and γ after the warmup.

    Returns
    -------
    int
        1 when no curvature was estimated (h and γ given, a continued run).
    """
    entry = next((e for e in reversed(history) if e.get("lam_min", 0) > 0), None)
    if entry is None:
        return 1
    half_time = friction / (entry["lam_min"] * step_size)
    return int(np.clip(np.floor(half_time + 0.5), 1, AUTO_THIN_MAX))


def allocate_records(chains, n, dim, keep_draws):
    """Per-draw records, shape (chains, n): ``lp``, ``energy``, ``diverging``,
    ``nonfinite``, ``step_size``, ``friction``, ``n_steps``, and ``posterior``
    (chains, n, dim) when ``keep_draws``."""
    arrays = {
        "lp": np.full((chains, n), np.nan),
        "energy": np.full((chains, n), np.nan),
        "diverging": np.zeros((chains, n), dtype=bool),
        "nonfinite": np.zeros((chains, n), dtype=bool),
        "step_size": np.full((chains, n), np.nan),
        "friction": np.full((chains, n), np.nan),
        "n_steps": np.zeros((chains, n), dtype=np.int64),
    }
    if keep_draws:
        arrays["posterior"] = np.full((chains, n, dim), np.nan)
    return arrays


#: Condition number of the diagonally preconditioned target above which ``"auto"`` adds a
#: low-rank correction to the mass (:func:`_low_rank_if_it_pays`), and above which it
#: turns dense instead where too many directions are off (its d gradients then pay).
AUTO_LOW_RANK_CONDITION = 4.0
AUTO_DENSE_CONDITION = 100.0
#: Lanczos iterations of the low-rank search, the whitened curvature ratio beyond which a
#: direction is corrected, and the most directions corrected (nutpie's low-rank
#: adaptation uses a cutoff of 2 and ~10 directions as well).
LOW_RANK_ITERATIONS = 30
LOW_RANK_CUTOFF = 2.0
LOW_RANK_MAX = 10
#: The largest d at which ``"auto"`` turns to the dense inverse Hessian (d gradients once,
#: O(d²) per step) when a low-rank correction would leave the target ill-conditioned.
AUTO_SWITCH_MAX_DIM = 1000
# A Ritz pair is used when its residual is this small against its distance from 1 (the
# correction it makes): an unconverged vector would mix bulk directions into it.
_RITZ_TOLERANCE = 0.1
#: An energy change between consecutive draws beyond this is a divergence (NUTS's and
#: Stan's threshold on a trajectory's energy error).
MAX_ENERGY_ERROR = 1000.0


def flag_energy_jumps(records, before=np.nan):
    """Mark as ``diverging`` the draws whose Hamiltonian jumped by more than 1000.

    ``records``: ``energy`` and ``diverging`` of shape (chains, n), or one chain's (n,);
    ``before``: the Hamiltonian at the draw before the first (NaN: none), so that a run
    recorded block by block is flagged as if recorded whole.

    The Hamiltonian H = −log π + ½ vᵀU⁻¹v of a stationary chain changes between draws by
    O(√d); a jump of :data:`MAX_ENERGY_ERROR` is an integrator on the edge of instability,
    what NUTS users know as a divergence. Non-finite stops are flagged already (and in
    ``nonfinite``).
    """
    energy = records["energy"]
    first = np.broadcast_to(before, energy.shape[:-1])[..., None]
    with np.errstate(invalid="ignore"):
        records["diverging"][...] |= (np.abs(np.diff(energy, axis=-1, prepend=first))
                                      > MAX_ENERGY_ERROR)


def warmup_converged(history):
    """Whether the warmup settled: a usable curvature at the end, and h stable.

    h must stay within :data:`_CONVERGED_RATIO` between the last two retunes that follow
    an adaptation window. The retune at the start (Laplace mass, starting points) is left
    out: the first window is expected to move h, and doing so is not a failure.
    """
    if history and "note" in history[-1]:
        return False
    after_windows = [e for e in history if e["step"] > 0]
    if len(after_windows) < 2:
        return True
    ratio = after_windows[-1]["step_size"] / after_windows[-2]["step_size"]
    return 1.0 / _CONVERGED_RATIO < ratio < _CONVERGED_RATIO


def _update_mass(chain_list, stats):
    """Move the mass's variances to the window's where they differ beyond their noise.

    A low-rank mass keeps its correlations (:meth:`~.mass.InverseMass.rescaled`): the
    diagonal it starts from is a 32-probe estimate, whose errors the directions it
    corrects cannot absorb.
    """
    if any(c.n < 2 for c in stats):
        return
    previous = chain_list[0].mass
    variances = previous.variances()
    mass = previous.rescaled(thresholded_variances(variances, stats) / variances)
    for chain in chain_list:
        chain.mass = mass
        chain.refresh_velocity()


def _retune(chain_list, opts, reservoir, history, step):
    """Set a common γ and h on every chain; returns each chain's gradient evaluations."""
    method = chain_law(opts.method)
    estimates = [chain.curvatures() for chain in chain_list]
    grads = [e[2] for e in estimates]
    lam_max = max(e[1] for e in estimates)
    entry = {"step": step, "lam_max": lam_max}
    if not 0.0 < lam_max < np.inf:
        # no usable curvature seen (e.g. every chain far in a concave tail): keep the
        # current values (at the start, those of a unit-curvature target), which a later
        # window re-estimates; recorded as unconverged
        for chain in chain_list:
            chain.step_size = _FALLBACK_STEP if chain.step_size is None else chain.step_size
            chain.friction = _FALLBACK_FRICTION if chain.friction is None else chain.friction
        entry.update(step_size=chain_list[0].step_size, friction=chain_list[0].friction,
                     note="no positive curvature")
        history.append(entry)
        return grads
    # Finite differences far from the mode can give tiny or negative Ritz values; the
    # clip keeps γ finite there, and the next window re-estimates it.
    lam_min = min(max(float(np.median([e[0] for e in estimates])), 1e-6 * lam_max), lam_max)
    entry["lam_min"] = lam_min
    if opts.tune_friction:
        if opts.route == "theory":
            # damping ratio ½ in the softest direction, not critical damping (2√m): with h
            # set for the same bias, 15–24 % fewer gradients to b² < 0.01 on the benchmark
            # targets and 1.5× the ESS per draw (docs/tuning.md §5)
            gamma = np.sqrt(lam_min)
        elif reservoir is not None and len(reservoir) >= _MIN_DRAWS_PER_DIM * reservoir.shape[1]:
            gamma = 1.0 / np.sqrt(_largest_preconditioned_variance(reservoir, chain_list[0].mass))
        else:
            # MEADS's 1/√λ_max(Σ) with λ_max(Σ) = 1/λ_min(H), exact on a Gaussian: the
            # sample covariance of n ≲ d draws has a top eigenvalue inflated by noise,
            # (1 + √(d/n))² on an isotropic target, which would underdamp the chains
            gamma = np.sqrt(lam_min)
        for chain in chain_list:
            chain.friction = float(gamma)
    if opts.tune_step:
        h = step_size_for_bias(lam_max, chain_list[0].friction, method, opts.target_accuracy)
        if opts.route == "adaptive":
            h, error, probe_grads = _energy_step(chain_list, h, method, opts.target_accuracy)
            grads = [g + p for g, p in zip(grads, probe_grads, strict=True)]
            for chain, p in zip(chain_list, probe_grads, strict=True):
                chain.n_grads += p
            entry["energy_error"] = error
        for chain in chain_list:
            chain.step_size = float(h)
    entry.update(step_size=chain_list[0].step_size, friction=chain_list[0].friction)
    history.append(entry)
    return grads


def _largest_preconditioned_variance(draws, mass):
    """λ_max of the sample covariance of U^{-1/2}-whitened draws, shape (n, d)."""
    white = mass.whiten(draws - draws.mean(axis=0))
    return float(np.linalg.svd(white, compute_uv=False)[0] ** 2 / (draws.shape[0] - 1))


def _energy_step(chain_list, h, method, target_accuracy):
    """Tune h so the energy-error variance per dimension meets its target.

    Each round probes every chain with a few noise-free steps from a fresh velocity,
    pools the energy changes, and rescales h along the power law of the error in h
    measured between rounds (h⁴ for a second-order step to begin with).
    """
    target = energy_target(method, target_accuracy)
    dim = chain_list[0].x.shape[0]
    grads = [0] * len(chain_list)
    points = []
    error = np.nan
    for _ in range(_PROBE_ROUNDS):
        deltas = []
        for c, chain in enumerate(chain_list):
            delta, n = energy_error(chain.target.logdensity_and_gradient, chain.x, chain.mass, h,
                                    method, chain.rng, _PROBE_STEPS)
            deltas.append(delta)
            grads[c] += n
        deltas = np.concatenate(deltas)
        if not np.isfinite(deltas).all():
            h *= 0.5
            continue
        error = float(np.var(deltas, ddof=1) / dim)
        points.append((np.log(h), np.log(max(error, 1e-300))))
        slope = 4.0
        if len(points) >= 2 and abs(points[-1][0] - points[-2][0]) > 1e-3:
            (h0, e0), (h1, e1) = points[-2:]
            slope = float(np.clip((e1 - e0) / (h1 - h0), 2.0, 8.0))
        h *= float(np.clip((target / max(error, 1e-300)) ** (1.0 / slope), 0.25, 4.0))
    return h, error, grads


def _segment_task(chain, c, start, length, warm, extra_grads, tune_step, monitor, stats, keep):
    """Advance one chain through one warmup segment (a task generator).

    Feeds the window's draws to ``stats`` (when adapting the mass) and returns every
    ``keep``-th draw (none when ``keep`` is 0).
    """
    per_step = chain.grads_per_draw(1, corrected=False)
    blocks = block_lengths(length)
    size = blocks[0] if blocks else 0
    buffer, lp_buffer = np.empty((size, chain.x.shape[0])), np.empty(size)
    energy_buffer = np.empty(size)
    kept = []
    done = 0
    for n in blocks:
        if monitor.stop.is_set() or chain.diverged_at is not None:
            break
        n_done, grads = yield Request(buffer[:n], lp_buffer[:n], energy_buffer[:n], 1, False)
        sl = slice(start + done, start + done + n_done)
        warm["lp"][c, sl] = lp_buffer[:n_done]
        warm["energy"][c, sl] = energy_buffer[:n_done]
        warm["step_size"][c, sl] = chain.step_size
        warm["friction"][c, sl] = chain.friction
        costs, failed = draw_costs(grads, n_done, n_done == n, per_step)
        warm["n_steps"][c, sl] = costs
        if "posterior" in warm:
            warm["posterior"][c, sl] = buffer[:n_done]
        if stats is not None:
            stats.update(buffer[:n_done])
        if keep:
            first = (-(start + done)) % keep
            kept.append(buffer[first:n_done:keep].copy())
        warm["n_steps"][c, start] += extra_grads if done == 0 else 0
        done += n_done
        monitor.add(n)
        if n_done < n:
            # the failed step is recorded as diverging, its position as NaN
            warm["diverging"][c, start + done] = warm["nonfinite"][c, start + done] = True
            warm["step_size"][c, start + done] = chain.step_size
            warm["friction"][c, start + done] = chain.friction
            warm["n_steps"][c, start + done] += failed
            if not tune_step:
                chain.diverged_at = ("warmup", start + done)
                break
            # a tuned step that diverges was too large: halve it and carry on from the
            # last finite state; the rest of this block is skipped and flagged with it
            skipped = slice(start + done, start + done + n - n_done)
            warm["diverging"][c, skipped] = warm["nonfinite"][c, skipped] = True
            chain.step_size *= 0.5
            chain.refresh_velocity()
            done += n - n_done
    return np.concatenate(kept) if kept else np.empty((0, chain.x.shape[0]))
