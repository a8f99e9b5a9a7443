"""Where chains start: the mode by L-BFGS and jittered starting points around it.

Starting at the mode removes the transient that otherwise dominates a short warmup, and
the curvature at the mode (:mod:`lcsample.mcmc.warmup.curvature`) gives the first inverse
mass, so the first warmup window already runs well conditioned. Whether the target has
other optima is asked afterwards (:mod:`lcsample.mcmc.warmup.modes`).
"""

from typing import NamedTuple

import numpy as np
import scipy.optimize

from .curvature import diagonal_curvature, hessian, positive_floor
from .mass import InverseMass

__all__ = [
    "ModeSearch",
    "dense_inverse_mass",
    "find_mode",
    "flat_directions",
    "initial_points",
    "jittered_starts",
    "polish_mode",
    "uniform_start",
]

# Stan's default: initial positions uniform in (-2, 2) on the unconstrained scale.
INIT_RADIUS = 2.0
# Before a dense Hessian, the mode search stops once an iteration gains less than this
# many nats, and the Newton step from the Hessian finishes it (polish_mode): the Hessian
# is taken within a fraction of a posterior standard deviation of the mode (a gap of
# ½z² nats at z standard deviations), where it barely differs from the mode's.
_ROUGH_NATS = 0.5
# Standard deviations between the Newton point and the polished mode beyond which the
# Hessian at the rough point is not trusted for the mode's (polish_mode).
_NEWTON_RADIUS = 0.5
_INIT_TRIES = 100

class ModeSearch(NamedTuple):
    """Result of :func:`find_mode`.

    Attributes
    ----------
    x : ndarray, shape (d,)
        Best point found (the mode when ``converged``).
    logdensity : float
    gradient : ndarray, shape (d,)
    n_grads : int
        Log density and gradient evaluations used.
    converged : bool
    message : str
    near : int
        Index of the known optimum the search stopped next to, or -1.
    """

    x: np.ndarray
    logdensity: float
    gradient: np.ndarray
    n_grads: int
    converged: bool
    message: str
    near: int = -1


class _Arrived(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside the objective to stop a search next to a known optimum."""

    def __init__(self, index):
        self.index = index


def find_mode(logdensity_and_gradient, x0, max_iter=1000, mass=None, known=(), radius=0.5,
              rough_nats=None):
    """Maximize log π by L-BFGS from ``x0``.

    Non-finite values and arithmetic errors (outside the support) are reported to the
    optimizer as +inf potential, which its line search backs away from; the best finite
    point seen is returned whatever the optimizer's status.

    Parameters
    ----------
    logdensity_and_gradient : callable
        ``x -> (lp, grad)``.
    x0 : ndarray, shape (d,)
        A point where log π is finite.
    max_iter : int
    mass : InverseMass, optional
        Search in the coordinates z with x = x0 + U^{1/2} z: with U the inverse Hessian at
        a mode, a near-Gaussian target becomes near-isotropic there and L-BFGS needs a
        few steps instead of many.
    known : sequence of ndarray, shape (d,)
        Optima found before: the search stops at the first point within ``radius``
        standard deviations of one (measured by ``mass``, which it then requires).
    radius : float
    rough_nats : float, optional
        Stop once an iteration gains less than this in log π (``converged`` is then
        False): a start for :func:`polish_mode`, which finishes in far fewer evaluations.

    Returns
    -------
    ModeSearch
    """
    best = {"lp": -np.inf, "x": None, "g": None}
    last = [-np.inf]
    count = [0]
    to_x = (lambda z: x0 + mass.root(z)) if mass is not None else (lambda z: z)
    to_z = mass.root_transpose if mass is not None else (lambda g: g)

    def potential(z):
        count[0] += 1
        x = to_x(z)
        try:
            lp, g = logdensity_and_gradient(x)
        except ArithmeticError:  # a compiled target's 1/0 where a scale underflowed
            return np.inf, np.zeros_like(z)
        if not (np.isfinite(lp) and np.isfinite(g).all()):
            return np.inf, np.zeros_like(z)
        if lp > best["lp"]:
            best.update(lp=lp, x=x.copy(), g=g.copy())
        for k, m in enumerate(known):
            if np.linalg.norm(mass.whiten(x - m)) < radius:
                best.update(lp=lp, x=x.copy(), g=g.copy())
                raise _Arrived(k)
        return -lp, -to_z(g)

    def rough_stop(_):
        if best["lp"] - last[0] < rough_nats:
            raise StopIteration
        last[0] = best["lp"]

    z0 = np.zeros_like(x0) if mass is not None else x0
    try:
        res = scipy.optimize.minimize(potential, z0, jac=True, method="L-BFGS-B",
                                      callback=rough_stop if rough_nats else None,
                                      options={"maxiter": max_iter, "gtol": 1e-8,
                                               "ftol": 1e-13})
    except _Arrived as stop:
        return ModeSearch(best["x"], float(best["lp"]), best["g"], count[0], False,
                          f"stopped next to known optimum {stop.index}", stop.index)
    return ModeSearch(best["x"], float(best["lp"]), best["g"], count[0], bool(res.success),
                      str(res.message))


def polish_mode(logdensity_and_gradient, rough, mass):
    """Finish a rough mode search with a Newton step and a preconditioned L-BFGS.

    With ``mass`` the inverse Hessian U at ``rough.x``, the Newton point x + U∇log π is the
    mode of a Gaussian target and close to it on a near-Gaussian one; L-BFGS in the
    coordinates whitened by U then converges in a few evaluations where, unpreconditioned,
    it needed up to ~180 more on an ill-conditioned target (κ = 10³, d = 100). The Newton
    point is used only where it is finite and higher.

    Returns
    -------
    mode : ModeSearch
        Its ``n_grads`` counts the Newton point's evaluation and the search's.
    trusted : bool
        Whether the mode lies within :data:`_NEWTON_RADIUS` standard deviations (of U) of
        the Newton point: the quadratic model at ``rough.x`` held, so U stands for the
        Hessian at the mode. Where it did not (a funnel, whose curvature changes by orders
        of magnitude on the way), the Hessian must be taken again at the mode.
    """
    x_newton = rough.x + mass.root(mass.root_transpose(rough.gradient))
    try:
        lp = logdensity_and_gradient(x_newton)[0]
    except ArithmeticError:  # as in find_mode: outside the support
        lp = -np.inf
    start = x_newton if np.isfinite(lp) and lp > rough.logdensity else rough.x
    found = find_mode(logdensity_and_gradient, start, mass=mass)
    n_grads = found.n_grads + 1
    if found.logdensity < rough.logdensity:  # an unconverged search that lost ground
        found = rough._replace(converged=False)
    trusted = bool(np.linalg.norm(mass.whiten(found.x - x_newton)) <= _NEWTON_RADIUS)
    return found._replace(n_grads=n_grads), trusted


def jittered_starts(center, mass, rng_list, check, radius=2.0):
    """Starting points center + U^{1/2}·uniform(-radius, radius), evaluated, one per generator.

    With U the Laplace covariance, ±2 scale units around the mode is overdispersed
    relative to the posterior (so R-hat can detect non-mixing) yet inside its bulk.

    Parameters
    ----------
    center : ModeSearch
        The optimum to jitter around.
    mass : InverseMass
    rng_list : list of numpy.random.Generator
        One per starting point (each chain's stream).
    check : callable
        ``x -> (lp, grad)``, raising ValueError outside the support (``Target.check``):
        a point where it raises is replaced by the center.
    radius : float

    Returns
    -------
    x : ndarray, shape (len(rng_list), d)
    lp : ndarray, shape (len(rng_list),)
    grad : ndarray, shape (len(rng_list), d)
    """
    n, d = len(rng_list), center.x.shape[0]
    x, lp, grad = np.empty((n, d)), np.empty(n), np.empty((n, d))
    for c, rng in enumerate(rng_list):
        x[c] = center.x + mass.root(rng.uniform(-radius, radius, d))
        try:
            lp[c], grad[c] = check(x[c])
        except ValueError:
            # a jittered point outside the support: start there at the center
            x[c], lp[c], grad[c] = center.x, center.logdensity, center.gradient
    return x, lp, grad


def initial_points(target, init, x_init, rngs, init_rng, adapt_mass, fixed_mass, info):
    """Starting points, the initial inverse mass, and the mode they came from.

    The mode is found by L-BFGS (from a uniform(-2, 2) point of the initialization
    stream) when the starts or the first inverse mass need it: the mass starts from the
    curvature there (inverse Hessian, or its diagonal), and ``init="mode"`` jitters each
    chain around it by ±2 of the mass's standard deviations.

    Parameters
    ----------
    target : Target or BatchedTarget
    init : {"mode", "uniform"}
    x_init : ndarray, shape (chains, d), or None
        The user's starting points.
    rngs : list of numpy.random.Generator
        The chains' streams (the jitter of ``init="mode"``, the points of ``"uniform"``).
    init_rng : numpy.random.Generator
        The initialization stream (the search's start, the diagonal curvature probes).
    adapt_mass : {"diag", "dense"} or None
    fixed_mass : InverseMass or None
    info : dict
        Receives ``init_grad_evals``, ``mode_converged`` and ``mode_logdensity``.

    Returns
    -------
    starts : ndarray, shape (chains, d)
    evaluated : tuple (lp, grad) of ndarrays, shapes (chains,) and (chains, d), or None
        The log density and gradient at the starts, when they were evaluated here.
    mass : InverseMass
    mode : ModeSearch or None
        None when no search was needed.
    """
    starts_from_mode = x_init is None and init == "mode"
    mode = None
    rough = fixed_mass is None and adapt_mass == "dense"
    if fixed_mass is None or starts_from_mode:
        x0, _, _, tries = uniform_start(target, init_rng)
        mode = find_mode(target.logdensity_and_gradient, x0,
                         rough_nats=_ROUGH_NATS if rough else None)
        info["init_grad_evals"] = tries + mode.n_grads
    mass = (fixed_mass if fixed_mass is not None
            else _mass_at_mode(target, mode, adapt_mass, init_rng, info))
    if rough:
        mode, trusted = polish_mode(target.logdensity_and_gradient, mode, mass)
        info["init_grad_evals"] += mode.n_grads
        if not trusted:
            info.pop("flat_directions", None)  # judged again at the mode
            mass = _mass_at_mode(target, mode, adapt_mass, init_rng, info)
    if mode is not None:
        info.update(mode_converged=mode.converged, mode_logdensity=mode.logdensity)
    if x_init is not None:
        return x_init, None, mass, mode
    if not starts_from_mode:
        points = [uniform_start(target, rng) for rng in rngs]
        return (np.array([p[0] for p in points]), (np.array([p[1] for p in points]),
                np.array([p[2] for p in points])), mass, mode)
    x, lp, grad = jittered_starts(mode, mass, rngs, check=target.check)
    return x, (lp, grad), mass, mode


def _mass_at_mode(target, mode, adapt_mass, init_rng, info):
    """The first inverse mass: the inverse Hessian at the mode, or its diagonal.

    Directions without positive curvature there are recorded by name in
    ``info["flat_directions"]`` (see :func:`flat_directions`).
    """
    if adapt_mass == "dense":
        mass, evals, evecs = dense_inverse_mass(target.logdensity_and_gradient, mode.x,
                                                mode.gradient)
        info["init_grad_evals"] += target.dim
        _record_flat(info, flat_directions(evals, evecs, target.structure.labels()))
        return mass
    curv, n = diagonal_curvature(target.logdensity_and_gradient, mode.x, mode.gradient,
                                 init_rng)
    info["init_grad_evals"] += n
    _record_flat(info, flat_directions(curv, None, target.structure.labels()))
    return InverseMass(1.0 / positive_floor(curv))


def dense_inverse_mass(logdensity_and_gradient, x, g):
    """The inverse Hessian of -log π at ``x`` (d gradient evaluations), as an inverse mass.

    Non-positive eigenvalues are floored (:func:`positive_floor`).

    Returns
    -------
    mass : InverseMass
    evals : ndarray, shape (d,)
    evecs : ndarray, shape (d, d)
        The Hessian's eigen-decomposition, before the floor.
    """
    evals, evecs = np.linalg.eigh(hessian(logdensity_and_gradient, x, g))
    return InverseMass((evecs / positive_floor(evals)) @ evecs.T), evals, evecs


def flat_directions(curvature, vectors, labels):
    """Labels of the directions without positive curvature at the mode.

    Parameters
    ----------
    curvature : ndarray, shape (k,)
        Curvatures of -log π: eigenvalues (with ``vectors``) or the diagonal (None).
    vectors : ndarray, shape (d, k) or None
    labels : list of str
        Coordinate labels; an eigenvector is named by its largest component.

    Returns
    -------
    list of str
        Directions whose curvature is at most 1e-8 of the largest: flat (an improper
        direction, a variable without prior or data) or curving upward.
    """
    flat = np.flatnonzero(curvature <= 1e-8 * max(float(np.max(curvature)), 0.0))
    if vectors is None:
        return [labels[i] for i in flat]
    return [labels[int(np.argmax(np.abs(vectors[:, i])))] for i in flat]


def _record_flat(info, names):
    if names:
        info["flat_directions"] = ", ".join(names)


def uniform_start(target, rng):
    """A uniform(-2, 2) point where the target is finite (Stan's rule).

    Returns
    -------
    x : ndarray, shape (d,)
    lp : float
    grad : ndarray, shape (d,)
        The evaluation there.
    tries : int
        Points drawn (and evaluated) until a finite one.
    """
    for tries in range(1, _INIT_TRIES + 1):
        x0 = rng.uniform(-INIT_RADIUS, INIT_RADIUS, target.dim)
        try:
            lp, grad = target.check(x0)
            return x0, lp, grad, tries
        except ValueError:
            # retry a non-finite random start; after the last try the check's own error
            # (which says what is wrong) goes to the user
            if tries == _INIT_TRIES:
                raise
    raise AssertionError("unreachable")
