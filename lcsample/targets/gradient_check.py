"""Is a target's gradient the gradient of its log density? A check by finite differences.

A gradient off by a factor, a sign or a missing term samples the wrong distribution with
no other symptom, so :func:`lcsample.sample` checks it once before sampling: the
directional derivative ∇log π(x)·u against a central difference of log π along a few
random unit directions u (four log-density evaluations each, Richardson-extrapolated).
Only on a mismatch are coordinates differenced one by one, to name the worst.
"""

import numpy as np

__all__ = ["check_gradient"]

# Relative mismatch of a directional derivative that counts as a wrong gradient.
_RELATIVE_TOLERANCE = 1e-2
# Difference step, relative to the point's size, and the coordinates named on a mismatch.
_STEP = 1e-4
_NAMED = 5
_MAX_COORDINATES = 100


def _difference(logdensity, x, u, h, eps):
    """Richardson-extrapolated central difference of log π along u, and its noise floor.

    ``eps`` is the relative precision of log π's values: their rounding, divided by the
    step, is noise below which a difference says nothing. So is the gap between the two
    steps' differences, which bounds the error left after extrapolation: where log π
    changes by orders of magnitude within the step (a point deep in a funnel's neck) the
    check abstains instead of blaming a right gradient.
    """
    def central(step):
        return (logdensity(x + step * u) - logdensity(x - step * u)) / (2.0 * step)

    coarse, fine = central(h), central(0.5 * h)
    scale = max(abs(logdensity(x)), 1.0)
    return (4.0 * fine - coarse) / 3.0, 50.0 * eps * scale / h + abs(fine - coarse)


def _mismatch(derivative, difference, noise):
    """Relative error of ``derivative`` against ``difference``, 0 when within the noise."""
    gap = abs(derivative - difference)
    if not np.isfinite(difference) or gap <= noise:
        return 0.0
    return gap / max(abs(derivative), abs(difference), noise)


def _worst_coordinates(logdensity, x, grad, h, eps, labels):
    """Per-coordinate differences on up to 100 coordinates; the worst few, named by labels."""
    d = x.shape[0]
    coords = np.arange(d) if d <= _MAX_COORDINATES else np.unique(np.concatenate([
        np.argsort(-np.abs(grad))[:_MAX_COORDINATES // 2],
        np.linspace(0, d - 1, _MAX_COORDINATES // 2).astype(int)]))
    rows = []
    for i in coords:
        e = np.zeros(d)
        e[i] = 1.0
        difference, noise = _difference(logdensity, x, e, h, eps)
        rows.append((_mismatch(grad[i], difference, noise), i, grad[i], difference))
    rows.sort(reverse=True)
    return ", ".join(f"{labels[i]} (gradient {g:.4g}, differences {fd:.4g})"
                     for err, i, g, fd in rows[:_NAMED] if err > _RELATIVE_TOLERANCE)


def check_gradient(target, x, n_directions=3, seed=0):
    """Raise if ``target``'s gradient at ``x`` disagrees with differences of its log density.

    Parameters
    ----------
    target : Target
    x : ndarray, shape (d,)
        A point where the target is finite (best away from the mode, where the gradient
        is not small).
    n_directions : int
        Random unit directions tried; each costs four log-density evaluations.
    seed : int
        For the directions (not the chains' streams, which stay untouched).

    Returns
    -------
    int
        Log-density and gradient evaluations used.

    Raises
    ------
    ValueError
        Naming the target's function, the relative error and the worst coordinates.
    """
    def logdensity(point):
        return target.logdensity_and_gradient(point)[0]

    x = np.asarray(x, dtype=np.float64)
    grad = target.logdensity_and_gradient(x)[1]
    eps = target.output_eps  # known once the function has been called
    # the step that balances rounding (eps/h) against Richardson's O(h⁴) error, at least 1e-4
    h = max(_STEP, eps ** 0.2) * max(1.0, float(np.max(np.abs(x))))
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(n_directions):
        u = rng.standard_normal(x.shape[0])
        u /= np.linalg.norm(u)
        difference, noise = _difference(logdensity, x, u, h, eps)
        worst = max(worst, _mismatch(float(grad @ u), difference, noise))
    evaluations = 1 + 5 * n_directions
    if worst <= _RELATIVE_TOLERANCE:
        return evaluations
    fn = getattr(target, "batch_fn", None) or target.logdensity_and_grad
    named = _worst_coordinates(logdensity, x, grad, h, eps, target.structure.labels())
    raise ValueError(
        f"the gradient of {getattr(fn, '__name__', 'the target')} does not match finite "
        f"differences of its log density: directional derivatives differ by "
        f"{100 * worst:.3g} % at the starting point. Worst coordinates: "
        f"{named or 'none singled out'}. "
        "Check the gradient's formula (a factor, a sign, a missing term), or pass "
        "check_gradient=False to skip this check.")
