"""The one step (lcsample.kernels.step) against an independent NumPy step, in every loop.

The reference below is written from the formulas of docs/theory.md §2-§3 with NumPy, in
a different order from the kernels (Brownian integrals first, then the dense factor L), so
a bug the loops share — a transposed factor, swapped noise terms, α not applied, another
order of the normals, the friction's sign — makes these tests fail.
"""

import numpy as np
import pytest
from helpers import batch_means_se
from hypothesis import given, settings
from hypothesis import strategies as st

import lcsample
from lcsample.kernels.coefficients import rmd_noise_covariance, step_coefficients
from lcsample.kernels.compiled import run_chain
from lcsample.kernels.exact import stationary_covariance
from lcsample.kernels.rows import RowState, advance_rows, typed_generators
from lcsample.kernels.step import RMD, ULMC, accept, draw_noise, propose, standard_normals
from lcsample.mcmc.warmup.mass import InverseMass

# A correlated Gaussian target and a dense inverse mass with a non-symmetric factor.
PRECISION = np.array([[2.0, 0.5, 0.0, 0.1], [0.5, 1.5, -0.3, 0.0], [0.0, -0.3, 3.0, 0.4],
                      [0.1, 0.0, 0.4, 1.0]])
DENSE_U = np.array([[1.0, 0.3, 0.1, 0.0], [0.3, 0.8, -0.2, 0.1], [0.1, -0.2, 1.2, 0.3],
                    [0.0, 0.1, 0.3, 0.6]])
DIAG_U = np.array([1.0, 0.5, 2.0, 0.7])
# A diagonal corrected along two orthonormal directions: R(I + V diag(λ - 1) Vᵀ)R.
LOW_RANK = (np.array([0.9, 1.3, 0.6, 1.1]),
            np.linalg.qr(np.array([[1.0, 0.2], [0.5, -1.0], [-0.3, 0.4], [0.8, 0.1]]))[0],
            np.array([3.0, 0.2]))
MASSES = {"diag": lambda: InverseMass(DIAG_U), "dense": lambda: InverseMass(DENSE_U),
          "low_rank": lambda: InverseMass.low_rank(*LOW_RANK)}


def factors(name):
    """(root, U) of a test mass from the textbook formulas: √u, Cholesky, or the symmetric
    root R(I + V diag(√λ - 1) Vᵀ) of the low-rank one."""
    if name == "diag":
        return np.diag(np.sqrt(DIAG_U)), np.diag(DIAG_U)
    if name == "dense":
        return np.linalg.cholesky(DENSE_U), DENSE_U
    diagonal, vectors, lam = LOW_RANK
    root = np.diag(np.sqrt(diagonal)) @ (np.eye(4) + vectors @ np.diag(np.sqrt(lam) - 1) @ vectors.T)
    return root, root @ root.T


def _grad(x):
    return -PRECISION @ x


def _phi(t, g):
    return -np.expm1(-g * t) / g


def _pair(s, g, z1, z2):
    """(I, A) over an interval s from two normals, by the textbook formulas."""
    var_i = (1 - np.exp(-2 * g * s)) / (2 * g)
    cov = (1 - np.exp(-g * s)) ** 2 / (2 * g**2)
    var_a = (2 * g * s - 3 + 4 * np.exp(-g * s) - np.exp(-2 * g * s)) / (2 * g**3)
    if s == 0:
        return np.zeros_like(z1), np.zeros_like(z1)
    return np.sqrt(var_i) * z1, cov / np.sqrt(var_i) * z1 + np.sqrt(var_a - cov**2 / var_i) * z2


def reference_step(rng, method, x, v, h, g, mass):
    """One step in NumPy: RM-ULMC (Shen & Lee 2019) or exponential Euler, any mass
    (a name in :data:`MASSES`)."""
    L, U = factors(mass)
    sigma = np.sqrt(2 * g)  # σ = √(2γ) per whitened coordinate; L carries the mass
    alpha = rng.random() if method == RMD else 1.0
    z = rng.standard_normal((x.size, 4 if method == RMD else 2))
    a = alpha * h
    i1, a1 = _pair(a, g, z[:, 0], z[:, 1])
    if method == ULMC:
        return (x + _phi(h, g) * v + (h - _phi(h, g)) / g * U @ _grad(x) + sigma * L @ a1,
                np.exp(-g * h) * v + _phi(h, g) * U @ _grad(x) + sigma * L @ i1)
    i2, a2 = _pair(h - a, g, z[:, 2], z[:, 3])
    w1, w2, w3 = a1, a1 + _phi(h - a, g) * i1 + a2, np.exp(-g * (h - a)) * i1 + i2
    xm = x + _phi(a, g) * v + (a - _phi(a, g)) / g * U @ _grad(x) + sigma * L @ w1
    gm = U @ _grad(xm)
    return (x + _phi(h, g) * v + h * _phi(h - a, g) * gm + sigma * L @ w2,
            np.exp(-g * h) * v + h * np.exp(-g * (h - a)) * gm + sigma * L @ w3)


def _reference_run(seed, method, x, v, h, g, mass, n_steps):
    rng = np.random.default_rng(seed)
    for _ in range(n_steps):
        x, v = reference_step(rng, method, x, v, h, g, mass)
    return x, v


def _target():
    return lcsample.targets.Gaussian(np.zeros(4), precision=PRECISION)


X0, V0 = np.array([0.3, -0.2, 1.0, 0.1]), np.array([0.0, 1.0, -1.0, 0.5])


@pytest.mark.parametrize("mass", list(MASSES))
@pytest.mark.parametrize("method", [RMD, ULMC])
def test_compiled_chain_is_the_reference_step(method, mass):
    target, h, g = _target(), 0.3, 1.3
    lp, grad0 = target.logdensity_and_gradient(X0)
    x, v, gr = X0.copy(), V0.copy(), grad0.copy()
    draws, lps = np.empty((3, 4)), np.empty(3)
    n, _, _ = run_chain(target.logdensity_and_grad, target.args, method, h, g,
                        MASSES[mass]().kernel_args, None, 2, x, v, gr, np.empty(0), lp,
                        np.random.default_rng(11), draws, lps, np.empty(3))
    assert n == 3
    xr, vr = _reference_run(11, method, X0, V0, h, g, mass, 6)
    np.testing.assert_allclose(x, xr, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(v, vr, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(draws[-1], xr, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(gr, _grad(xr), rtol=1e-12, atol=1e-13)


#: The lockstep rows' step sizes, frictions and starts; row i's stream is seeded 20 + i.
ROWS_H, ROWS_GAMMA = np.array([0.3, 0.2, 0.45]), np.array([1.3, 0.7, 2.0])
ROWS_STARTS = np.array([X0, -X0, 0.5 * X0])


def lockstep_rows(method, mass, n_steps, lagged=False):
    """Three rows (each with its own stream, step size and friction) advanced ``n_steps``
    in lockstep on the test target; returns the state and the rows per gradient call."""
    target = _target()
    mass_args = MASSES[mass]().kernel_args
    lp, grads = zip(*(target.logdensity_and_gradient(x) for x in ROWS_STARTS), strict=True)
    state = RowState.start(ROWS_STARTS, np.tile(V0, (3, 1)), np.array(grads), np.array(lp),
                           mass_args[2], ROWS_STARTS if lagged else None)
    calls = []

    def evaluate(X):
        calls.append(len(X))
        return -0.5 * np.einsum("ij,ij->i", X @ PRECISION, X), -X @ PRECISION

    rngs = typed_generators([np.random.default_rng(20 + i) for i in range(3)])
    steps = advance_rows(evaluate, method, n_steps, ROWS_H, ROWS_GAMMA, mass_args, state, rngs,
                         np.ones(3, bool))
    np.testing.assert_array_equal(steps, n_steps)
    return state, calls


@pytest.mark.parametrize("mass", list(MASSES))
@pytest.mark.parametrize("method", [RMD, ULMC])
def test_lockstep_rows_are_the_reference_step(method, mass):
    state, calls = lockstep_rows(method, mass, 5)
    assert calls == [3] * (5 * (2 if method == RMD else 1))
    starts, h, g = ROWS_STARTS, ROWS_H, ROWS_GAMMA
    for i in range(3):
        xr, vr = _reference_run(20 + i, method, starts[i], V0, h[i], g[i], mass, 5)
        # the batched gradient sums in another order than the reference: round-off only
        np.testing.assert_allclose(state.x[i], xr, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(state.v[i], vr, rtol=1e-10, atol=1e-12)


def test_a_row_that_goes_non_finite_keeps_its_last_finite_state():
    mass_args = InverseMass(np.ones(2)).kernel_args
    state = RowState.start(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(2),
                           mass_args[2])

    def evaluate(X):  # row values beyond |x| = 0.5 are a NaN wall
        lp = -0.5 * (X**2).sum(axis=1)
        lp[np.abs(X).max(axis=1) > 0.5] = np.nan
        return lp, -X

    live = np.ones(2, bool)
    steps = advance_rows(evaluate, ULMC, 200, np.array([0.5, 1e-4]), np.ones(2), mass_args, state,
                         typed_generators([np.random.default_rng(i) for i in range(2)]), live)
    assert steps[0] < 200 and not live[0] and np.abs(state.x[0]).max() <= 0.5
    assert steps[1] == 200 and live[1] and np.isfinite(state.lp).all()


@pytest.mark.parametrize("h,gamma,alpha", [(0.8, 2.0, 0.3), (0.05, 1.0, 0.9), (3.0, 10.0, 0.5)])
def test_drawn_noise_has_exact_covariance(h, gamma, alpha):
    n = 400_000  # one coordinate = one sample
    zeros = np.zeros(n)
    u = np.full(n, 1.0 / (2.0 * gamma))  # σ = √(2γu) = 1
    sigma = np.ones(n)
    z = np.empty((n, 4))
    standard_normals(np.random.default_rng(7), z)
    c = step_coefficients(h, gamma, alpha)
    w1, w2, w3 = np.empty(n), np.empty(n), np.empty(n)
    propose(RMD, c, z, u, sigma, zeros, zeros, zeros, w1, w2, w3, np.empty(n), np.empty(n))
    samples = np.stack([w1, w2, w3])
    exact = rmd_noise_covariance(h, gamma, alpha)
    emp = samples @ samples.T / n
    # standard error of an empirical second moment of a centred Gaussian pair
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / n)
    assert np.all(np.abs(emp - exact) < 4.5 * se)
    mean_se = np.sqrt(np.diag(exact) / n).max()
    np.testing.assert_allclose(samples.mean(axis=1), 0.0, atol=4.5 * mean_se)


def test_oracle_reproduces_reference_table():
    # the table of docs/theory.md §8: m = 1, u = 1, γ = 2
    rm = {0.8: 1.1e-2, 0.4: 1.3e-3, 0.2: 1.7e-4, 0.1: 2.1e-5, 0.05: 2.6e-6}
    ee = {0.8: 0.24, 0.4: 0.11, 0.2: 5.2e-2, 0.1: 2.6e-2, 0.05: 1.3e-2}
    def excess(h, method):
        return stationary_covariance(1.0, h, 2.0, 1.0, method)[0, 0] - 1

    for h in rm:
        assert excess(h, "rmd") == pytest.approx(rm[h], rel=0.05)
        assert excess(h, "ulmc") == pytest.approx(ee[h], rel=0.05)
    assert excess(0.8, "rmd") == pytest.approx(1.06e-2, abs=5e-5)
    assert excess(0.8, "ulmc") == pytest.approx(0.237, abs=5e-4)
    # bias orders: O(h³) and O(h)
    r = [stationary_covariance(1.0, h, 2.0, 1.0, "rmd")[0, 0] - 1 for h in (0.1, 0.05)]
    e = [stationary_covariance(1.0, h, 2.0, 1.0, "ulmc")[0, 0] - 1 for h in (0.1, 0.05)]
    assert np.log2(r[0] / r[1]) == pytest.approx(3.0, abs=0.1)
    assert np.log2(e[0] / e[1]) == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(
    "method,m,h,gamma,u",
    [("rmd", 1.0, 0.8, 2.0, 1.0), ("rmd", 4.0, 0.3, 1.0, 0.5), ("rmd", 0.25, 1.5, 0.6, 1.0),
     ("ulmc", 1.0, 0.8, 2.0, 1.0), ("ulmc", 2.0, 0.2, 3.0, 1.0)],
)
def test_empirical_stationary_variance_matches_exact(method, m, h, gamma, u):
    d, draws = 1000, 4000
    target = lcsample.targets.Gaussian(np.zeros(d), np.full(d, 1.0 / m))
    exact = stationary_covariance(m, h, gamma, u, method)
    rng = np.random.default_rng(5)
    # start in the chain's own stationary law (Gaussian approximation), then discard 10 %
    start = rng.standard_normal((2, d)) * np.sqrt(exact[0, 0])
    res = lcsample.sample(target, draws=draws, tune=0, chains=2, seed=1, method=method,
                          step_size=h, friction=gamma, inverse_mass_matrix=u,
                          initial_positions=start, progressbar=False)
    sq = (res.posterior[:, draws // 10:] ** 2).mean(axis=2) * m  # coordinate-averaged m·x²
    se = batch_means_se(sq)
    assert abs(sq.mean() - exact[0, 0] * m) < 5 * se
    # the test has the power to see the discretization bias where it is large
    if exact[0, 0] * m - 1 > 0.01:
        assert abs(sq.mean() - 1.0) > 5 * se


@pytest.mark.parametrize("method", [RMD, ULMC])
@pytest.mark.parametrize("corrector", [None, (3, 0.05)])
def test_dense_mass_with_a_diagonal_matrix_is_the_diagonal_path(method, corrector):
    # The dense path (u = 1, U·g, L·z) and the diagonal one (u ⊙ g, √u ⊙ z) are the same
    # dynamics; with U = diag(u) they must agree to round-off, corrector included.
    target = lcsample.targets.Gaussian(np.zeros(5), np.array([1.0, 2.0, 0.5, 4.0, 3.0]))
    u = np.array([1.0, 0.5, 2.0, 1.0, 0.3])
    x0 = np.array([0.3, -0.2, 1.0, 0.1, -0.5])
    lp, g0 = target.logdensity_and_gradient(x0)
    out = {}
    for name, mass in (("diag", InverseMass(u)), ("dense", InverseMass(np.diag(u)))):
        x, v, g = x0.copy(), np.full(5, 0.1), g0.copy()
        draws, lps = np.empty((20, 5)), np.empty(20)
        n, _, _ = run_chain(target.logdensity_and_grad, target.args, method, 0.3, 1.3,
                            mass.kernel_args, corrector, 3, x, v, g, np.empty(0), lp,
                            np.random.default_rng(5), draws, lps, np.empty(20))
        assert n == 20
        out[name] = (draws, x, v)
    for a, b in zip(out["diag"], out["dense"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 6), method=st.sampled_from([RMD, ULMC]), dense=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_draw_noise_is_alpha_then_the_normal_block_times_the_factor(d, method, dense, seed):
    # the random-number contract, against NumPy drawing the same things in that order
    rng, ref = np.random.default_rng(seed), np.random.default_rng(seed)
    k = 4 if method == RMD else 2
    a = np.random.default_rng(d).standard_normal((d, d))
    chol = np.linalg.cholesky(a @ a.T + d * np.eye(d)) if dense else np.empty((0, 0))
    z = np.empty((d, k))
    alpha = draw_noise(rng, method, chol, np.empty((d, k)), z)
    assert alpha == (ref.random() if method == RMD else 1.0)
    normals = ref.standard_normal((d, k))
    np.testing.assert_allclose(z, chol @ normals if dense else normals, rtol=1e-14, atol=1e-14)
    assert rng.bit_generator.state == ref.bit_generator.state  # nothing more was drawn


@settings(max_examples=100, deadline=None)
@given(d=st.integers(1, 5), where=st.integers(0, 10), dense=st.booleans(),
       value=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_accept_never_commits_a_non_finite_state(d, where, dense, value):
    rng = np.random.default_rng(where)
    x, v, g = rng.standard_normal((3, d))
    p = np.empty(d) if dense else g
    x_new, v_new, g_new = rng.standard_normal((3, d))
    lp_new = -1.0
    if where == 0:
        lp_new = value
    elif where % 2:
        x_new[where % d] = value
    else:
        g_new[where % d] = value
    matrix = np.eye(d) if dense else np.empty((0, 0))
    before = (x.copy(), v.copy(), g.copy())
    assert not accept(lp_new, x_new, v_new, g_new, matrix, x, v, g, p)
    for now, then in zip((x, v, g), before, strict=True):
        np.testing.assert_array_equal(now, then)
    # and a finite one is committed whole, with the preconditioned gradient
    x_new[:], g_new[:] = 0.5, -0.25
    assert accept(-1.0, x_new, v_new, g_new, matrix, x, v, g, p)
    np.testing.assert_array_equal(x, x_new)
    np.testing.assert_array_equal(v, v_new)
    np.testing.assert_array_equal(p, g_new)
