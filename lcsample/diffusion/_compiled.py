"""The whole diffusion sampling loop compiled, for numba-jitted scores.

The same steps, random streams and order of draws as the Python loop of
:mod:`lcsample.diffusion.sampler` (which it is tested against), with the score called on
the whole batch per round. Each sample's generator is an element of a numba typed list,
so sample i draws from its own stream exactly as in the Python path.
"""

import numpy as np

from .._jit import driver
from ._kernels import uld_rm_midpoint, uld_rm_update, uld_step

__all__ = ["PREDICTOR_CODES", "CORRECTOR_CODES", "run"]

PREDICTOR_CODES = {"rm": 0, "exp-euler": 1, "ddpm": 2, "heun": 3}
CORRECTOR_CODES = {None: -1, "uld": 0, "uld-rm": 1}


@driver
def _score(score, args, x, t, out, counts, status):
    """One batched score call, counted (rows, rounds); the first non-finite row goes to
    ``status``."""
    counts[0] += x.shape[0]
    counts[1] += 1
    score(x, t, out, *args)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if not np.isfinite(out[i, j]):
                if status[0] < 0:
                    status[0] = i
                    status[1] = t[i]
                return False
    return True


@driver
def run(score, args, ts, first_step, predictor, corrector, every, n_corr, h_fixed, gamma_fixed,
        x, gens, denoise, counts, status):
    """Integrate the reverse process for every row of ``x`` in place.

    Parameters
    ----------
    score : numba dispatcher
        ``score(x, t, out, *args)``.
    args : tuple
    ts : ndarray, shape (m,)
        Decreasing OU times (a stretch of the grid).
    first_step : int
        Index of the stretch's first step in the whole grid (for ``every``).
    predictor, corrector : int
        :data:`PREDICTOR_CODES`, :data:`CORRECTOR_CODES`.
    every, n_corr : int
        Corrector after every ``every``-th step, ``n_corr`` Langevin steps.
    h_fixed, gamma_fixed : float
        Corrector step and friction; 0 for the defaults σ_t/4 and 2/σ_t.
    x : ndarray, shape (n, d)
    gens : numba.typed.List of numpy.random.Generator
        One stream per row.
    denoise : bool
    counts : ndarray, shape (2,), int64
        Output: score evaluations (rows) and rounds.
    status : ndarray, shape (2,)
        Output: (row, time) of a non-finite score, row = -1 if none.

    Returns
    -------
    bool
        False if a score was non-finite (``x`` then holds the state before that call).
    """
    n, d = x.shape
    s = np.empty((n, d))
    s2 = np.empty((n, d))
    x_mid = np.empty((n, d))
    tt = np.empty(n)
    alpha = np.empty(n)
    for k in range(ts.shape[0] - 1):
        t, t_next = ts[k], ts[k + 1]
        h = t - t_next
        tt[:] = t
        if not _score(score, args, x, tt, s, counts, status):
            return False
        if predictor == 0:  # randomized midpoint
            for i in range(n):
                alpha[i] = gens[i].random()
                tt[i] = t - alpha[i] * h
                for j in range(d):
                    x_mid[i, j] = np.exp(alpha[i] * h) * x[i, j] + np.expm1(alpha[i] * h) * s[i, j]
            if not _score(score, args, x_mid, tt, s2, counts, status):
                return False
            for i in range(n):
                for j in range(d):
                    x[i, j] = np.exp(h) * x[i, j] + h * np.exp((1.0 - alpha[i]) * h) * s2[i, j]
        elif predictor == 1:  # exponential integrator
            for i in range(n):
                for j in range(d):
                    x[i, j] = np.exp(h) * x[i, j] + np.expm1(h) * s[i, j]
        elif predictor == 2:  # ddpm
            noise = np.sqrt(np.expm1(2.0 * h))
            for i in range(n):
                for j in range(d):
                    z = gens[i].standard_normal()
                    x[i, j] = np.exp(h) * x[i, j] + 2.0 * np.expm1(h) * s[i, j] + noise * z
        else:  # heun in variance-exploding coordinates
            sig, sig_next = np.sqrt(np.expm1(2.0 * t)), np.sqrt(np.expm1(2.0 * t_next))
            for i in range(n):
                for j in range(d):
                    s[i, j] *= -sig * np.exp(-t)  # s becomes the first slope d1
                    y_euler = x[i, j] * np.exp(t) + (sig_next - sig) * s[i, j]
                    x_mid[i, j] = y_euler * np.exp(-t_next)
            tt[:] = t_next
            if not _score(score, args, x_mid, tt, s2, counts, status):
                return False
            for i in range(n):
                for j in range(d):
                    d2 = -sig_next * np.exp(-t_next) * s2[i, j]
                    x[i, j] = (x[i, j] * np.exp(t) + 0.5 * (sig_next - sig) * (s[i, j] + d2)) \
                        * np.exp(-t_next)
        if corrector >= 0 and (first_step + k + 1) % every == 0:
            sig = np.sqrt(-np.expm1(-2.0 * t_next))
            h_c = h_fixed if h_fixed > 0 else 0.25 * sig
            gamma = gamma_fixed if gamma_fixed > 0 else 2.0 / sig
            if not _correct(score, args, corrector, n_corr, h_c, gamma, t_next, x, gens, counts,
                            status):
                return False
    if denoise:
        t_end = ts[-1]
        tt[:] = t_end
        if not _score(score, args, x, tt, s, counts, status):
            return False
        for i in range(n):
            for j in range(d):
                x[i, j] = (x[i, j] - np.expm1(-2.0 * t_end) * s[i, j]) * np.exp(t_end)
    return True


@driver
def _correct(score, args, corrector, n_corr, h, gamma, t, x, gens, counts, status):
    """A Langevin run at level t from x and fresh velocities, written back into x."""
    n, d = x.shape
    tt = np.full(n, t)
    v = np.empty((n, d))
    for i in range(n):
        for j in range(d):
            v[i, j] = gens[i].standard_normal()
    s = np.empty((n, d))
    if not _score(score, args, x, tt, s, counts, status):
        return False
    xa, va = x.copy(), v
    xb, vb = np.empty((n, d)), np.empty((n, d))
    z = np.empty((n, d, 2 if corrector == 0 else 4))
    alphas = np.empty(n)
    x_mid, w2, w3, s_mid = np.empty((n, d)), np.empty((n, d)), np.empty((n, d)), np.empty((n, d))
    for k in range(n_corr):
        for i in range(n):
            if corrector == 1:
                alphas[i] = gens[i].random()
            for j in range(d):
                for c in range(z.shape[2]):
                    z[i, j, c] = gens[i].standard_normal()
        if corrector == 0:
            uld_step(z, xa, va, s, h, gamma, xb, vb)
        else:
            uld_rm_midpoint(z, alphas, xa, va, s, h, gamma, x_mid, w2, w3)
            if not _score(score, args, x_mid, tt, s_mid, counts, status):
                return False
            uld_rm_update(alphas, xa, va, s_mid, h, gamma, w2, w3, xb, vb)
        xa, xb = xb, xa
        va, vb = vb, va
        if k + 1 < n_corr:
            if not _score(score, args, xa, tt, s, counts, status):
                return False
    x[:, :] = xa
    return True
