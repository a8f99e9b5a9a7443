"""Other optima: a one-gradient test of log-concavity, and mode searches where it fails.

A concave log density lies below each of its tangent planes: for every x and every m,

    log π(m) ≤ log π(x) + ∇log π(x)·(m − x).

One gradient at a point x, with m the mode found first, therefore either agrees with a
single mode or proves that the target is not log-concave. Running several full L-BFGS
searches on every target would multiply the cost of the first search and, on the
log-concave targets lcsample is built for, end where the first one did. So the chains'
jittered starts (evaluated anyway) and a few points uniform in (-2, 2) (Stan's rule, from
a stream of their own) are tested, and only points that fail start mode searches. When
those end at distinct optima, chains are spread over them so that R-hat sees the modes.
"""

from typing import NamedTuple

import numpy as np

from .starts import ModeSearch, find_mode, jittered_starts, uniform_start

__all__ = [
    "ModeSurvey",
    "several_modes_warning",
    "spread_chains",
    "survey_modes",
    "tangent_gaps",
]

#: Points uniform in (-2, 2) tested besides the chains' starts.
PROBES = 4
#: Mode searches at most, from the points that fail the test by the most.
MAX_SEARCHES = 4
#: Two optima closer than this, in standard deviations of the first mode's Laplace
#: approximation, are one mode.
SAME_MODE = 1.0
#: An optimum this many nats (at least; d when d is larger) below the highest holds a
#: negligible share of the mass, unless it is e^(that/d) times wider in every direction:
#: it is not a mode worth spreading chains over (L-BFGS also stops at such points far
#: out in a scale's tail).
NEGLIGIBLE_NATS = 20.0
# Halvings of a Newton step that lowers log π before the search hands over to L-BFGS.
_HALVINGS = 8
# Rounding allowance of the tangent test, in units of the output's machine epsilon times
# the magnitudes summed (a float32 target needs the wider float32 allowance).
_ROUNDING = 64.0


class ModeSurvey(NamedTuple):
    """Result of :func:`survey_modes`.

    Attributes
    ----------
    optima : list of ModeSearch
        The first search, then each further distinct optimum whose log density is within
        max(:data:`NEGLIGIBLE_NATS`, d) of the highest, in the order found.
    n_points : int
        Points tested.
    n_failed : int
        Points where the tangent test failed: each one proves the target is not
        log-concave.
    n_grads : int
        Evaluations spent here (the chains' starts were evaluated before and are free).
    """

    optima: list
    n_points: int
    n_failed: int
    n_grads: int


def tangent_gaps(x, lp, grad, mode_x, mode_lp):
    """How far log π(m) lies below each point's tangent plane.

    Parameters
    ----------
    x, grad : ndarray, shape (n, d)
        Points and their gradients.
    lp : ndarray, shape (n,)
    mode_x : ndarray, shape (d,)
    mode_lp : float

    Returns
    -------
    gaps : ndarray, shape (n,)
        ``lp + grad·(m − x) − log π(m)``: non-negative for a concave log density.
    scale : ndarray, shape (n,)
        The magnitude of the summed terms, for a rounding allowance.
    """
    step = grad * (mode_x - x)
    gaps = lp + step.sum(axis=1) - mode_lp
    scale = np.abs(lp) + np.abs(step).sum(axis=1) + abs(mode_lp)
    return gaps, scale


def survey_modes(target, mode, mass, x, lp, grad, rng):
    """Search from :data:`PROBES` uniform points and from the starts that fail the test.

    Each search runs in the first mode's whitened coordinates (a few steps on a
    near-Gaussian target) and stops as soon as it comes within half a standard deviation
    of an optimum already found.

    Parameters
    ----------
    target : Target or BatchedTarget
    mode : ModeSearch
        The first search.
    mass : InverseMass
        Its Laplace covariance (the first inverse mass), which measures distances.
    x, grad : ndarray, shape (chains, d)
    lp : ndarray, shape (chains,)
        The chains' starts and their evaluations.
    rng : numpy.random.Generator
        The probes' own stream.

    Returns
    -------
    ModeSurvey
    """
    probes = [uniform_start(target, rng) for _ in range(PROBES)]
    n_grads = sum(p[3] for p in probes)
    x = np.vstack([x, [p[0] for p in probes]])
    lp = np.concatenate([lp, [p[1] for p in probes]])
    grad = np.vstack([grad, [p[2] for p in probes]])
    gaps, scale = tangent_gaps(x, lp, grad, mode.x, mode.logdensity)
    failed = gaps < -_ROUNDING * target.output_eps * scale
    searched = failed.copy()
    searched[-PROBES:] = True  # the probes are searched from whatever the test says
    optima = [mode]
    for i in np.flatnonzero(searched)[np.argsort(gaps[searched])][:MAX_SEARCHES]:
        found = _search(target.logdensity_and_gradient, x[i], lp[i], grad[i], mass, optima)
        n_grads += found.n_grads
        if found.near < 0 and found.converged:
            optima.append(found)
    return ModeSurvey(_weighty(optima, x.shape[1]), len(x), int(failed.sum()), n_grads)


def _weighty(optima, d):
    """The first optimum, then the others within max(NEGLIGIBLE_NATS, d) of the highest."""
    floor = max(o.logdensity for o in optima) - max(NEGLIGIBLE_NATS, float(d))
    return [optima[0], *(o for o in optima[1:] if o.logdensity >= floor)]


def _search(logdensity_and_gradient, x, lp, grad, mass, optima, newton_steps=5):
    """From ``x``, Newton steps with the first mode's Hessian, then L-BFGS if still far.

    With U the inverse Hessian at the first mode, x + U∇log π(x) lands on that mode in
    one step for a Gaussian and in a few for a near-Gaussian target, far fewer than
    L-BFGS (whose first step has unit length) takes from a dispersed point. A step that
    lowers log π is halved. The search stops within :data:`SAME_MODE` standard deviations
    of a known optimum; a point that gets there by neither returns a full L-BFGS search.

    Returns
    -------
    ModeSearch
        ``near`` >= 0 when it stopped next to ``optima[near]``.
    """
    n_grads = 0
    for _ in range(newton_steps):
        near = _nearest(x, mass, optima)
        if near >= 0:
            return ModeSearch(x, lp, grad, n_grads, False, "next to a known optimum", near)
        step = mass.root(mass.root_transpose(grad))  # U·∇log π
        for _ in range(_HALVINGS):
            new_lp, new_grad = logdensity_and_gradient(x + step)
            n_grads += 1
            if np.isfinite(new_lp) and np.isfinite(new_grad).all() and new_lp >= lp:
                x, lp, grad = x + step, new_lp, new_grad
                break
            step = 0.5 * step
        else:
            break  # no ascent along U·∇log π: leave it to L-BFGS
    found = find_mode(logdensity_and_gradient, x, mass=mass, known=[m.x for m in optima],
                      radius=SAME_MODE)
    return found._replace(n_grads=found.n_grads + n_grads)


def _nearest(x, mass, optima):
    """Index of an optimum within SAME_MODE standard deviations of ``x``, or -1."""
    for k, m in enumerate(optima):
        if np.linalg.norm(mass.whiten(x - m.x)) < SAME_MODE:
            return k
    return -1


def several_modes_warning(optima, mass):
    """The warning for a survey that found more than one optimum."""
    gaps = [s.x - optima[0].x for s in optima[1:]]
    parts = [
        f"{np.linalg.norm(gap):.3g} away ({np.linalg.norm(mass.whiten(gap)):.3g} sd of the "
        f"first mode), log density {s.logdensity:.6g}"
        for gap, s in zip(gaps, optima[1:], strict=True)
    ]
    return (
        f"the target is not log-concave: mode searches from dispersed points ended at "
        f"{len(optima)} different optima (the first at log density "
        f"{optima[0].logdensity:.6g}; then " + "; ".join(parts) + "). Chains start at "
        "different optima so that R-hat can show it. A Langevin chain seldom crosses "
        "between separated modes, so the draws do not weigh the modes correctly: sample "
        "each mode separately, reparameterize, or use a sampler built for multimodal "
        "targets."
    )


def spread_chains(chain_list, optima, mass, rng, check):
    """Move chain c to a jittered start around optimum ``c % len(optima)``.

    Chains assigned to the first optimum keep their starts (and so their draws); the
    others are jittered with ``rng``, the survey's stream, leaving the chains' own.

    Returns
    -------
    int
        Evaluations spent.
    """
    n_grads = 0
    for c, chain in enumerate(chain_list):
        k = c % len(optima)
        if k:
            x, lp, grad = jittered_starts(optima[k], mass, [rng], check)
            chain.move_to(x[0], float(lp[0]), grad[0])
            n_grads += 1
    return n_grads
