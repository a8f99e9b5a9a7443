"""Convergence checks after sampling, in the spirit of PyMC's ``run_convergence_checks``.

:func:`convergence_checks` looks at a :class:`~lcsample.SamplingResult` and returns one
:class:`Diagnostic` per problem found:

``"rhat"``
    rank-normalized split R-hat above a threshold (default 1.01) for some coordinate;
``"ess"``
    bulk effective sample size per chain below a threshold (default 100);
``"divergences"``
    draws flagged ``diverging`` during sampling;
``"stuck"``
    chains whose draws are all the same point;
``"warmup"``
    warmup reported that it did not converge (``attrs["warmup_converged"]``), or the
    log density ``lp`` drifts between the start and the end of the draws.

R-hat and ESS are the rank-normalized split R-hat and the bulk ESS of
:mod:`lcsample.mcmc.convergence`, equal to ArviZ's (``arviz.rhat(method="rank")``,
``arviz.ess(method="bulk")``) to rounding, so the numbers agree with ``arviz.summary``
without importing ArviZ after every run. :func:`warn_convergence` turns the list into one
``RuntimeWarning``.

Each check is a private function with one job, each returning a list of
:class:`Diagnostic`; :func:`convergence_checks` prepares the arrays, then calls, in this
order, ``_check_rhat_ess_possible`` (too few draws or finite chains), ``_check_coverage``
(coordinate subset), ``_check_rhat``, ``_check_ess``, ``_check_divergences``,
``_check_warmup_converged`` and ``_check_lp_drift``, and concatenates their items. The
user guide is ``docs/quickstart.md`` (section "Convergence checks"); ``docs/chains.md``
covers the two ArviZ lines.

References
----------
Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
Rank-normalization, folding, and localization: an improved R-hat for assessing convergence
of MCMC. Bayesian Analysis 16(2), 667-718. (Rank-normalized split R-hat and bulk ESS.)
Geweke, J. (1992). Evaluating the accuracy of sampling-based approaches to the calculation
of posterior moments. In Bayesian Statistics 4, 169-193. (The lp drift z-score.)
"""

import warnings
from typing import NamedTuple

import numpy as np

from .convergence import bulk_ess, rank_rhat

__all__ = [
    "DRIFT_Z_THRESHOLD",
    "KINDS",
    "Diagnostic",
    "convergence_checks",
    "lp_drift_zscore",
    "warn_convergence",
]

# The values of ``Diagnostic.kind``
KINDS = ("rhat", "ess", "divergences", "warmup", "coverage", "stuck")

# Coordinates named in a message; ``Diagnostic.variables`` always lists all of them.
_N_NAMED = 5
# Coordinates per statistic call, at most: each call's working arrays (split and ranked
# copies, the zero-padded FFT) take several times its block of draws, so blocks of at
# most d/64 coordinates keep the checks' memory near a tenth of the posterior's.
_BLOCK = 64

# |z| above which the lp drift check flags. The z-score is close to N(0, 1) for a stationary
# chain whose autocorrelation time is well below the batch length, but the batch-means
# standard error is estimated (about 10 batches per chain, so t-like tails) and is biased
# low when the batches are only a few autocorrelation times long (z inflated by ~10 % at an
# autocorrelation time of 20 draws with 50-draw batches). The check is run once per run
# and a false alarm points at the wrong cause, so the false-alarm rate should stay well below
# 1e-3: |z| > 4 has a normal tail probability of 6e-5, and still about 2e-3 if the standard
# error is underestimated by 30 %. A transient is still caught: lp lower by 0.5 of its sd
# over the first 10 % of 4 chains x 1000 draws gives z ~ 9 (tests/test_diagnostics.py).
DRIFT_Z_THRESHOLD = 4.0


class Diagnostic(NamedTuple):
    """One problem (or skipped check) found by :func:`convergence_checks`.

    Attributes
    ----------
    kind : {"rhat", "ess", "divergences", "warmup", "coverage", "stuck"}
        Which check produced it.
    message : str
        Human-readable description, naming the worst coordinates and values.
    variables : tuple of int
        Coordinate indices concerned, worst first (``"rhat"`` and ``"ess"``; empty
        otherwise).
    values : tuple of float
        The statistic for each entry of ``variables``: R-hat for ``"rhat"``, bulk ESS summed
        over the chains used for ``"ess"``. ``(n_draws_flagged,)`` for ``"divergences"``,
        ``(z,)`` for the lp drift ``"warmup"`` item, empty otherwise.
    chains : tuple of int
        ``"divergences"``: the chains with flagged draws. ``"rhat"``, ``"ess"`` and the lp
        drift item: the chains the statistic was computed on (chains with non-finite draws
        are left out).
    level : {"warn", "info"}
        ``"warn"`` for a problem, ``"info"`` for a check that could not be run (for
        example R-hat with a single chain).
    """

    kind: str
    message: str
    variables: tuple = ()
    values: tuple = ()
    chains: tuple = ()
    level: str = "warn"


#: Draws the checks may read from a lazy (stored) posterior: 64 MiB of float64 (the rank
#: normalizations hold a few copies of them at once).
_LAZY_CHECK_BYTES = 2**26


def _statistic(draws, statistic):
    """Rank-normalized split R-hat or bulk ESS per coordinate (Vehtari et al. 2021).

    Parameters
    ----------
    draws : ndarray, shape (chains, draws, d)
        Finite draws; ``draws >= 4``, and ``chains >= 2`` for ``"rhat"``.
    statistic : {"rhat", "ess"}
        :func:`~lcsample.mcmc.convergence.rank_rhat` or
        :func:`~lcsample.mcmc.convergence.bulk_ess`, equal to ArviZ's ``rhat(method="rank")``
        and ``ess(method="bulk")``.

    Returns
    -------
    ndarray, shape (d,)
        The statistic per coordinate; the ESS is summed over chains. NaN where it is
        undefined (R-hat of a constant coordinate).
    """
    function = {"rhat": rank_rhat, "ess": bulk_ess}[statistic]
    # in blocks of coordinates: ranking copies what it is given, so a block bounds the
    # memory the check takes, whatever the size of the posterior
    block = max(1, min(_BLOCK, draws.shape[2] // 64))
    values = [function(draws[:, :, start:start + block])
              for start in range(0, draws.shape[2], block)]
    return np.concatenate(values) if values else np.empty(0)


def lp_drift_zscore(lp, first=0.1, last=0.5, n_batches=10):
    """Geweke-type z-score of the change in mean log density over the run.

    Compares the mean of ``lp`` over the first ``first`` fraction of the draws with the
    mean over the last ``last`` fraction, per chain, and pools the differences over chains.
    The variance of each segment mean is ``sigma2 / n_segment``, where the asymptotic
    variance ``sigma2`` of each chain is estimated by batch means of its *last* segment
    (``n_batches`` batches). Under stationarity both segments share ``sigma2``; estimating
    it from the longer, later segment allows long batches (autocorrelation affects the
    estimate less) and keeps a transient in the first segment from inflating it.

    Parameters
    ----------
    lp : array_like, shape (chains, draws)
        Finite log densities.
    first, last : float
        Fractions of the draws in the early and late segments (``first + last <= 1``).
    n_batches : int
        Batches in the late segment of each chain.

    Returns
    -------
    float
        ``z = mean_c(mean_late - mean_early) / se``; positive when ``lp`` rose. NaN when
        a segment is too short (fewer than 10 draws early, or fewer than 2 draws per batch
        late) or ``lp`` is constant.
    """
    lp = np.asarray(lp, dtype=float)
    if lp.ndim != 2:
        raise ValueError(f"lp must have shape (chains, draws), got {lp.shape}")
    if not (0 < first and 0 < last and first + last <= 1):
        raise ValueError("need 0 < first, 0 < last and first + last <= 1")
    n_chains, n_draws = lp.shape
    n_early, n_late = int(first * n_draws), int(last * n_draws)
    batch = n_late // n_batches
    if n_chains == 0 or n_early < 10 or batch < 2:
        return float("nan")
    early = lp[:, :n_early].mean(axis=1)
    late = lp[:, n_draws - n_late:]
    late_mean = late.mean(axis=1)
    # batch means of the last n_batches * batch draws of each chain
    tail = late[:, late.shape[1] - n_batches * batch:]
    means = tail.reshape(n_chains, n_batches, batch).mean(axis=2)
    sigma2 = batch * means.var(axis=1, ddof=1)  # (chains,) asymptotic variance per draw
    var_diff = sigma2 * (1.0 / n_early + 1.0 / n_late)
    se = np.sqrt(var_diff.sum()) / n_chains
    if not se > 0:
        return float("nan")
    return float((late_mean - early).mean() / se)


def _names(labels, indices, values, fmt):
    """Name the first few coordinates with their values, for a message.

    Parameters
    ----------
    labels : sequence of str or None
        A name per coordinate of the run (``Structure.labels()``); None: ``x[i]``.
    indices : ndarray of int, shape (k,)
        Coordinate indices, worst first.
    values : ndarray of float, shape (k,)
        The statistic of each coordinate.
    fmt : str
        Format specification of the values.

    Returns
    -------
    str
        ``"tau = 1.234, theta[0] = 1.020"``, ending in ``" and 2 more"`` beyond
        ``_N_NAMED``.
    """
    pairs = zip(indices[:_N_NAMED], values[:_N_NAMED], strict=True)
    shown = ", ".join(f"{labels[i] if labels is not None else f'x[{i}]'} = {v:{fmt}}"
                      for i, v in pairs)
    more = len(indices) - _N_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def _chain_list(chains):
    """``"0, 2, 3"`` for chains ``(0, 2, 3)``."""
    return ", ".join(str(c) for c in chains)


def _left_out_note(chains, n_chains):
    """Message suffix naming the chains a statistic was not computed on.

    Parameters
    ----------
    chains : tuple of int
        Chains the statistic was computed on (those with all draws finite).
    n_chains : int
        Chains in the run.

    Returns
    -------
    str
        Empty when ``chains`` holds every chain.
    """
    if len(chains) == n_chains:
        return ""
    left_out = _chain_list(c for c in range(n_chains) if c not in chains)
    return (f" (computed on chains {_chain_list(chains)}; left out chain(s) {left_out} "
            "with non-finite draws)")


def _finite_chains(posterior):
    """Chains whose draws are all finite.

    Parameters
    ----------
    posterior : ndarray, shape (chains, draws, d)

    Returns
    -------
    tuple of int
        Their indices, in increasing order.
    """
    # chain by chain, so the temporary is one chain's mask, not the whole posterior's
    return tuple(c for c in range(posterior.shape[0]) if np.isfinite(posterior[c]).all())


def _checked_draws(posterior, chains, columns):
    """The draws R-hat and ESS look at: a view of the posterior whenever possible.

    All chains and all coordinates: the posterior itself; a contiguous run of chains or
    coordinates: a slice. Only a scattered choice (a diverged chain in the middle, a
    coordinate subset) copies, and a coordinate subset is at most ``max_coordinates``.

    Returns
    -------
    ndarray, shape (len(chains), draws, len(columns))
    """
    first, last = chains[0], chains[-1]
    rows = (slice(first, last + 1) if last - first + 1 == len(chains) else list(chains))
    picked = posterior[rows]
    if columns.size and columns[-1] - columns[0] + 1 == columns.size:
        return picked[:, :, columns[0]:columns[-1] + 1]
    return picked[:, :, columns]


def _loaded(result, max_coordinates):
    """The posterior in memory, the coordinates to check in it, and the labels of its own.

    An in-memory posterior comes as it is. A lazy one (Dask arrays over a store, from
    ``store=``) is read for the checked coordinates only, and at most as many as fit in
    :data:`_LAZY_CHECK_BYTES`: a store larger than memory is checked without loading it.

    Returns
    -------
    posterior : ndarray, shape (chains, draws, d) or (chains, draws, k)
    columns : ndarray of int
        The coordinates to check, indices into ``posterior``'s last axis.
    labels : list of str
        A name per coordinate of ``posterior``.
    """
    labels = result.structure.labels()
    if isinstance(result.posterior, np.ndarray):
        posterior = np.asarray(result.posterior, dtype=float)
        return posterior, _coordinate_subset(posterior.shape[2], max_coordinates), labels
    chains, draws, dim = result.posterior.shape
    fit = max(1, _LAZY_CHECK_BYTES // (8 * chains * max(draws, 1)))
    picked = _coordinate_subset(dim, fit if max_coordinates is None else min(fit,
                                                                           max_coordinates))
    posterior = np.asarray(result.posterior[:, :, picked], dtype=float)
    return posterior, np.arange(picked.size), [labels[i] for i in picked]


def _coordinate_subset(dim, max_coordinates):
    """Coordinates R-hat and ESS are computed on: all, or an evenly spaced subset.

    Parameters
    ----------
    dim : int
        Number of coordinates.
    max_coordinates : int or None
        Keep at most this many (first and last included); None for all of them.

    Returns
    -------
    ndarray of int, shape (k,)
        Increasing coordinate indices, ``k = min(dim, max_coordinates)``.
    """
    if max_coordinates is None or dim <= max_coordinates:
        return np.arange(dim)
    return np.unique(np.linspace(0, dim - 1, int(max_coordinates)).round().astype(int))


def _check_rhat_ess_possible(n_draws, chains):
    """``"info"`` item when R-hat and ESS cannot be computed at all.

    Parameters
    ----------
    n_draws : int
        Draws per chain.
    chains : tuple of int
        Chains with all draws finite.

    Returns
    -------
    list of Diagnostic
        One ``"rhat"`` info item when ``n_draws < 4`` or ``chains`` is empty, else empty.
    """
    if n_draws >= 4 and chains:
        return []
    reason = "fewer than 4 draws" if n_draws < 4 else "no chain has all draws finite"
    return [Diagnostic("rhat", f"R-hat and ESS not computed: {reason}.", level="info")]


def _check_coverage(n_checked, dim):
    """``"coverage"`` info item when R-hat and ESS are computed on a subset of coordinates.

    Parameters
    ----------
    n_checked : int
        Coordinates checked (the size of :func:`_coordinate_subset`'s answer).
    dim : int
        Coordinates in the run.

    Returns
    -------
    list of Diagnostic
        Empty when ``n_checked == dim``.
    """
    if n_checked >= dim:
        return []
    return [Diagnostic(
        "coverage",
        f"R-hat and ESS computed on {n_checked} of {dim} coordinates (evenly "
        "spaced); result.diagnostics(max_coordinates=None) checks all of them.",
        level="info",
    )]


def _rhat_advice(attrs):
    """What to do about a high R-hat, from what the run learned about the target.

    Never "run longer" when the run showed that a longer one cannot help.
    """
    if attrs.get("modes_found", 1) > 1:
        return ("The chains started at different optima of a target with several modes "
                "(see the warning before sampling): a longer run will not mix them.")
    if attrs.get("flat_directions"):
        return (f"The log density has no curvature along {attrs['flat_directions']} at its "
                "mode (see the warning before sampling): give every variable a proper "
                "prior, or reparameterize; a longer run will not help.")
    if attrs.get("concavity_pair_failures", 0) > 0:
        return ("The target is not log-concave where the chains are (see the warning "
                "after sampling): reparameterize or use NUTS; a longer run may not help.")
    return "The chains have not mixed: run longer or check for multimodality."


def _check_rhat(draws, chains, n_chains, threshold, columns, labels=None, advice=None):
    """Flag coordinates whose rank-normalized split R-hat exceeds ``threshold``.

    R-hat is the rank-normalized split R-hat (Vehtari et al. 2021); an undefined value
    (NaN, from a constant coordinate) is flagged.

    Parameters
    ----------
    draws : ndarray, shape (len(chains), draws, k)
        Finite draws of the checked chains and coordinates; ``draws >= 4``.
    chains : tuple of int
        Run indices of the chains in ``draws``.
    n_chains : int
        Chains in the run (those missing from ``chains`` are named as left out).
    threshold : float
        Flag R-hat above this.
    columns : ndarray of int, shape (k,)
        Run index of each coordinate in ``draws``.
    labels : sequence of str, optional
        A name per coordinate of the run, for the message (default ``x[i]``).
    advice : str, optional
        What to do, ending the message (default: run longer or check for multimodality).

    Returns
    -------
    list of Diagnostic
        One ``"rhat"`` item (worst coordinates first) when some coordinate is flagged, an
        ``"info"`` item when fewer than two chains are given, else empty.
    """
    if len(chains) < 2:
        note = ("Only one chain was sampled" if n_chains == 1
                else f"Only one chain (chain {chains[0]}) has finite draws")
        return [Diagnostic(
            "rhat",
            f"{note}: R-hat needs at least two chains, so convergence between chains "
            "cannot be checked. Run more chains.",
            chains=chains, level="info",
        )]
    rhat = _statistic(draws, "rhat")
    bad = np.flatnonzero(~(rhat <= threshold))  # NaN counts as bad
    if not bad.size:
        return []
    order = bad[np.argsort(-np.nan_to_num(rhat[bad], nan=np.inf), kind="stable")]
    return [Diagnostic(
        "rhat",
        f"The rank-normalized split R-hat is larger than {threshold} for "
        f"{order.size} of {rhat.size} coordinates; worst: "
        f"{_names(labels, columns[order], rhat[order], '.3f')}"
        f"{_left_out_note(chains, n_chains)}. {advice or _rhat_advice({})}",
        variables=tuple(int(i) for i in columns[order]),
        values=tuple(float(v) for v in rhat[order]),
        chains=chains,
    )]


def _check_ess(draws, chains, n_chains, min_per_chain, columns, labels=None):
    """Flag coordinates whose bulk ESS per chain is below ``min_per_chain``.

    The ESS is the bulk (rank-normalized) effective sample size summed over the chains
    (Vehtari et al. 2021); an undefined value (NaN) is flagged.

    Parameters
    ----------
    draws : ndarray, shape (len(chains), draws, k)
        Finite draws of the checked chains and coordinates; ``draws >= 4``.
    chains : tuple of int
        Run indices of the chains in ``draws`` (at least one).
    n_chains : int
        Chains in the run (those missing from ``chains`` are named as left out).
    min_per_chain : float
        Flag coordinates whose total ESS divided by ``len(chains)`` is below this.
    columns : ndarray of int, shape (k,)
        Run index of each coordinate in ``draws``.
    labels : sequence of str, optional
        A name per coordinate of the run, for the message (default ``x[i]``).

    Returns
    -------
    list of Diagnostic
        One ``"ess"`` item (smallest ESS first, values are the totals over the chains) when
        some coordinate is flagged, else empty.
    """
    ess = _statistic(draws, "ess")
    bad = np.flatnonzero(~(ess / len(chains) >= min_per_chain))
    if not bad.size:
        return []
    order = bad[np.argsort(np.nan_to_num(ess[bad], nan=-np.inf), kind="stable")]
    return [Diagnostic(
        "ess",
        f"The bulk effective sample size per chain is smaller than {min_per_chain:g} "
        f"for {order.size} of {ess.size} coordinates; worst (total over "
        f"{len(chains)} chain(s)): {_names(labels, columns[order], ess[order], '.1f')}"
        f"{_left_out_note(chains, n_chains)}. "
        "Estimates of means and quantiles are unreliable: run more draws.",
        variables=tuple(int(i) for i in columns[order]),
        values=tuple(float(v) for v in ess[order]),
        chains=chains,
    )]


def _check_divergences(diverging):
    """Count the draws flagged diverging during sampling.

    Parameters
    ----------
    diverging : ndarray of bool, shape (chains, draws)

    Returns
    -------
    list of Diagnostic
        One ``"divergences"`` item with ``values == (n_flagged,)`` and the chains that have
        flagged draws, or empty when none is flagged.
    """
    n_chains = diverging.shape[0]
    n_flagged = int(diverging.sum())
    if not n_flagged:
        return []
    hit = tuple(int(c) for c in np.flatnonzero(diverging.any(axis=1)))
    return [Diagnostic(
        "divergences",
        f"{n_flagged} draw(s) after warmup were flagged diverging, in {len(hit)} of "
        f"{n_chains} chain(s) (chains: {_chain_list(hit)}): the chain's energy jumped by "
        "more than 1000 since the previous draw, or it reached a non-finite state, where "
        "it is stopped and its remaining draws are NaN (sample_stats['nonfinite']). Try "
        "a smaller step_size or check the target's log density.",
        values=(n_flagged,),
        chains=hit,
    )]


def _check_stuck(posterior, used, attrs):
    """Chains that did not move: every draw the same point.

    Parameters
    ----------
    posterior : ndarray, shape (chains, draws, d)
    used : tuple of int
        The chains with all draws finite (the others diverged: reported apart).
    attrs : mapping
        ``SamplingResult.attrs``, for the chains' step sizes.

    Returns
    -------
    list of Diagnostic
        One ``"stuck"`` item naming the chains, or empty.
    """
    if posterior.shape[1] < 2:
        return []
    # max - min per chain and coordinate: reductions, no copy of the draws
    stuck = tuple(c for c in used
                  if not (posterior[c].max(axis=0) > posterior[c].min(axis=0)).any())
    if not stuck:
        return []
    steps = np.atleast_1d(attrs.get("step_size", np.nan))
    step = ", ".join(f"{steps[c]:.3g}" for c in stuck if c < steps.size)
    return [Diagnostic(
        "stuck",
        f"{len(stuck)} chain(s) did not move: every draw is the same point (chains: "
        f"{_chain_list(stuck)}; step_size {step}). Where they sit the log density is "
        "likely unbounded or extremely curved (a hierarchical scale going to 0): "
        "reparameterize or use NUTS; a longer run will not help.",
        chains=stuck,
    )]


def _check_warmup_converged(attrs):
    """Report a warmup that said it did not converge.

    Parameters
    ----------
    attrs : mapping
        ``SamplingResult.attrs``; reads ``"warmup_converged"`` (missing counts as True)
        and ``"warmup_note"``.

    Returns
    -------
    list of Diagnostic
        One ``"warmup"`` item quoting the note, or empty.
    """
    if attrs.get("warmup_converged", True):
        return []
    note = str(attrs.get("warmup_note", "") or "").strip()
    return [Diagnostic(
        "warmup",
        f"Warmup reported that it did not converge: {note}" if note
        else "Warmup reported that it did not converge.",
    )]


def _check_lp_drift(lp, chains):
    """Flag a log density that still drifts between the start and the end of the draws.

    Parameters
    ----------
    lp : ndarray, shape (n_chains, draws)
        Log density of every draw of the run.
    chains : tuple of int
        Chains to consider (those with finite draws); of these, the ones whose ``lp`` is
        all finite are used.

    Returns
    -------
    list of Diagnostic
        One ``"warmup"`` item with ``values == (z,)`` when ``|z|`` from
        :func:`lp_drift_zscore` exceeds ``DRIFT_Z_THRESHOLD``, else empty.
    """
    used = [c for c in chains if np.isfinite(lp[c]).all()]
    if not used:
        return []
    z = lp_drift_zscore(lp[used])
    if not abs(z) > DRIFT_Z_THRESHOLD:
        return []
    n_draws = lp.shape[1]
    early = lp[used, : int(0.1 * n_draws)].mean()
    late = lp[used, n_draws - int(0.5 * n_draws):].mean()
    direction = "rose" if z > 0 else "fell"
    return [Diagnostic(
        "warmup",
        f"The log density {direction} from {early:.4g} (mean of the first 10 % of "
        f"the draws) to {late:.4g} (mean of the last 50 %), z = {z:.1f} over chain(s) "
        f"{_chain_list(used)}: the chains were still moving towards the typical set "
        "when sampling started. Increase tune.",
        values=(z,),
        chains=tuple(used),
    )]


def convergence_checks(result, rhat_threshold=1.01, min_ess_per_chain=100, max_coordinates=1000):
    """Check a sampling run for signs of non-convergence.

    Parameters
    ----------
    result : SamplingResult
        ``posterior`` of shape (chains, draws, d); ``sample_stats["diverging"]`` and
        ``sample_stats["lp"]`` of shape (chains, draws).
    rhat_threshold : float
        Flag coordinates whose rank-normalized split R-hat exceeds this (PyMC: 1.01).
    min_ess_per_chain : float
        Flag coordinates whose bulk ESS divided by the number of chains is below this
        (PyMC: 100).
    max_coordinates : int or None
        Compute R-hat and ESS on at most this many coordinates, evenly spaced (an
        ``"info"`` item says so); None for all of them.

    Returns
    -------
    list of Diagnostic
        Empty when nothing was found. In order: ``"rhat"``, ``"ess"``, ``"divergences"``,
        ``"warmup"``.

    Notes
    -----
    - R-hat and ESS are computed on the chains whose draws are all finite; a
      chain that diverged (NaN draws) is left out and the message says so. R-hat needs two
      such chains and at least 4 draws; otherwise an ``"info"`` item says it was skipped.
      A coordinate whose statistic is undefined (constant draws) is flagged.
    - Beyond ``max_coordinates`` a subset is checked (a ``"coverage"`` note says which),
      which bounds the checks' time on very large runs.
    - ``"divergences"`` counts the draws flagged diverging during sampling. A chain that
      reached a non-finite state is stopped and all its remaining draws are flagged, so
      the count is draws, not events; the affected chains are listed.
    - ``"warmup"``: reported when ``result.attrs["warmup_converged"]`` is False (with
      ``attrs["warmup_note"]``), and when the mean of ``lp`` over the first 10 % of the
      draws differs from that over the last 50 % by more than 4 standard errors
      (:func:`lp_drift_zscore`, pooled over the finite chains; needs 100 draws). When
      ``lp`` mixes very slowly (autocorrelation time comparable to the 50-draw batches
      at 1000 draws, i.e. fewer than ~10 effective draws of ``lp`` per chain) this check
      can fire on a stationary chain (3 % of runs at an AR(1) coefficient of 0.99); the
      ``"ess"`` item is then present too.
    """
    if not rhat_threshold > 1:
        raise ValueError(f"rhat_threshold must be > 1, got {rhat_threshold}")
    if not min_ess_per_chain >= 0:
        raise ValueError(f"min_ess_per_chain must be >= 0, got {min_ess_per_chain}")
    if np.ndim(result.posterior) != 3:
        raise ValueError("result.posterior must have shape (chains, draws, d), got "
                         f"{np.shape(result.posterior)}")
    n_chains, n_draws, dim = np.shape(result.posterior)
    posterior, columns, labels = _loaded(result, max_coordinates)
    stats = result.sample_stats
    lp = np.asarray(stats.get("lp", np.full((n_chains, n_draws), np.nan)), dtype=float)
    diverging = np.asarray(stats.get("diverging", np.zeros((n_chains, n_draws))), dtype=bool)
    used = _finite_chains(posterior)

    found = _check_rhat_ess_possible(n_draws, used)
    if not found:
        draws = _checked_draws(posterior, used, columns)
        found += _check_coverage(columns.size, dim)
        found += _check_rhat(draws, used, n_chains, rhat_threshold, columns, labels,
                             _rhat_advice(result.attrs))
        found += _check_ess(draws, used, n_chains, min_ess_per_chain, columns, labels)
    found += _check_stuck(posterior, used, result.attrs)
    found += _check_divergences(diverging)
    found += _check_warmup_converged(result.attrs)
    found += _check_lp_drift(lp, used)
    return found


def warn_convergence(diagnostics, stacklevel=2):
    """Emit one ``RuntimeWarning`` listing every item of ``diagnostics``.

    Parameters
    ----------
    diagnostics : list of Diagnostic
        As returned by :func:`convergence_checks`. Nothing is emitted when it is empty.
    stacklevel : int
        As for :func:`warnings.warn`, counted from the caller of this function.
    """
    diagnostics = list(diagnostics)
    if not diagnostics:
        return
    n_problems = sum(d.level != "info" for d in diagnostics)
    n_notes = len(diagnostics) - n_problems
    header = f"lcsample convergence checks: {n_problems} problem(s)"
    lines = [header + (f", {n_notes} note(s)" if n_notes else "")]
    lines += [f"- [{d.kind}{', info' if d.level == 'info' else ''}] {d.message}"
              for d in diagnostics]
    warnings.warn("\n".join(lines), RuntimeWarning, stacklevel=stacklevel + 1)
