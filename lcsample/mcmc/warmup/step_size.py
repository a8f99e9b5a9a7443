"""The step size of an unadjusted sampler, from its exact bias or its energy error.

There is no acceptance rate to tune on. The ``"theory"`` route takes the largest step
whose exact stationary variance error on a Gaussian of the target's largest
(preconditioned) curvature is ``target_accuracy`` (:func:`step_size_for_bias`, from
:func:`lcsample.stationary_covariance`): the bias of an unadjusted sampler is largest along
the stiffest direction, so this bounds it where averages do not look. The ``"adaptive"``
route tunes h on the energy error of noise-free steps (:func:`energy_error`) against a
target at which both routes agree on a standard Gaussian (:func:`energy_target`).
"""

import numpy as np

from ...kernels.coefficients import step_coefficients
from ...kernels.exact import stationary_covariance
from ...kernels.step import NORMALS_PER_COORDINATE, RMD, ULMC, complete, precondition, propose

__all__ = [
    "STIFF_VARIANCE_BIAS",
    "chain_law",
    "energy_error",
    "energy_target",
    "extreme_curvature_warning",
    "large_step_warning",
    "stationary_bias",
    "step_size_for_bias",
]

#: Relative error of the stationary variance allowed along the stiffest direction.
STIFF_VARIANCE_BIAS = 0.01


def chain_law(method):
    """The :func:`lcsample.stationary_covariance` method of a ``sample`` method's chain.

    ``"rmd-tv"`` and ``"rmd-picard"`` run the RM-ULMC chain (the corrector's own bias is
    :func:`lcsample.corrected_variance`'s).
    """
    return method if method in ("ulmc", "rmd-lagged") else "rmd"


def stationary_bias(curvature, step_size, friction, method="rmd"):
    """Relative error of the stationary variance along a direction of curvature ``curvature``.

    Parameters
    ----------
    curvature, step_size, friction : float
        In preconditioned units (unit inverse mass).
    method : {"rmd", "ulmc", "rmd-lagged"}

    Returns
    -------
    float
        Var x · curvature - 1 under the chain's exact stationary law; inf when the chain is
        unstable (has no stationary law) at this step.
    """
    try:
        var_x = stationary_covariance(curvature, step_size, friction, 1.0, method)[0, 0]
    except ValueError:  # unstable: far too large
        return np.inf
    return var_x * curvature - 1.0


def large_step_warning(curvature, step_size, friction, method, target_accuracy):
    """What to tell a user whose own step is far from ``target_accuracy``; None if nothing.

    A user-given step is questioned when its stationary variance error along the stiffest
    direction is over 5 × ``target_accuracy`` (or the chain is unstable there).

    Returns
    -------
    str or None
    """
    bias = stationary_bias(curvature, step_size, friction, method)
    if bias <= 5.0 * target_accuracy:
        return None
    advice = (f"the step that meets target_accuracy={target_accuracy:g} with this friction is "
              f"{step_size_for_bias(curvature, friction, method, target_accuracy):.3g}")
    where = (f"along the stiffest direction the target shows (curvature {curvature:.3g} in "
             "the preconditioned units of step_size)")
    if not np.isfinite(bias):
        return (f"step_size={step_size:g} with friction={friction:g} is unstable {where}: the "
                f"chain has no stationary law there; {advice}")
    return (f"step_size={step_size:g} with friction={friction:g} overstates the variance {where} "
            f"by {100 * bias:.3g} %; {advice}")


#: Preconditioned curvatures beyond these, seen by the warmup's last estimate, mean the
#: target in the chains' region is nothing like its Laplace approximation at the mode.
CURVATURE_RANGE = (1e-4, 1e4)


def extreme_curvature_warning(lam_min, lam_max, step_size, friction):
    """What to tell a user whose tuned step and friction came from extreme curvatures.

    The first inverse mass is the Laplace covariance at the mode, so a target that stays
    close to it shows preconditioned curvatures near 1 wherever the chains are. Outside
    :data:`CURVATURE_RANGE` the tuned step is absurd (it was 1870 for the centered eight
    schools started uniformly) and a longer run will not fix it.

    Returns
    -------
    str or None
    """
    low, high = CURVATURE_RANGE
    if low <= lam_min and lam_max <= high:
        return None
    return (
        f"the warmup tuned step_size={step_size:.3g} and friction={friction:.3g} from "
        f"curvatures between {lam_min:.3g} and {lam_max:.3g} (preconditioned units, where "
        "a target close to its Laplace approximation at the mode shows about 1): where the "
        "chains are, the target is nothing like it is at its mode. A log density that rises "
        "without bound (a hierarchical scale going to 0) or a flat direction does this: "
        "reparameterize (non-centered form, proper priors) or use NUTS; a longer run will "
        "not help."
    )


def step_size_for_bias(curvature, friction, method="rmd", tol=STIFF_VARIANCE_BIAS):
    """Largest step whose exact stationary variance error at ``curvature`` is ``tol``.

    Parameters
    ----------
    curvature : float
        λ_max of the preconditioned target (unit inverse mass).
    friction : float
    method : {"rmd", "ulmc", "rmd-lagged"}
    tol : float
        Allowed relative error of Var x (in absolute value: the lagged step's is negative
        at small steps).

    Returns
    -------
    float
    """

    def excess(h):
        return abs(stationary_bias(curvature, h, friction, method)) - tol

    # |bias| is increasing in h (the lagged step's crosses 0 well below tol, at ~2/3 of
    # the step it returns): bracket the root on a log scale, then bisect in log h
    lo = hi = 1.0 / np.sqrt(curvature)
    while excess(hi) < 0.0:
        hi *= 2.0
    while excess(lo) > 0.0:
        lo /= 2.0
    while hi / lo > 1.0 + 1e-3:
        mid = np.sqrt(lo * hi)
        if excess(mid) > 0.0:
            hi = mid
        else:
            lo = mid
    return float(lo)


def energy_error(logdensity_and_gradient, x, mass, h, method, rng, n_steps):
    """Energy changes of noise-free steps from ``x``: the adaptive route's tuning signal.

    From x and a fresh velocity, ``n_steps`` steps of the method's integrator
    (:mod:`lcsample.kernels.step`) with the friction and noise switched off (γ = 0, σ = 0),
    each step's change of H = -log π(x) + ½vᵀU⁻¹v recorded. The RM step takes its
    midpoint at α = ½ here: with a random α, shared by all coordinates, Var ΔH would grow
    like d² instead of d, and a per-dimension target (MCLMC's ``desired_energy_var``)
    would depend on d.

    Parameters
    ----------
    logdensity_and_gradient : callable
    x : ndarray, shape (d,)
    mass : InverseMass
    h : float
    method : {"rmd", "ulmc", "rmd-lagged"}
    rng : numpy.random.Generator
        For the velocity.
    n_steps : int

    Returns
    -------
    deltas : ndarray, shape (n_steps,)
        ΔH per step (inf once a step leaves the support).
    n_grads : int
    """
    u, _, dense = mass.kernel_args
    d = x.shape[0]
    # the lagged step is probed with the Shen–Lee one (its first step from x is that step),
    # and energy_target calibrates the probe at the lagged step's own theory step
    code = ULMC if method == "ulmc" else RMD
    c = step_coefficients(h, 0.0, 0.5 if code == RMD else 1.0)
    noise = np.zeros((d, NORMALS_PER_COORDINATE[code]))
    lp, g = logdensity_and_gradient(x)
    w = rng.standard_normal(d)  # whitened velocity: v = U^{1/2} w
    v = mass.root(w)
    x_mid, w2, w3, x_new, v_new, p_mid = (np.empty(d) for _ in range(6))
    deltas = np.full(n_steps, np.inf)
    n_grads = 1
    for k in range(n_steps):
        p = precondition(dense, g, np.empty(d))
        propose(code, c, noise, u, np.zeros(d), x, v, p, x_mid, w2, w3, x_new, v_new)
        if code == RMD:
            complete(c, u, dense, x, v, logdensity_and_gradient(x_mid)[1], p_mid, w2, w3, x_new,
                     v_new)
            n_grads += 1
        lp_new, g = logdensity_and_gradient(x_new)
        n_grads += 1
        w_new = mass.whiten(v_new)
        deltas[k] = (lp - lp_new) + 0.5 * (w_new @ w_new - w @ w)
        if not np.isfinite(deltas[k]):
            deltas[k:] = np.inf
            break
        x, v, w, lp = x_new.copy(), v_new.copy(), w_new, lp_new
    return deltas, n_grads


def energy_target(method, tol=STIFF_VARIANCE_BIAS):
    """Energy-error target at which both tuning routes agree on a standard Gaussian.

    On N(0, 1) the theory route's friction is γ = 1 and its step
    h* = :func:`step_size_for_bias` (1, 1, method, tol). This returns Var ΔH of one
    noise-free step (:func:`energy_error`) at h*, per dimension and exactly: the step maps
    z = (x, w) ~ N(0, I) linearly, z' = Mz, so ΔH = ½zᵀAz with A = MᵀM - I and
    Var ΔH = tr(A²)/2. For ``"rmd-lagged"`` the step is the Shen–Lee one that probes it,
    at the lagged step's h*.

    Parameters
    ----------
    method : {"rmd", "ulmc", "rmd-lagged"}
    tol : float

    Returns
    -------
    float
    """
    h = step_size_for_bias(1.0, 1.0, method, tol)
    if method != "ulmc":
        a = 0.5 * h
        mid = np.array([1.0 - 0.5 * a * a, a])  # x_mid as a row acting on (x, w)
        m = np.array([[1.0, h], [0.0, 1.0]]) - np.outer([h * (h - a), h], mid)
    else:
        m = np.array([[1.0 - 0.5 * h * h, h], [-h, 1.0]])
    A = m.T @ m - np.eye(2)
    return float(0.5 * np.trace(A @ A))
