"""Function-free kernels of the RM-ULMC and exponential-Euler ULMC steps.

The underdamped Langevin dynamics, with inverse mass u (per coordinate) and friction γ, is

    dx = v dt,   dv = -γ v dt + u ⊙ ∇log π(x) dt + √(2γu) dB.

One randomized-midpoint step (Shen & Lee 2019) is split around its single oracle call:
:func:`rmd_midpoint` draws α's noise and returns the midpoint x_mid, the caller evaluates
g_mid = ∇log π(x_mid), and :func:`rmd_update` finishes the step. The MCMC driver calls them
with ∇log π; they take no function, so a score at a fixed noise level (the diffusion
corrector, a later issue) can drive them the same way.

Symbols (per chain): ``x``, ``v``, ``g`` position, velocity and ∇log π(x), shape (d,);
``u`` inverse mass, shape (d,); ``sigma`` = √(2γu), shape (d,); ``c`` the step's
coefficients from :mod:`lcsample.coefficients`.

A dense inverse mass U = LLᵀ needs no other kernels. The step is linear in (v, U·g, noise)
and each Brownian integral is the same linear combination of the normals in every
coordinate, so the dense step is the diagonal one with u = 1, g replaced by U·g
(:func:`preconditioned`) and the normal block's columns multiplied by L
(:func:`correlate`).

Random numbers: per step the RM kernel takes four standard normals per coordinate, drawn
after α as one (d, 4) block in C order (z1..z4 for coordinate 0, then coordinate 1, ...);
the ULMC kernel takes a (d, 2) block. This order is part of the reproducibility contract.
"""

import numpy as np

from .._jit import kernel

__all__ = [
    "correlate",
    "fresh_velocity",
    "preconditioned",
    "rmd_midpoint",
    "rmd_update",
    "standard_normals",
    "ulmc_update",
]


@kernel
def standard_normals(rng, out):
    """Fill ``out`` (any C-contiguous shape) with standard normals in C order.

    One call site for the generator keeps its (large) inlined code out of the other
    kernels, which matters for how fast a driver compiles.
    """
    flat = out.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = rng.standard_normal()


@kernel
def correlate(chol, z, out):
    """out = L·z for a lower-triangular L, column by column.

    Parameters
    ----------
    chol : ndarray, shape (d, d)
        Cholesky factor L of a dense inverse mass.
    z, out : ndarray, shape (d, k)
    """
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            acc = 0.0
            for k in range(i + 1):
                acc += chol[i, k] * z[k, j]
            out[i, j] = acc


@kernel
def preconditioned(dense, g, out):
    """U·g for a dense inverse mass U; ``g`` itself for a diagonal one.

    Parameters
    ----------
    dense : ndarray, shape (d, d) or (0, 0)
    g, out : ndarray, shape (d,)

    Returns
    -------
    ndarray, shape (d,)
        ``out`` holding U·g, or ``g`` when ``dense`` is empty (the kernels then apply u).
    """
    if dense.shape[0] == 0:
        return g
    for i in range(g.shape[0]):
        acc = 0.0
        for k in range(g.shape[0]):
            acc += dense[i, k] * g[k]
        out[i] = acc
    return out


@kernel
def fresh_velocity(rng, u, chol, z, zc, out):
    """Draw v ~ N(0, U), the velocity's stationary law, into ``out``.

    Parameters
    ----------
    rng : numpy.random.Generator
    u : ndarray, shape (d,)
        Diagonal inverse mass (ones when ``chol`` is given).
    chol : ndarray, shape (d, d) or (0, 0)
        Cholesky factor of a dense inverse mass, or empty.
    z, zc : ndarray, shape (d, 1)
        Scratch buffers.
    out : ndarray, shape (d,)
    """
    standard_normals(rng, z)
    if chol.shape[0] == 0:
        for i in range(out.shape[0]):
            out[i] = np.sqrt(u[i]) * z[i, 0]
    else:
        correlate(chol, z, zc)
        for i in range(out.shape[0]):
            out[i] = zc[i, 0]


@kernel
def rmd_midpoint(z, x, v, g, u, sigma, c, x_mid, w2_out, w3_out):
    """Draw the step's Brownian integrals and compute the randomized midpoint.

    (W1, W2, W3) are built from independent pairs (I1, A1) on [0, a] and (I2, A2) on
    [a, h]: W1 = A1, W2 = A1 + φ(h-a)·I1 + A2, W3 = e^{-γ(h-a)}·I1 + I2. Only decaying
    exponentials appear, so this is stable for large γh.

    Parameters
    ----------
    z : ndarray, shape (d, 4)
        Standard normals (from :func:`standard_normals`).
    x, v, g, u, sigma : ndarray, shape (d,)
    c : RMDCoefficients
    x_mid : ndarray, shape (d,)
        Output: x + φ(a)·v + u·ψ(a)·g + σ·W1.
    w2_out, w3_out : ndarray, shape (d,)
        Output: σ·W2 and σ·W3, consumed by :func:`rmd_update`.
    """
    for i in range(x.shape[0]):
        i1 = c.l11_a * z[i, 0]
        a1 = c.l21_a * z[i, 0] + c.l22_a * z[i, 1]
        i2 = c.l11_b * z[i, 2]
        a2 = c.l21_b * z[i, 2] + c.l22_b * z[i, 3]
        s = sigma[i]
        w2_out[i] = s * (a1 + c.phi_b * i1 + a2)
        w3_out[i] = s * (c.exp_b * i1 + i2)
        x_mid[i] = x[i] + c.phi_a * v[i] + u[i] * c.psi_a * g[i] + s * a1


@kernel
def rmd_update(x, v, g_mid, u, c, w2, w3, x_out, v_out):
    """Finish an RM-ULMC step from the gradient at the midpoint.

    x' = x + φ(h)·v + u·h·φ(h-a)·g_mid + σW2,  v' = e^{-γh}·v + u·h·e^{-γ(h-a)}·g_mid + σW3.

    Parameters
    ----------
    x, v, g_mid, u, w2, w3 : ndarray, shape (d,)
    c : RMDCoefficients
    x_out, v_out : ndarray, shape (d,)
        Output; may not alias ``x`` or ``v``.
    """
    for i in range(x.shape[0]):
        ug = u[i] * g_mid[i]
        x_out[i] = x[i] + c.phi_h * v[i] + c.h_phi_b * ug + w2[i]
        v_out[i] = c.exp_h * v[i] + c.h_exp_b * ug + w3[i]


@kernel
def ulmc_update(z, x, v, g, u, sigma, c, x_out, v_out):
    """One exponential-Euler ULMC step (gradient frozen at x over the step).

    x' = x + φ(h)·v + u·ψ(h)·g + σA,  v' = e^{-γh}·v + u·φ(h)·g + σI,
    with (I, A) the Brownian pair over the step.

    Parameters
    ----------
    z : ndarray, shape (d, 2)
        Standard normals (from :func:`standard_normals`).
    x, v, g, u, sigma : ndarray, shape (d,)
    c : ULMCCoefficients
    x_out, v_out : ndarray, shape (d,)
        Output; may not alias ``x`` or ``v``.
    """
    for i in range(x.shape[0]):
        s = sigma[i]
        ug = u[i] * g[i]
        x_out[i] = x[i] + c.phi_h * v[i] + c.psi_h * ug + s * (c.l21 * z[i, 0] + c.l22 * z[i, 1])
        v_out[i] = c.exp_h * v[i] + c.phi_h * ug + s * c.l11 * z[i, 0]
