"""Coefficients and the exact (W1, W2, W3) covariance against their defining integrals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from lcsample.kernels.coefficients import (
    pair_covariance,
    phi,
    psi,
    noise_mixing,
    rmd_noise_covariance,
    step_coefficients,
)


def phi_ref(t, g):
    return -np.expm1(-g * t) / g


def quadrature_covariance(h, g, alpha):
    """Itô isometry: Cov(∫f dB, ∫k dB) = ∫ f k ds, integrated numerically."""
    a = alpha * h
    kernels = [
        (lambda s: phi_ref(a - s, g) if s < a else 0.0),
        (lambda s: phi_ref(h - s, g)),
        (lambda s: np.exp(-g * (h - s))),
    ]
    cov = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            val, _ = quad(lambda s: kernels[i](s) * kernels[j](s), 0.0, h, points=[a],
                          epsabs=0.0, epsrel=1e-12, limit=200)
            cov[i, j] = val
    return cov


def paper_covariance(h, g, alpha):
    """A closed form of the covariance (docs/theory.md §3), expanded term by term.

    Written without the stable e1/e2/e3 helpers of §4, so it cancels for small γh.
    """
    a = alpha * h
    E = np.exp
    va = lambda t: (2 * g * t - 3 + 4 * E(-g * t) - E(-2 * g * t)) / (2 * g**3)  # noqa: E731
    c12 = (a - (1 - E(-g * a)) / g - (E(-g * (h - a)) - E(-g * h)) / g
           + (E(-g * (h - a)) - E(-g * (h + a))) / (2 * g)) / g**2
    c13 = ((E(-g * (h - a)) - E(-g * h)) / g - (E(-g * (h - a)) - E(-g * (h + a))) / (2 * g)) / g
    c23 = (1 - E(-g * h)) ** 2 / (2 * g**2)
    v3 = (1 - E(-2 * g * h)) / (2 * g)
    return np.array([[va(a), c12, c13], [c12, va(h), c23], [c13, c23, v3]])


GRID = [(h, g, alpha) for h in (0.01, 0.5, 3.0) for g in (1e-4 / h, 1e-6 / h, 1.0, 30.0 / h)
        for alpha in (0.0, 0.13, 0.5, 0.97, 1.0)]


@pytest.mark.parametrize("h,gamma,alpha", GRID)
def test_covariance_matches_quadrature(h, gamma, alpha):
    exact = rmd_noise_covariance(h, gamma, alpha)
    ref = quadrature_covariance(h, gamma, alpha)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    mask = scale > 0
    assert np.all(np.abs(exact - ref)[mask] <= 1e-9 * scale[mask])
    assert np.all(exact[~mask] == 0.0)


@pytest.mark.parametrize("h,gamma,alpha", [(0.8, 2.0, 0.3), (0.1, 2.0, 0.7), (2.0, 1.5, 0.5)])
def test_covariance_matches_paper_closed_form(h, gamma, alpha):
    np.testing.assert_allclose(rmd_noise_covariance(h, gamma, alpha),
                               paper_covariance(h, gamma, alpha), rtol=1e-10)


def test_small_step_limits():
    # docs/theory.md §3: Var W1 ≈ a³/3, Var W2 ≈ h³/3, Var W3 ≈ h, Cov12 ≈ a²(3h-a)/6,
    # Cov13 ≈ a²/2, Cov23 ≈ h²/2 as γh → 0
    h, a, g = 1e-3, 0.4e-3, 1e-5
    c = rmd_noise_covariance(h, g, a / h)
    expected = [[a**3 / 3, a**2 * (3 * h - a) / 6, a**2 / 2],
                [a**2 * (3 * h - a) / 6, h**3 / 3, h**2 / 2],
                [a**2 / 2, h**2 / 2, h]]
    np.testing.assert_allclose(c, expected, rtol=1e-6)


@pytest.mark.parametrize("gh", [1e-8, 1e-6, 1e-3, 0.5, 1.0, 2.0, 30.0, 50.0])
def test_pair_covariance_matches_quadrature(gh):
    s, g = 0.7, gh / 0.7
    var_i, cov, var_a = pair_covariance(s, g)
    q = lambda f: quad(f, 0.0, s, epsabs=0.0, epsrel=1e-12)[0]  # noqa: E731
    np.testing.assert_allclose(var_i, q(lambda r: np.exp(-2 * g * (s - r))), rtol=1e-10)
    np.testing.assert_allclose(cov, q(lambda r: np.exp(-g * (s - r)) * phi_ref(s - r, g)), rtol=1e-10)
    np.testing.assert_allclose(var_a, q(lambda r: phi_ref(s - r, g) ** 2), rtol=1e-10)


def test_coefficient_tuple_matches_definitions():
    h, g, alpha = 0.37, 1.7, 0.41
    a, b = alpha * h, h - alpha * h
    c = step_coefficients(h, g, alpha)
    np.testing.assert_allclose(
        [c.phi_a, c.psi_a, c.phi_h, c.h_phi_b, c.exp_h, c.h_exp_b, c.phi_b, c.exp_b],
        [phi_ref(a, g), (a - phi_ref(a, g)) / g, phi_ref(h, g), h * phi_ref(b, g),
         np.exp(-g * h), h * np.exp(-g * b), phi_ref(b, g), np.exp(-g * b)],
        rtol=1e-13,
    )
    # the exponential-Euler step reads the α = 1 coefficients: φ(h), ψ(h) and the pair
    # over the whole step
    u = step_coefficients(h, g, 1.0)
    np.testing.assert_allclose([u.phi_a, u.psi_a, u.exp_h],
                               [phi_ref(h, g), (h - phi_ref(h, g)) / g, np.exp(-g * h)], rtol=1e-13)
    # the Cholesky factors reproduce the pair covariance
    var_i, cov, var_a = pair_covariance(h, g)
    np.testing.assert_allclose([u.l11_a**2, u.l11_a * u.l21_a, u.l21_a**2 + u.l22_a**2],
                               [var_i, cov, var_a], rtol=1e-12)
    # the noise map: W1 = A1, W2 = A1 + φ(h-a)·I1 + A2, W3 = e^{-γ(h-a)}·I1 + I2
    np.testing.assert_array_equal(noise_mixing(c), [[0, 1, 0, 0], [c.phi_b, 1, 0, 1],
                                                    [c.exp_b, 0, 1, 0]])


positive = st.floats(1e-6, 20.0)
gammas = st.floats(1e-6, 50.0)


@settings(max_examples=200, deadline=None)
@given(a=positive, b=positive, g=gammas)
def test_phi_psi_semigroup_identities(a, b, g):
    # φ(a+b) = φ(a) + e^{-γa}φ(b);  ψ(a+b) = ψ(a) + bφ(a) + e^{-γa}ψ(b)
    assert np.isclose(phi(a + b, g), phi(a, g) + np.exp(-g * a) * phi(b, g), rtol=1e-12, atol=0)
    assert np.isclose(psi(a + b, g), psi(a, g) + b * phi(a, g) + np.exp(-g * a) * psi(b, g),
                      rtol=1e-11, atol=0)


@settings(max_examples=200, deadline=None)
@given(h=st.floats(1e-4, 10.0), g=gammas, alpha=st.floats(0.0, 1.0))
def test_covariance_is_psd_and_consistent(h, g, alpha):
    c = rmd_noise_covariance(h, g, alpha)
    assert np.allclose(c, c.T)
    # PSD relative to the scale of each variable (entries span h³ to h)
    d = np.sqrt(np.diag(c))
    d[d == 0] = 1.0
    assert np.linalg.eigvalsh(c / np.outer(d, d)).min() > -1e-9
    # W3 and W2 do not depend on α
    var_i, cov, var_a = pair_covariance(h, g)
    np.testing.assert_allclose([c[1, 1], c[1, 2], c[2, 2]], [var_a, cov, var_i], rtol=1e-10)


@settings(max_examples=100, deadline=None)
@given(h=st.floats(1e-4, 10.0), g=gammas)
def test_midpoint_at_end_equals_full_step(h, g):
    # α = 1: W1 = W2, so Cov(W1, ·) equals Cov(W2, ·)
    c = rmd_noise_covariance(h, g, 1.0)
    np.testing.assert_allclose(c[0], c[1], rtol=1e-10)
