"""One chain's state and how it advances, tunes and records; run inside a worker thread."""

from typing import NamedTuple

import numpy as np

from .._jit import precompiled
from ..kernels.compiled import run_chain
from ..kernels.step import GRADS_PER_STEP, RMD_LAGGED, fresh_velocity
from .warmup.curvature import extreme_curvatures

__all__ = ["Chain", "Request", "block_lengths", "draw_costs"]

_NOWHERE = np.empty(0)  # the x_at of chains whose gradient is at their position
_fresh_velocity = precompiled(fresh_velocity)  # called from Python here


class Request(NamedTuple):
    """What a task asks of a chain: draws into these arrays (views of the records).

    Attributes
    ----------
    draws : ndarray, shape (n, d)
    lp, energy : ndarray, shape (n,)
        log π and the Hamiltonian −log π + ½ vᵀU⁻¹v at each draw.
    thin : int
        Steps per draw.
    corrected : bool
        Take each draw after the ``rmd-tv`` corrector.
    """

    draws: np.ndarray
    lp: np.ndarray
    energy: np.ndarray
    thin: int
    corrected: bool


def block_lengths(n, thin=1, blocks=50, min_steps=32, max_steps=5000):
    """Split ``n`` draws of ``thin`` steps into compiled calls (progress and Ctrl-C points).

    About ``blocks`` calls, each of at least ``min_steps`` steps (a call costs tens of
    microseconds, and ``method="rmd-picard"`` needs room for its Picard blocks) and at most
    ``max_steps`` unless ``min_steps`` needs more: a long run still stops within a block of
    Ctrl-C, and chains that share a core take turns often.

    Returns
    -------
    list of int
        Draws per call, summing to ``n``.
    """
    size = max(-(-min_steps // thin), min(-(-n // blocks), max(1, max_steps // thin)))
    return [min(size, n - start) for start in range(0, n, size)]


def draw_costs(grads, n_done, complete, per_draw):
    """Split an advance's gradient count over its draws, for ``n_steps``.

    Parameters
    ----------
    grads : int
        Gradient evaluations the advance made.
    n_done : int
        Draws it completed.
    complete : bool
        Whether it completed every draw asked (False: it stopped on a non-finite state).
    per_draw : int
        The sequential cost of a draw; a stopped advance charges its completed draws this
        and the rest to the failed one.

    Returns
    -------
    costs : ndarray of int, shape (n_done,)
        Evenly spread, so they sum to what the draws cost (``rmd-picard`` spends a
        varying number per Picard block; the sequential methods exactly ``per_draw``).
    failed : int
        Evaluations spent on the step that failed.
    """
    spent = grads if complete else min(grads, n_done * per_draw)
    base, extra = divmod(spent, max(n_done, 1))
    costs = np.full(n_done, base, dtype=np.int64)
    costs[:extra] += 1
    return costs, grads - spent


class Chain:
    """Mutable state of one chain: position, velocity, gradient, stream and parameters.

    Parameters
    ----------
    target : Target
    integrator : int
        :data:`lcsample.kernels.step.RMD`, :data:`~lcsample.kernels.step.ULMC` or
        :data:`~lcsample.kernels.step.RMD_LAGGED` (the method's
        :attr:`lcsample.mcmc.options.Method.integrator`).
    rng : numpy.random.Generator
    x, v, g : ndarray, shape (d,)
    lp : float
        ``g`` and ``lp`` are taken at x, and for the lagged step, once it has moved, at
        its last midpoint, kept as ``x_at`` (None for the other integrators).
    step_size, friction : float or None
        None means tuned.
    mass : InverseMass
    corrector : tuple (int, float) or None
        Corrector steps and step size per stored draw (``method="rmd-tv"``).
    """

    def __init__(self, target, integrator, rng, x, v, g, lp, step_size, friction, mass,
                 corrector=None):
        self.target = target
        self.integrator = integrator
        self.rng = rng
        self.x, self.v, self.g, self.lp = x, v, g, lp
        self.x_at = x.copy() if integrator == RMD_LAGGED else None
        self.step_size, self.friction, self.mass = step_size, friction, mass
        self.corrector = corrector
        self.n_grads = 0
        # method="rmd-picard": sequential rounds, Picard blocks, blocks left unconverged
        self.n_rounds = self.picard_blocks = self.picard_unconverged = 0
        # method="rmd-picard": steps of a solved block beyond the last request
        # (lcsample.mcmc.picard.PendingSteps), taken first by the next one
        self.pending = None
        self.diverged_at = None  # (phase, index) of a stop on a non-finite state
        self.thin = None  # steps per draw of the sampling phase, set after the warmup

    def grads_per_draw(self, thin, corrected):
        """Gradient evaluations of one stored draw."""
        extra = self.corrector[0] if corrected and self.corrector is not None else 0
        return thin * GRADS_PER_STEP[self.integrator] + extra

    def advance(self, request):
        """Run the draws of ``request`` (a :class:`Request`); returns (draws done, gradients).

        ``request.corrected``: take each draw after the corrector run (sampling phase of
        ``method="rmd-tv"``); warmup draws are never corrected.
        """
        corrector = self.corrector if request.corrected else None
        n_done, self.lp, failed_grads = run_chain(
            self.target.logdensity_and_grad, self.target.args, self.integrator, self.step_size,
            self.friction, self.mass.kernel_args, corrector, request.thin, self.x, self.v,
            self.g, self.evaluated_at_buffer(), self.lp, self.rng, request.draws, request.lp,
            request.energy,
        )
        grads = n_done * self.grads_per_draw(request.thin, request.corrected) + failed_grads
        self.n_grads += grads
        return n_done, grads

    def move_to(self, x, lp, g):
        """Restart the chain at x, with log density ``lp`` and gradient ``g`` there."""
        self.x, self.lp, self.g = x, lp, g
        if self.x_at is not None:
            self.x_at = x.copy()

    def evaluated_at_buffer(self):
        """The kernels' ``x_at`` argument: ``x_at``, or an empty array (it is x itself)."""
        return _NOWHERE if self.x_at is None else self.x_at

    def evaluation_point(self):
        """(position, log density, gradient) of the target's last evaluation; the position
        is NaN where it is unknown (:meth:`forget_evaluation_point`)."""
        return (self.x if self.x_at is None else self.x_at), self.lp, self.g

    def forget_evaluation_point(self):
        """A resumed lagged chain's gradient is at a midpoint its saved state does not
        hold: mark ``x_at`` unknown (NaN, which the concavity check skips) until the
        chain's next step."""
        if self.x_at is not None:
            self.x_at[:] = np.nan

    def refresh_velocity(self):
        """Draw v ~ N(0, U), the velocity's law under the stationary measure."""
        u, chol, _ = self.mass.kernel_args
        d = self.x.shape[0]
        self.v = np.empty(d)
        _fresh_velocity(self.rng, u, chol, np.empty((d, 1)), np.empty((d, 1)), self.v)

    def curvatures(self):
        """Extreme curvatures of the preconditioned target at the current position.

        Returns
        -------
        lam_min, lam_max : float
        n_grads : int
        """
        lam_min, lam_max, grads = extreme_curvatures(
            self.target.logdensity_and_gradient, self.x, self.mass, self.rng
        )
        self.n_grads += grads
        return lam_min, lam_max, grads
