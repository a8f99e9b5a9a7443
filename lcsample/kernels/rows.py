"""The step for many rows in lockstep, with the gradients from one call per round.

Batched Python targets, the ``rmd-tv`` corrector of such targets, and the diffusion
corrector advance all their rows together: each round of gradient evaluations is one call
of an ``evaluate(X) -> (lp, G)`` function on the rows that need it. The rows go through
the kernels of :mod:`lcsample.kernels.step` one by one, each with its own generator, so a
row's draws are those of the same chain in the compiled loop
(:func:`lcsample.kernels.compiled.advance_steps`).
"""

from dataclasses import dataclass

import numba
import numpy as np

from .._jit import kernel
from .coefficients import step_coefficients
from .step import (
    NORMALS_PER_COORDINATE,
    RMD_LAGGED,
    ULMC,
    accept,
    accept_lagged,
    complete,
    draw_noise,
    fresh_velocity,
    kinetic_energy,
    precondition,
    propose,
)

__all__ = ["RowState", "advance_rows", "fresh_velocities", "kinetic_rows", "langevin_rows",
           "typed_generators"]


@dataclass
class RowState:
    """Position, velocity, gradient and log density of n rows; arrays (n, d) and (n,).

    ``p`` is the preconditioned gradient U·g, or ``g`` itself for a diagonal mass.
    ``x_at`` and ``v_at`` (lagged randomized midpoint only, else None): the point where
    ``g`` and ``lp`` were taken, the last midpoint, and the velocity there.
    """

    x: np.ndarray
    v: np.ndarray
    g: np.ndarray
    p: np.ndarray
    lp: np.ndarray
    x_at: np.ndarray | None = None
    v_at: np.ndarray | None = None

    @classmethod
    def start(cls, x, v, g, lp, dense, x_at=None):
        """A state from positions, velocities, gradients and log densities (copied);
        ``x_at`` (n, d) for the lagged step."""
        x, v, g = (np.array(a, dtype=np.float64) for a in (x, v, g))
        lp = np.array(lp, dtype=np.float64)
        p = g  # a diagonal mass: p is g itself (the kernels apply u)
        if dense.shape[0] > 0:
            p = np.empty_like(g)
            for g_row, p_row in zip(g, p, strict=True):
                precondition(dense, g_row, p_row)
        if x_at is None:
            return cls(x, v, g, p, lp)
        return cls(x, v, g, p, lp, np.array(x_at, dtype=np.float64), v.copy())


@kernel
def kinetic_rows(u, chol, V, out):
    """``out[i] = ½ V[i]ᵀU⁻¹V[i]`` for each row of V (n, d)
    (:func:`~lcsample.kernels.step.kinetic_energy`)."""
    for i in range(V.shape[0]):
        out[i] = kinetic_energy(u, chol, V[i])


def typed_generators(rngs):
    """The rows' generators as a numba typed list (they keep sharing their state)."""
    return numba.typed.List(rngs)


@kernel
def _propose_rows(method, rngs, h, gamma, u, sigma, chol, live, x, v, p, x_mid, w2, w3, x_new,
                  v_new, alpha, raw, z_rows):
    """Draw each live row's noise (row i's into ``z_rows[i]``) and propose its step."""
    for i in range(x.shape[0]):
        if live[i]:
            alpha[i] = draw_noise(rngs[i], method, chol, raw, z_rows[i])
            c = step_coefficients(h[i], gamma[i], alpha[i])
            propose(method, c, z_rows[i], u, sigma[i], x[i], v[i], p[i], x_mid[i], w2[i], w3[i],
                    x_new[i], v_new[i])


@kernel
def _complete_rows(h, gamma, alpha, u, dense, live, x, v, g_mid, p_mid, w2, w3, x_new, v_new):
    for i in range(x.shape[0]):
        if live[i]:
            c = step_coefficients(h[i], gamma[i], alpha[i])
            complete(c, u, dense, x[i], v[i], g_mid[i], p_mid[i], w2[i], w3[i], x_new[i],
                     v_new[i])


@kernel
def _accept_lagged_rows(h, gamma, alpha, u, sigma, z_rows, lp_mid, x_mid, g_mid, p_mid, dense,
                        x_new, v_new, live, state_arrays, lp):
    """:func:`_accept_rows` for the lagged step (:func:`~.step.accept_lagged`)."""
    x, v, g, p, x_at, v_at = state_arrays
    for i in range(x.shape[0]):
        if live[i]:
            c = step_coefficients(h[i], gamma[i], alpha[i])
            if accept_lagged(c, gamma[i], z_rows[i], u, sigma[i], lp_mid[i], x_mid[i], g_mid[i],
                             p_mid[i], dense, x_new[i], v_new[i], x[i], v[i], g[i], p[i],
                             x_at[i], v_at[i]):
                lp[i] = lp_mid[i]
            else:
                live[i] = False


@kernel
def _accept_rows(lp_new, x_new, v_new, g_new, dense, live, x, v, g, p, lp):
    """Commit every live row whose new state is finite; the others leave ``live``."""
    for i in range(x.shape[0]):
        if live[i]:
            if accept(lp_new[i], x_new[i], v_new[i], g_new[i], dense, x[i], v[i], g[i], p[i]):
                lp[i] = lp_new[i]
            else:
                live[i] = False


def _gradients(evaluate, points, live, lp_out, g_out):
    """Evaluate the live rows of ``points`` in one call into ``lp_out`` and ``g_out``."""
    rows = np.flatnonzero(live)
    lp, g = evaluate(points[rows])
    lp_out[rows] = lp
    g_out[rows] = g


def advance_rows(evaluate, method, n_steps, h, gamma, precond, state, rngs, live):
    """Advance the live rows ``n_steps`` steps in lockstep; rows that diverge stop.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(X) -> (lp, G)`` on rows X (m, d): the gradient-evaluation seam.
    method : int
        :data:`~lcsample.kernels.step.RMD`, :data:`~lcsample.kernels.step.ULMC` or
        :data:`~lcsample.kernels.step.RMD_LAGGED`.
    n_steps : int
    h, gamma : ndarray, shape (n,)
        Step size and friction of each row.
    precond : tuple (u, chol, dense)
        The inverse mass all rows share (see :mod:`lcsample.kernels.step`).
    state : RowState
        Updated in place (with ``x_at`` and ``v_at`` for the lagged step).
    rngs : numba.typed.List of numpy.random.Generator
        One per row (:func:`typed_generators`).
    live : ndarray of bool, shape (n,)
        Rows to advance; a row that reaches a non-finite state is taken out.

    Returns
    -------
    steps : ndarray of int, shape (n,)
        Steps each row completed (``n_steps`` for rows that stayed live).
    """
    u, chol, dense = precond
    n, d = state.x.shape
    sigma = np.sqrt(2.0 * gamma[:, None] * u[None, :])
    x_mid, g_mid, w2, w3, x_new, v_new, g_new = (np.empty((n, d)) for _ in range(7))
    p_mid = np.empty((n, d)) if dense.shape[0] else g_mid
    lp_new, alpha = np.empty(n), np.empty(n)
    raw = np.empty((d, NORMALS_PER_COORDINATE[method]))
    z_rows = np.empty((n, *raw.shape))
    steps = np.zeros(n, dtype=np.int64)
    for _ in range(n_steps):
        if not live.any():
            break
        _propose_rows(method, rngs, h, gamma, u, sigma, chol, live, state.x, state.v, state.p,
                      x_mid, w2, w3, x_new, v_new, alpha, raw, z_rows)
        if method != ULMC:
            _gradients(evaluate, x_mid, live, lp_new, g_mid)
            _complete_rows(h, gamma, alpha, u, dense, live, state.x, state.v, g_mid, p_mid, w2,
                           w3, x_new, v_new)
        if method == RMD_LAGGED:
            _accept_lagged_rows(h, gamma, alpha, u, sigma, z_rows, lp_new, x_mid, g_mid, p_mid,
                                dense, x_new, v_new, live, (state.x, state.v, state.g, state.p,
                                                            state.x_at, state.v_at), state.lp)
        else:
            _gradients(evaluate, x_new, live, lp_new, g_new)
            _accept_rows(lp_new, x_new, v_new, g_new, dense, live, state.x, state.v, state.g,
                         state.p, state.lp)
        steps[live] += 1
    return steps


@kernel
def fresh_velocities(rngs, u, chol, live, out):
    """Draw v ~ N(0, U) for every live row into ``out`` (n, d)."""
    d = out.shape[1]
    raw, raw_l = np.empty((d, 1)), np.empty((d, 1))
    for i in range(out.shape[0]):
        if live[i]:
            fresh_velocity(rngs[i], u, chol, raw, raw_l, out[i])


def langevin_rows(evaluate, method, n_steps, h, gamma, precond, state, rngs, live):
    """A Langevin run from the rows' positions and fresh velocities; the state is kept.

    The ``rmd-tv`` corrector and the diffusion corrector: each live row draws v ~ N(0, U)
    and runs ``n_steps`` steps of ``method`` from (x, v).

    Parameters
    ----------
    evaluate, method, n_steps, h, gamma, precond, rngs
        As in :func:`advance_rows`.
    state : RowState
        The start; not modified.
    live : ndarray of bool, shape (n,)
        Rows to run; updated as in :func:`advance_rows`.

    Returns
    -------
    end : RowState
        The runs' end states.
    steps : ndarray of int, shape (n,)
    """
    end = RowState(state.x.copy(), np.empty_like(state.x), state.g.copy(), None, state.lp.copy())
    end.p = end.g if state.p is state.g else state.p.copy()
    u, chol, _ = precond
    fresh_velocities(rngs, u, chol, live, end.v)
    steps = advance_rows(evaluate, method, n_steps, h, gamma, precond, end, rngs, live)
    return end, steps

