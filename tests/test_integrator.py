"""The RM-ULMC kernels: drawn noise law, a NumPy reference step, exact stationary variance."""

import numpy as np
import pytest
from helpers import batch_means_se

import lcsample
from lcsample.kernels.coefficients import rmd_coefficients, rmd_noise_covariance, ulmc_coefficients
from lcsample.kernels.compiled import RMD, ULMC, run_chain
from lcsample.kernels.exact import stationary_covariance
from lcsample.kernels.step import rmd_midpoint, rmd_update, standard_normals, ulmc_update
from lcsample.mcmc.warmup.mass import InverseMass


@pytest.mark.parametrize("h,gamma,alpha", [(0.8, 2.0, 0.3), (0.05, 1.0, 0.9), (3.0, 10.0, 0.5)])
def test_drawn_noise_has_exact_covariance(h, gamma, alpha):
    n = 400_000  # one coordinate = one sample
    zeros = np.zeros(n)
    u = np.full(n, 1.0 / (2.0 * gamma))  # σ = √(2γu) = 1
    sigma = np.ones(n)
    z = np.empty((n, 4))
    standard_normals(np.random.default_rng(7), z)
    c = rmd_coefficients(h, gamma, alpha)
    w1, w2, w3 = np.empty(n), np.empty(n), np.empty(n)
    rmd_midpoint(z, zeros, zeros, zeros, u, sigma, c, w1, w2, w3)
    samples = np.stack([w1, w2, w3])
    exact = rmd_noise_covariance(h, gamma, alpha)
    emp = samples @ samples.T / n
    # standard error of an empirical second moment of a centred Gaussian pair
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / n)
    assert np.all(np.abs(emp - exact) < 4.5 * se)
    np.testing.assert_allclose(samples.mean(axis=1), 0.0, atol=4.5 * np.sqrt(np.diag(exact) / n).max())


def numpy_rmd_step(rng, x, v, grad, h, g, u):
    """Appendix A of algorithms.md, written with NumPy and the pair formulas."""
    alpha = rng.random()
    z = rng.standard_normal((x.size, 4))
    a = alpha * h
    phi = lambda t: -np.expm1(-g * t) / g  # noqa: E731

    def pair(s, z1, z2):
        var_i = (1 - np.exp(-2 * g * s)) / (2 * g)
        cov = (1 - np.exp(-g * s)) ** 2 / (2 * g**2)
        var_a = (2 * g * s - 3 + 4 * np.exp(-g * s) - np.exp(-2 * g * s)) / (2 * g**3)
        i = np.sqrt(var_i) * z1
        return i, cov / np.sqrt(var_i) * z1 + np.sqrt(var_a - cov**2 / var_i) * z2

    i1, a1 = pair(a, z[:, 0], z[:, 1])
    i2, a2 = pair(h - a, z[:, 2], z[:, 3])
    w1, w2, w3 = a1, a1 + phi(h - a) * i1 + a2, np.exp(-g * (h - a)) * i1 + i2
    s = np.sqrt(2 * g * u)
    xm = x + phi(a) * v + u * (a - phi(a)) / g * grad(x) + s * w1
    gm = grad(xm)
    return (x + phi(h) * v + u * h * phi(h - a) * gm + s * w2,
            np.exp(-g * h) * v + u * h * np.exp(-g * (h - a)) * gm + s * w3)


def test_rmd_kernels_match_numpy_reference():
    d, h, g = 6, 0.3, 1.3
    u = np.linspace(0.5, 2.0, d)
    prec = np.linspace(1.0, 3.0, d)
    grad = lambda x: -prec * x  # noqa: E731
    x0, v0 = np.linspace(-1, 1, d), np.linspace(1, -0.5, d)
    ref_x, ref_v = x0.copy(), v0.copy()
    rng_ref = np.random.default_rng(3)
    for _ in range(5):
        ref_x, ref_v = numpy_rmd_step(rng_ref, ref_x, ref_v, grad, h, g, u)
    for jitted in (True, False):
        rng = np.random.default_rng(3)
        x, v = x0.copy(), v0.copy()
        sigma = np.sqrt(2 * g * u)
        z, xm, w2, w3, xo, vo = np.empty((d, 4)), *(np.empty(d) for _ in range(5))
        for _ in range(5):
            coef = rmd_coefficients(h, g, rng.random())
            (standard_normals if jitted else standard_normals.py_func)(rng, z)
            (rmd_midpoint if jitted else rmd_midpoint.py_func)(z, x, v, grad(x), u, sigma, coef, xm, w2, w3)
            (rmd_update if jitted else rmd_update.py_func)(x, v, grad(xm), u, coef, w2, w3, xo, vo)
            x, v = xo.copy(), vo.copy()
        np.testing.assert_allclose(x, ref_x, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(v, ref_v, rtol=1e-12, atol=1e-14)


def test_driver_equals_kernels_step_by_step():
    target = lcsample.targets.Gaussian(np.zeros(4), np.array([1.0, 2.0, 0.5, 4.0]))
    h, g, u = 0.4, 1.1, np.array([1.0, 0.5, 2.0, 1.0])
    x = np.array([0.3, -0.2, 1.0, 0.1])
    v = np.array([0.0, 1.0, -1.0, 0.5])
    for method in (RMD, ULMC):
        lp, grad0 = target.logdensity_and_gradient(x)
        xs, vs, gs = x.copy(), v.copy(), grad0.copy()
        draws, lps = np.empty((3, 4)), np.empty(3)
        run_chain(target.logdensity_and_grad, target.args, method, h, g, InverseMass(u).kernel_args,
                  None, 2, xs, vs, gs, lp, np.random.default_rng(11), draws, lps)
        rng = np.random.default_rng(11)
        xr, vr = x.copy(), v.copy()
        sigma = np.sqrt(2 * g * u)
        for k in range(6):
            xo, vo = np.empty(4), np.empty(4)
            if method == RMD:
                c = rmd_coefficients(h, g, rng.random())
                z = np.empty((4, 4))
                standard_normals(rng, z)
                xm, w2, w3 = np.empty(4), np.empty(4), np.empty(4)
                rmd_midpoint(z, xr, vr, target.logdensity_and_gradient(xr)[1], u, sigma, c, xm, w2, w3)
                rmd_update(xr, vr, target.logdensity_and_gradient(xm)[1], u, c, w2, w3, xo, vo)
            else:
                z = np.empty((4, 2))
                standard_normals(rng, z)
                ulmc_update(z, xr, vr, target.logdensity_and_gradient(xr)[1], u, sigma,
                            ulmc_coefficients(h, g), xo, vo)
            xr, vr = xo, vo
            if k % 2 == 1:
                np.testing.assert_array_equal(draws[k // 2], xr)
                assert lps[k // 2] == target.logdensity_and_gradient(xr)[0]
        np.testing.assert_array_equal(xs, xr)
        np.testing.assert_array_equal(vs, vr)


def test_oracle_reproduces_reference_table():
    # algorithms.md §2.2: m = 1, u = 1, γ = 2
    rm = {0.8: 1.1e-2, 0.4: 1.3e-3, 0.2: 1.7e-4, 0.1: 2.1e-5, 0.05: 2.6e-6}
    ee = {0.8: 0.24, 0.4: 0.11, 0.2: 5.2e-2, 0.1: 2.6e-2, 0.05: 1.3e-2}
    for h in rm:
        assert stationary_covariance(1.0, h, 2.0, 1.0, "rmd")[0, 0] - 1 == pytest.approx(rm[h], rel=0.05)
        assert stationary_covariance(1.0, h, 2.0, 1.0, "ulmc")[0, 0] - 1 == pytest.approx(ee[h], rel=0.05)
    assert stationary_covariance(1.0, 0.8, 2.0, 1.0, "rmd")[0, 0] - 1 == pytest.approx(1.06e-2, abs=5e-5)
    assert stationary_covariance(1.0, 0.8, 2.0, 1.0, "ulmc")[0, 0] - 1 == pytest.approx(0.237, abs=5e-4)
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
                            mass.kernel_args, corrector, 3, x, v, g, lp,
                            np.random.default_rng(5), draws, lps)
        assert n == 20
        out[name] = (draws, x, v)
    for a, b in zip(out["diag"], out["dense"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
