"""The compiled loops for a jitted target: one chain's steps, and the target over rows.

:func:`advance_steps` is the step of :mod:`lcsample.kernels.step` (its kernels inlined)
with its gradients from the user's compiled function; :func:`chain_draws` stores draws (and
runs the ``rmd-tv`` corrector between them) around it, and :func:`run_chain` runs it for one
chain (:func:`lcsample.kernels.many.run_chains` for many in one call). The user's function
comes in as a first-class function (:func:`lcsample._jit.with_target`), so these loops are
compiled once per function signature and cached on disk: a new target whose function takes
the same argument types starts without compiling them.
"""

import numpy as np

from .._jit import inlined_kernel, kernel, with_target
from .coefficients import step_coefficients
from .step import (
    GRADS_PER_STEP,
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

__all__ = ["advance_steps", "chain_draws", "corrected_draw", "evaluate_rows", "run_chain",
           "step_scratch"]


@kernel
def step_scratch(d, method):
    """Work arrays of one step: (raw, z, x_mid, g_mid, p_mid, w2, w3, x_new, v_new, g_new,
    v_at), ``v_at`` the velocity at the last midpoint (:func:`~.step.accept_lagged`)."""
    k = NORMALS_PER_COORDINATE[method]
    return (np.empty((d, k)), np.empty((d, k)), np.empty(d), np.empty(d), np.empty(d),
            np.empty(d), np.empty(d), np.empty(d), np.empty(d), np.empty(d), np.empty(d))


@kernel
def advance_steps(fn, args, method, c, h, gamma, n_steps, precond, sigma, x, v, g, p, x_at, lp,
                  rng, scratch):
    """Advance one chain ``n_steps`` steps in place; stop at the first non-finite state.

    Parameters
    ----------
    fn : numba dispatcher
        ``fn(x, grad_out, *args) -> log π(x)``.
    args : tuple
    method : int
        :data:`~lcsample.kernels.step.RMD`, :data:`~lcsample.kernels.step.ULMC` or
        :data:`~lcsample.kernels.step.RMD_LAGGED`.
    c : StepCoefficients
        The exponential-Euler step's (constant); the randomized midpoint makes its own.
    h, gamma : float
    n_steps : int
    precond : tuple (u, chol, dense)
        Inverse mass (see :mod:`lcsample.kernels.step`).
    sigma : ndarray, shape (d,)
        √(2γu).
    x, v, g, p : ndarray, shape (d,)
        The state, updated in place (``p`` is ``g`` for a diagonal mass).
    x_at : ndarray, shape (d,) or (0,)
        Where ``g`` and ``lp`` were evaluated: written by the lagged step (its last
        midpoint), untouched by the others (x itself; pass an empty array).
    lp : float
    rng : numpy.random.Generator
    scratch : tuple
        From :func:`step_scratch`.

    Returns
    -------
    steps_done : int
        ``n_steps``, or the index of the step that went non-finite.
    lp : float
        log π at the returned state (at ``x_at`` for the lagged step).
    """
    u, chol, dense = precond
    raw, z, x_mid, g_mid, p_mid, w2, w3, x_new, v_new, g_new, v_at = scratch
    for s in range(n_steps):
        alpha = draw_noise(rng, method, chol, raw, z)
        if method != ULMC:
            c = step_coefficients(h, gamma, alpha)
        propose(method, c, z, u, sigma, x, v, p, x_mid, w2, w3, x_new, v_new)
        if method == ULMC:
            lp_new = fn(x_new, g_new, *args)
            if not accept(lp_new, x_new, v_new, g_new, dense, x, v, g, p):
                return s, lp
            lp = lp_new
            continue
        lp_mid = fn(x_mid, g_mid, *args)
        complete(c, u, dense, x, v, g_mid, p_mid, w2, w3, x_new, v_new)
        if method == RMD_LAGGED:
            if not accept_lagged(c, gamma, z, u, sigma, lp_mid, x_mid, g_mid, p_mid, dense,
                                 x_new, v_new, x, v, g, p, x_at, v_at):
                return s, lp
            lp = lp_mid
            continue
        lp_new = fn(x_new, g_new, *args)
        if not accept(lp_new, x_new, v_new, g_new, dense, x, v, g, p):
            return s, lp
        lp = lp_new
    return n_steps, lp


@inlined_kernel
def chain_draws(fn, args, method, h, gamma, precond, corrector, thin, x, v, g, x_at, lp, rng,
                draws_out, lp_out, energy_out):
    """Advance one chain by ``draws_out.shape[0]`` draws of ``thin`` steps each.

    The body of :func:`run_chain` and of :func:`lcsample.kernels.many.run_chains` (chain
    by chain), so both give the same draws.

    Parameters
    ----------
    fn, args, method, h, gamma, precond, rng
        As in :func:`advance_steps`.
    corrector : tuple (int, float) or None
        (steps, step size) of the exponential-Euler run, from a fresh velocity, that each
        stored draw is taken after (``method="rmd-tv"``, :func:`corrected_draw`); the
        chain continues from its uncorrected state. None: no corrector.
    thin : int
    x, v, g : ndarray, shape (d,)
        State; updated in place to the last finite state.
    x_at : ndarray, shape (d,) or (0,)
        As in :func:`advance_steps`.
    lp : float
    draws_out : ndarray, shape (n, d)
    lp_out, energy_out : ndarray, shape (n,)
        log π and the Hamiltonian −log π + ½ vᵀU⁻¹v at each draw
        (:func:`~lcsample.kernels.step.kinetic_energy`); for the lagged step, both at the
        draw's last midpoint, the last point where the target was evaluated.

    Returns
    -------
    n_done : int
        Draws written; fewer than n when the chain diverged.
    lp : float
        log π at the returned state.
    grads_in_failed_draw : int
        Gradient evaluations spent on the draw that diverged (0 if none did).
    """
    u, chol, dense = precond
    d = x.shape[0]
    sigma = np.sqrt(2.0 * gamma * u)
    p = precondition(dense, g, np.empty(d))
    scratch = step_scratch(d, method)
    # the lagged step's lp is its midpoint's, so a draw's energy takes the velocity there,
    # which accept_lagged writes into the last work array (step_scratch)
    v_draw = scratch[-1] if method == RMD_LAGGED else v
    c = step_coefficients(h, gamma, 1.0)
    per_step = GRADS_PER_STEP[method]
    for k in range(draws_out.shape[0]):
        done, lp = advance_steps(fn, args, method, c, h, gamma, thin, precond, sigma, x, v, g, p,
                                 x_at, lp, rng, scratch)
        if done < thin:
            return k, lp, (done + 1) * per_step
        # ``corrector is None`` is settled when numba compiles (the argument's type), so
        # runs without a corrector do not compile its code
        if corrector is None:
            for i in range(d):  # a loop: slice assignment costs numba ~2 s more to compile
                draws_out[k, i] = x[i]
            lp_out[k] = lp
            energy_out[k] = kinetic_energy(u, chol, v_draw) - lp
        else:
            failed, lp_out[k], kinetic = corrected_draw(fn, args, corrector, gamma, precond,
                                                        sigma, rng, x, g, lp, draws_out[k])
            if failed:
                return k, lp, thin * per_step + failed
            energy_out[k] = kinetic - lp_out[k]
    return draws_out.shape[0], lp, 0


def _run_chain(fn, args, method, h, gamma, precond, corrector, thin, x, v, g, x_at, lp, rng,
               draws_out, lp_out, energy_out):
    """:func:`chain_draws` as a loop of its own, for :func:`run_chain` to compile."""
    return chain_draws(fn, args, method, h, gamma, precond, corrector, thin, x, v, g, x_at, lp,
                       rng, draws_out, lp_out, energy_out)


@kernel
def corrected_draw(fn, args, corrector, gamma, precond, sigma, rng, x, g, lp, draw_out):
    """The corrector of ``method="rmd-tv"``: a short ULMC run from (x, fresh velocity).

    Parameters
    ----------
    corrector : tuple (int, float)
        Steps and step size.
    fn, args, gamma, precond, sigma, rng
        As in :func:`advance_steps`.
    x, g : ndarray, shape (d,)
        The chain's position and ∇log π there (not modified).
    lp : float
    draw_out : ndarray, shape (d,)
        Receives the run's end point.

    Returns
    -------
    failed : int
        0, or the gradient evaluations spent when the run went non-finite.
    lp : float
        log π at the end point.
    kinetic : float
        ½ vᵀU⁻¹v of the run's end velocity.
    """
    n_corr, h_corr = corrector
    u, chol, dense = precond
    d = x.shape[0]
    xc, vc, gc = x.copy(), np.empty(d), g.copy()
    pc = precondition(dense, gc, np.empty(d))
    fresh_velocity(rng, u, chol, np.empty((d, 1)), np.empty((d, 1)), vc)
    done, lp = advance_steps(fn, args, ULMC, step_coefficients(h_corr, gamma, 1.0), h_corr, gamma,
                             n_corr, precond, sigma, xc, vc, gc, pc, np.empty(0), lp, rng,
                             step_scratch(d, ULMC))
    if done < n_corr:
        return done + 1, lp, 0.0
    for i in range(d):
        draw_out[i] = xc[i]
    return 0, lp, kinetic_energy(u, chol, vc)


def _evaluate_rows(fn, args, X, lp, G):
    """``lp[i] = fn(X[i], G[i], *args)`` for every row: a jitted target on a batch."""
    for i in range(X.shape[0]):
        lp[i] = fn(X[i], G[i], *args)


def run_chain(fn, args, *rest):
    """:func:`chain_draws` compiled for ``fn``'s type (cached on disk), called with ``rest``.

    The arguments and the returned ``(n_done, lp, grads_in_failed_draw)`` are those of
    :func:`chain_draws`.
    """
    return with_target(_run_chain, fn, args, *rest)


def evaluate_rows(fn, args, X, lp, G):
    """``lp[i] = fn(X[i], G[i], *args)`` for every row of X (n, d), in compiled code."""
    with_target(_evaluate_rows, fn, args, X, lp, G)
