"""The one step of underdamped Langevin Monte Carlo, from state to state, for every sampler.

The underdamped Langevin dynamics, with inverse mass U and friction γ, is

    dx = v dt,   dv = -γ v dt + U ∇log π(x) dt + √(2γU) dB.

Every loop of the package — the compiled chain (:mod:`lcsample.kernels.compiled`), the
lockstep rows of batched targets and of the diffusion corrector
(:func:`lcsample.kernels.rows.advance_rows`) and the Picard blocks
(:mod:`lcsample.mcmc.picard`) — makes a step out of these kernels and decides only where
the gradients come from:

1. :func:`draw_noise` — the random-number contract: per step, α ~ U(0, 1) (randomized
   midpoint only), then one (d, k) block of standard normals in C order (k = 4 for the
   randomized midpoint, 2 for exponential Euler), multiplied by L for a dense U = LLᵀ.
2. :func:`propose` — with the step's coefficients (:func:`~lcsample.kernels.coefficients.
   step_coefficients`): the randomized midpoint x_mid where the gradient is needed next,
   or, for exponential Euler, the whole step.
3. :func:`complete` — the randomized-midpoint update from the gradient at x_mid.
4. :func:`accept` — the commit: the new state replaces the old one only if its log
   density, position and gradient are finite, so a chain that diverges keeps its last
   finite state.
   :func:`accept_lagged` commits the lagged randomized midpoint, whose one gradient per
   step is the midpoint's: the state keeps it (and the midpoint, ``x_at``) for the next
   step's prediction.

The four are inlined where they are called (:data:`lcsample._jit.inlined_kernel`), so a
loop pays no call overhead for splitting the step this way.

Symbols (per chain): ``x``, ``v``, ``g`` position, velocity and ∇log π(x), shape (d,);
``p`` the preconditioned gradient U·g (the array ``g`` itself for a diagonal U); ``u``
the diagonal inverse mass (ones for a dense or low-rank one); ``chol``, ``dense`` the
inverse mass's root and matrix in one of three layouts, told apart by shape:

* diagonal: both (0, 0);
* dense: the lower Cholesky factor L and U itself, both (d, d);
* diagonal plus low rank, U = R(I + VΛVᵀ)R with R = diag(r), V (d, k) orthonormal and
  k < d: both the same packed factor F of shape (d + 1, k + 1), F[:d, 0] = r,
  F[:d, 1:] = V and F[d, 1:] = c with c_j = √(1 + Λ_j) − 1, so that the root is
  S = R(I + V diag(c) Vᵀ) (SSᵀ = U) and every product costs O(dk)
  (:class:`lcsample.mcmc.warmup.mass.InverseMass` builds it).

``sigma`` = √(2γu). A dense or low-rank mass needs no other arithmetic: the step is
linear in (v, U·g, noise) and each Brownian integral is the same combination of the
normals in every coordinate, so that step is the diagonal one with u = 1, g replaced by
U·g and the normals multiplied by the root.
"""

import numpy as np

from .._jit import inlined_kernel, kernel

__all__ = [
    "GRADS_PER_STEP",
    "NORMALS_PER_COORDINATE",
    "RMD",
    "RMD_LAGGED",
    "ULMC",
    "accept",
    "accept_lagged",
    "complete",
    "correlate",
    "draw_noise",
    "fresh_velocity",
    "kinetic_energy",
    "precondition",
    "propose",
    "standard_normals",
]

#: Integrator codes: the Shen–Lee randomized midpoint, exponential Euler, and the lagged
#: randomized midpoint: the same step with its midpoint predicted from the gradient at the
#: previous step's midpoint instead of one at x, so that it costs one gradient, not two.
RMD = 0
ULMC = 1
RMD_LAGGED = 2
#: Gradient evaluations per step, and normals drawn per coordinate, of each integrator.
GRADS_PER_STEP = (2, 1, 1)
NORMALS_PER_COORDINATE = (4, 2, 4)


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
    """out = L·z for a lower-triangular L (or S·z for a packed low-rank factor), by columns.

    Parameters
    ----------
    chol : ndarray, shape (d, d) or (d + 1, k + 1)
        Cholesky factor L of a dense inverse mass, or a low-rank one's packed factor.
    z, out : ndarray, shape (d, k)
    """
    if chol.shape[0] != chol.shape[1]:
        _low_rank_root(chol, z, out)
        return
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            acc = 0.0
            for k in range(i + 1):
                acc += chol[i, k] * z[k, j]
            out[i, j] = acc


@kernel
def _low_rank_root(factor, z, out):
    """out = R(z + V diag(c) Vᵀz) column by column, from the packed factor (module doc)."""
    d, k = factor.shape[0] - 1, factor.shape[1] - 1
    for j in range(z.shape[1]):
        for i in range(d):
            out[i, j] = z[i, j]
        for m in range(1, k + 1):
            t = 0.0
            for i in range(d):
                t += factor[i, m] * z[i, j]
            t *= factor[d, m]
            for i in range(d):
                out[i, j] += t * factor[i, m]
        for i in range(d):
            out[i, j] *= factor[i, 0]


@kernel
def _low_rank_product(factor, g, out):
    """out = U·g = R(y + VΛVᵀy), y = Rg, Λ_j = (1 + c_j)² − 1, from the packed factor."""
    d, k = factor.shape[0] - 1, factor.shape[1] - 1
    for i in range(d):
        out[i] = factor[i, 0] * g[i]
    for m in range(1, k + 1):
        t = 0.0
        for i in range(d):
            t += factor[i, m] * factor[i, 0] * g[i]
        t *= (1.0 + factor[d, m]) ** 2 - 1.0
        for i in range(d):
            out[i] += t * factor[i, m]
    for i in range(d):
        out[i] *= factor[i, 0]


@inlined_kernel
def precondition(dense, g, out):
    """U·g for a dense or low-rank inverse mass U; ``g`` itself for a diagonal one.

    Parameters
    ----------
    dense : ndarray, shape (d, d), (d + 1, k + 1) or (0, 0)
        U, a low-rank one's packed factor, or empty (module doc).
    g, out : ndarray, shape (d,)

    Returns
    -------
    ndarray, shape (d,)
        ``out`` holding U·g, or ``g`` when ``dense`` is empty (the kernels then apply u).
    """
    if dense.shape[0] == 0:
        return g
    if dense.shape[0] != dense.shape[1]:
        _low_rank_product(dense, g, out)
        return out
    for i in range(g.shape[0]):
        acc = 0.0
        for k in range(g.shape[0]):
            acc += dense[i, k] * g[k]
        out[i] = acc
    return out


@inlined_kernel
def draw_noise(rng, method, chol, raw, z):
    """Draw one step's randomness in the contract's order: α, then the normal block.

    Parameters
    ----------
    rng : numpy.random.Generator
    method : int
        :data:`RMD`, :data:`ULMC` or :data:`RMD_LAGGED`.
    chol : ndarray, shape (d, d) or (0, 0)
    raw, z : ndarray, shape (d, k)
        k = :data:`NORMALS_PER_COORDINATE` [method]. ``z`` receives the normals (times L
        for a dense mass, with ``raw`` as scratch).

    Returns
    -------
    alpha : float
        The midpoint fraction; 1.0 for exponential Euler, which draws none.
    """
    alpha = 1.0 if method == ULMC else rng.random()
    if chol.shape[0] == 0:
        standard_normals(rng, z)
    else:
        standard_normals(rng, raw)
        correlate(chol, raw, z)
    return alpha


@kernel
def fresh_velocity(rng, u, chol, raw, raw_l, out):
    """Draw v ~ N(0, U), the velocity's stationary law, into ``out``.

    Parameters
    ----------
    rng : numpy.random.Generator
    u : ndarray, shape (d,)
    chol : ndarray, shape (d, d) or (0, 0)
    raw, raw_l : ndarray, shape (d, 1)
        Scratch.
    out : ndarray, shape (d,)
    """
    standard_normals(rng, raw)
    if chol.shape[0] == 0:
        for i in range(out.shape[0]):
            out[i] = np.sqrt(u[i]) * raw[i, 0]
    else:
        correlate(chol, raw, raw_l)
        for i in range(out.shape[0]):
            out[i] = raw_l[i, 0]


@inlined_kernel
def propose(method, c, z, u, sigma, x, v, p, x_mid, w2, w3, x_new, v_new):
    """The step up to its next gradient: the midpoint (RMD) or the whole step (ULMC).

    Randomized midpoint, a = αh: x_mid = x + φ(a)·v + u·ψ(a)·p + σ·W1, and σ·W2, σ·W3
    into ``w2``, ``w3`` for :func:`complete`, the integrals built from the pairs on
    [0, a] and [a, h] as :func:`~lcsample.kernels.coefficients.noise_mixing` says.
    Exponential Euler (gradient frozen at x): x' = x + φ(h)·v + u·ψ(h)·p + σA,
    v' = e^{-γh}·v + u·φ(h)·p + σI, from the coefficients at α = 1.

    Parameters
    ----------
    method : int
    c : StepCoefficients
    z : ndarray, shape (d, k)
        The step's normals from :func:`draw_noise`.
    u, sigma, x, v, p : ndarray, shape (d,)
        ``p`` is U·g at x, or (:data:`RMD_LAGGED`) at the previous step's midpoint.
    x_mid, w2, w3, x_new, v_new : ndarray, shape (d,)
        Outputs (the randomized midpoints write the first three, ULMC the last two).
    """
    for i in range(x.shape[0]):
        s = sigma[i]
        a1 = c.l21_a * z[i, 0] + c.l22_a * z[i, 1]
        if method != ULMC:
            i1 = c.l11_a * z[i, 0]
            i2 = c.l11_b * z[i, 2]
            a2 = c.l21_b * z[i, 2] + c.l22_b * z[i, 3]
            w2[i] = s * (a1 + c.phi_b * i1 + a2)
            w3[i] = s * (c.exp_b * i1 + i2)
            x_mid[i] = x[i] + c.phi_a * v[i] + u[i] * c.psi_a * p[i] + s * a1
        else:
            up = u[i] * p[i]
            x_new[i] = x[i] + c.phi_a * v[i] + c.psi_a * up + s * a1
            v_new[i] = c.exp_h * v[i] + c.phi_a * up + s * c.l11_a * z[i, 0]


@inlined_kernel
def complete(c, u, dense, x, v, g_mid, p_mid, w2, w3, x_new, v_new):
    """Finish a randomized-midpoint step from the gradient at its midpoint.

    x' = x + φ(h)·v + u·hφ(h-a)·U g_mid + σW2,  v' = e^{-γh}·v + u·he^{-γ(h-a)}·U g_mid + σW3.

    Parameters
    ----------
    c : StepCoefficients
    u, x, v, g_mid, w2, w3 : ndarray, shape (d,)
    dense : ndarray, shape (d, d) or (0, 0)
    p_mid : ndarray, shape (d,)
        Scratch for U·g_mid (dense mass).
    x_new, v_new : ndarray, shape (d,)
        Output; may not alias ``x`` or ``v``.
    """
    # the dense test here, not only in precondition: a call costs as much as the step's
    # other arithmetic at small d
    pm = g_mid if dense.shape[0] == 0 else precondition(dense, g_mid, p_mid)
    for i in range(x.shape[0]):
        ug = u[i] * pm[i]
        x_new[i] = x[i] + c.phi_h * v[i] + c.h_phi_b * ug + w2[i]
        v_new[i] = c.exp_h * v[i] + c.h_exp_b * ug + w3[i]


@inlined_kernel
def accept(lp_new, x_new, v_new, g_new, dense, x, v, g, p):
    """Commit the new state into (x, v, g, p) if it is finite; report whether it was.

    A non-finite log density, position or gradient leaves the state untouched: the chain
    keeps its last finite state and the caller stops it.

    Parameters
    ----------
    lp_new : float
    x_new, v_new, g_new : ndarray, shape (d,)
    dense : ndarray, shape (d, d) or (0, 0)
    x, v, g, p : ndarray, shape (d,)
        The state, updated in place; ``p`` is ``g`` itself for a diagonal mass.

    Returns
    -------
    bool
    """
    # one sum over both vectors catches any NaN or ±inf in either (inf - inf is NaN)
    total = lp_new
    for i in range(x.shape[0]):
        total += x_new[i] + g_new[i]
    if not np.isfinite(total):
        return False
    for i in range(x.shape[0]):
        x[i] = x_new[i]
        v[i] = v_new[i]
        g[i] = g_new[i]
    if dense.shape[0] > 0:
        precondition(dense, g, p)
    return True


@inlined_kernel
def accept_lagged(c, gamma, z, u, sigma, lp_mid, x_mid, g_mid, p_mid, dense, x_new, v_new, x, v,
                  g, p, x_at, v_at):
    """:func:`accept` for the lagged randomized midpoint: commit (x', v') and the midpoint.

    The state keeps the end point (x', v') and, as its gradient, the one at the midpoint,
    which predicts the next midpoint; ``x_at`` receives the midpoint (where ``g`` and the
    log density now are) and ``v_at`` the velocity there, e^{-γa}·v + u·φ(a)·p + σ·I1
    (the Hamiltonian of a draw is taken at that point, the last one evaluated).

    Parameters
    ----------
    c : StepCoefficients
    gamma : float
    z : ndarray, shape (d, 4)
    u, sigma : ndarray, shape (d,)
    lp_mid : float
    x_mid, g_mid, p_mid, x_new, v_new : ndarray, shape (d,)
        ``p_mid`` holds U·g_mid for a dense or low-rank mass (:func:`complete`).
    dense : ndarray
    x, v, g, p, x_at, v_at : ndarray, shape (d,)
        Updated in place; ``p`` is ``g`` itself for a diagonal mass.

    Returns
    -------
    bool
        Whether the midpoint's log density and gradient and the end point were finite.
    """
    total = lp_mid
    for i in range(x.shape[0]):
        total += x_new[i] + v_new[i] + g_mid[i]
    if not np.isfinite(total):
        return False
    exp_a = 1.0 - gamma * c.phi_a  # e^{-γa}, as φ(a) = (1 - e^{-γa})/γ
    for i in range(x.shape[0]):
        v_at[i] = exp_a * v[i] + c.phi_a * u[i] * p[i] + sigma[i] * c.l11_a * z[i, 0]
        x_at[i] = x_mid[i]
        x[i] = x_new[i]
        v[i] = v_new[i]
        g[i] = g_mid[i]
        if dense.shape[0] > 0:
            p[i] = p_mid[i]
    return True


@kernel
def kinetic_energy(u, chol, v):
    """½ vᵀU⁻¹v: the kinetic energy of velocity v under the inverse mass U.

    The chain's Hamiltonian is H = −log π(x) + ½ vᵀU⁻¹v, whose stationary law is
    π(x)·N(v; 0, U); ``sample_stats["energy"]`` records it at each draw, in NUTS's units.

    Parameters
    ----------
    u : ndarray, shape (d,)
        Diagonal of U (ones when U is dense).
    chol : ndarray, shape (d, d), (d + 1, k + 1) or (0, 0)
        Lower Cholesky factor L of a dense U (U⁻¹ = L⁻ᵀL⁻¹: forward substitution), a
        low-rank U's packed factor, or empty for a diagonal U.
    v : ndarray, shape (d,)

    Returns
    -------
    float
    """
    d = v.shape[0]
    total = 0.0
    if chol.shape[0] == 0:
        for i in range(d):
            total += v[i] * v[i] / u[i]
        return 0.5 * total
    if chol.shape[0] != chol.shape[1]:
        return 0.5 * _low_rank_inverse_norm(chol, v)
    z = np.empty(d)
    for i in range(d):  # L z = v, so vᵀU⁻¹v = |z|²
        acc = v[i]
        for k in range(i):
            acc -= chol[i, k] * z[k]
        z[i] = acc / chol[i, i]
        total += z[i] * z[i]
    return 0.5 * total


@kernel
def _low_rank_inverse_norm(factor, v):
    """vᵀU⁻¹v from the packed factor: U⁻¹ = R⁻¹(I + V diag((1 + c)⁻² − 1)Vᵀ)R⁻¹."""
    d, k = factor.shape[0] - 1, factor.shape[1] - 1
    total = 0.0
    for i in range(d):
        y = v[i] / factor[i, 0]
        total += y * y
    for m in range(1, k + 1):
        t = 0.0
        for i in range(d):
            t += factor[i, m] * v[i] / factor[i, 0]
        total += (1.0 / (1.0 + factor[d, m]) ** 2 - 1.0) * t * t
    return total
