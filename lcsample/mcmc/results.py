"""Containers returned by :func:`lcsample.sample`."""

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..targets.structure import Structure

__all__ = ["ChainState", "SamplingResult"]


class ChainState(NamedTuple):
    """Everything needed to continue a run exactly where it stopped.

    Pass it back as ``lcsample.sample(target, initial_state=state, tune=0, ...)``.

    Attributes
    ----------
    position, velocity, gradient : ndarray, shape (chains, d)
    logdensity : ndarray, shape (chains,)
    rng_states : tuple of dict
        ``bit_generator.state`` of each chain's PCG64 stream.
    step_size, friction : ndarray, shape (chains,)
    inverse_mass_matrix : ndarray, shape (chains, d) or (chains, d, d)
    corrector : tuple (int, float) or None
        Steps and step size of the ``method="rmd-tv"`` corrector; None for other methods.
    pending : tuple or None
        ``method="rmd-picard"``: per chain, the steps of its last Picard block beyond the
        run's end (:class:`lcsample.mcmc.picard.PendingSteps`, or None), taken first when
        the run continues, so that the continuation is the uninterrupted run at any
        tolerance. None for other methods.
    thin : int or None
        The run's steps per draw, which a continuation with ``thin=None`` keeps.
    """

    position: np.ndarray
    velocity: np.ndarray
    gradient: np.ndarray
    logdensity: np.ndarray
    rng_states: tuple
    step_size: np.ndarray
    friction: np.ndarray
    inverse_mass_matrix: np.ndarray
    corrector: tuple | None = None
    pending: tuple | None = None
    thin: int | None = None


@dataclass
class SamplingResult:
    """Draws, per-draw statistics and run information of :func:`lcsample.sample`.

    Attributes
    ----------
    posterior : ndarray, shape (chains, draws, d)
        Draws. Rows of a chain that reached a non-finite state are NaN from the draw
        where it stopped, and ``sample_stats["nonfinite"]`` is True there.
    sample_stats : dict of ndarray, each shape (chains, draws)
        ``lp`` (log density); ``energy``, the Hamiltonian −log π + ½ vᵀU⁻¹v at the draw
        (NUTS's units: ArviZ's energy plot and BFMI take it); ``diverging``, as NUTS users
        read it: the energy jumped by more than 1000 since the last draw, or the chain
        stopped on a non-finite state (``"rmd-lagged"``: the stop only, as its ``lp`` and
        ``energy`` are at each draw's last midpoint, which scatter by O(d)); ``nonfinite``,
        that stop alone; ``step_size``, ``friction`` and ``n_steps`` (gradient evaluations
        spent on the draw).
    warmup : dict or None
        ``{"posterior": ..., "sample_stats": {...}}`` of the tuning phase, shape
        (chains, tune, ...), when ``discard_tuned_samples=False``.
    last_state : ChainState
    timing : dict
        Wall seconds of ``sample``: ``compile`` (the target's function and the sampler's
        loops, by numba), ``initialization`` (mode search, modes survey, curvature at the
        mode, gradient check), ``warmup``, ``sampling``, ``checks`` (convergence checks)
        and ``total``, from the call to the return; the parts add up to ``total`` but for
        the validation of the arguments and the assembly of the result.
    n_grad_evals : ndarray, shape (chains,)
        All gradient evaluations per chain, warmup and checks included. The evaluations
        outside the chains are counted once, in ``attrs["init_grad_evals"]``: the mode
        search, the curvature at the mode, the gradient check, the modes survey, and the
        Hessian of the concavity check when a failure is named.
    attrs : dict
        Run metadata (library, version, method, seed, tuned parameters), written to ArviZ.
    structure : lcsample.Structure
        The target's variables: names, shapes, dims and transforms (by default one
        vector ``x``). ``posterior`` holds the unconstrained coordinates the sampler
        moves; :meth:`constrained` and :meth:`to_arviz` give the named, constrained values.
    tuning_history : list of dict
        One entry per warmup retune: ``step`` (warmup step), ``step_size``, ``friction``
        and the estimates behind them (``lam_min``, ``lam_max``: extreme curvatures of the
        preconditioned target; ``energy_error`` on the adaptive route).
    store : str or None
        The Zarr store of a run made with ``store=``; ``posterior``, ``sample_stats`` and
        ``warmup`` are then Dask arrays reading it, and :meth:`to_arviz` opens it lazily.
    """

    posterior: np.ndarray
    sample_stats: dict
    warmup: dict | None
    last_state: ChainState
    timing: dict
    n_grad_evals: np.ndarray
    attrs: dict = field(default_factory=dict)
    structure: Structure | None = None
    tuning_history: list = field(default_factory=list)
    store: str | None = None

    def __post_init__(self):
        if self.structure is None:
            self.structure = Structure.single("x", self.posterior.shape[-1])

    def constrained(self):
        """The draws as named variables on their supports.

        Returns
        -------
        dict
            ``{name: ndarray (chains, draws, *shape)}``, derived variables included.
        """
        return self.structure.constrained(self.posterior)

    @property
    def n_divergences(self):
        """Number of chains with a divergent draw during sampling (see ``sample_stats``)."""
        return int(self.sample_stats["diverging"].any(axis=1).sum())

    def to_arviz(self, var_names=None, coords=None, dims=None):
        """Convert to ArviZ: ``InferenceData`` on ArviZ 0.x, ``xarray.DataTree`` on 1.x.

        Parameters
        ----------
        var_names : str or sequence of str, optional
            Overrides the target's variables: a string names the whole unconstrained
            vector; a sequence of ``d`` strings makes one scalar variable per coordinate.
            Default: the target's variables, constrained, with their dims and coords
            (and the unconstrained coordinates in the ``unconstrained_posterior`` group
            when a variable is transformed).
        coords, dims : dict, optional
            As in ``arviz.from_dict``; added to the target's own.
        """
        if self.store is not None and var_names is None and coords is None and dims is None:
            from ..storage.reader import open_store

            return open_store(self.store)
        from .arviz import to_arviz

        return to_arviz(self, var_names=var_names, coords=coords, dims=dims)

    def diagnostics(self, rhat_threshold=1.01, min_ess_per_chain=100, max_coordinates=1000):
        """Convergence checks of the draws, like PyMC's ``run_convergence_checks``.

        Parameters
        ----------
        rhat_threshold : float
            Flag coordinates whose rank-normalized split R-hat exceeds this.
        min_ess_per_chain : float
            Flag coordinates whose bulk effective sample size per chain is below this.
        max_coordinates : int or None
            R-hat and ESS on at most this many coordinates, evenly spaced (they take
            ~2.5 ms each); None checks all.

        Returns
        -------
        list of lcsample.mcmc.diagnostics.Diagnostic
            One item per problem (kinds ``"rhat"``, ``"ess"``, ``"divergences"``,
            ``"warmup"``); empty when none was found. Pass it to
            :func:`lcsample.mcmc.diagnostics.warn_convergence` to get one warning.

        See Also
        --------
        lcsample.mcmc.diagnostics.convergence_checks
        """
        from .diagnostics import convergence_checks

        return convergence_checks(self, rhat_threshold=rhat_threshold,
                                  min_ess_per_chain=min_ess_per_chain,
                                  max_coordinates=max_coordinates)
