"""lcsample.diffusion.sample against the exact Gaussian flow map and laws (docs/theory.md §10)."""

import numba
import numpy as np
import pytest

import lcsample.diffusion as diffusion
from lcsample.diffusion.backend import NumpyBackend
from lcsample.diffusion.corrector import Streams
from lcsample.diffusion.corrector import correct as _correct
from lcsample.diffusion.sampler import _streams

MU = np.array([1.0, -2.0, 0.5])
S2 = np.array([0.5, 2.0, 0.1])  # data N(MU, diag(S2))


def score(x, t):
    """Exact ∇log p_t of N(MU, diag(S2)) data, row-wise (no cross-row arithmetic)."""
    a = np.exp(-t)[:, None]
    return -(x - a * MU) / (a**2 * S2 + 1 - a**2)


def marginal(t):
    a = np.exp(-t)
    return a * MU, a**2 * S2 + 1 - a**2


def flow(x, t_from, t_to):
    """Exact probability-flow map, coordinate-wise."""
    (m0, v0), (m1, v1) = marginal(t_from), marginal(t_to)
    return m1 + np.sqrt(v1 / v0) * (x - m0)


def exact(n, t, seed):
    m, v = marginal(t)
    return m + np.sqrt(v) * np.random.default_rng(seed).standard_normal((n, 3))


@pytest.mark.parametrize("predictor,order", [("rm", 1.5), ("exp-euler", 1.0), ("heun", 2.0),
                                             ("dpm-pc", 2.9)])
def test_coupled_error_against_the_exact_flow_has_the_predicted_order(predictor, order):
    # docs/theory.md §10: RMS error h^{3/2} for the randomized midpoint, h for the
    # exponential integrator; Heun is second order; "dpm-pc" third order once its history
    # holds three points (measured slope 2.79 here: 2.72, 2.78, 2.88 between successive
    # step counts, the second-order first steps' share shrinking)
    T, delta, n = 2.0, 0.5, 2000
    x0 = exact(n, T, seed=0)
    steps = np.array([8, 16, 32, 64])
    errors = []
    for k in steps:
        x, _ = diffusion.sample(score, dim=3, num_samples=n, predictor=predictor,
                                ts=np.linspace(T, delta, k + 1), x_init=x0, seed=1)
        errors.append(np.sqrt(np.mean((x - flow(x0, T, delta)) ** 2)))
    slope = np.polyfit(np.log((T - delta) / steps), np.log(errors), 1)[0]
    assert slope == pytest.approx(order, abs=0.15)


@pytest.mark.parametrize("corrector", ["uld", "uld-rm"])
def test_corrector_keeps_the_law_and_pulls_a_perturbed_start_back(corrector):
    t, n = 0.3, 40_000
    m, v = marginal(t)
    rngs = Streams(_streams(3, 0, n))
    steps, h = (8, 0.05) if corrector == "uld" else (4, 0.125)
    oracle = diffusion.sampler._Oracle(score, 3, (), 0, NumpyBackend())
    kept, _ = _correct(corrector, oracle, exact(n, t, seed=4), t, steps, h, 2.0, rngs)
    # one Langevin run from the exact law: Var changes only by the step's bias, O(h) for
    # exponential Euler (≤ 2 % here), O(h³) for the midpoint; 4.5 standard errors
    se_var = v * np.sqrt(2.0 / n)
    allowance = 0.02 * v if corrector == "uld" else 0.0
    assert np.all(np.abs(kept.mean(axis=0) - m) < 4.5 * np.sqrt(v / n))
    assert np.all(np.abs(kept.var(axis=0) - v) < 4.5 * se_var + allowance)
    # from variance 4v, a short run (duration 0.4-0.5) moves every coordinate's variance
    # toward v, by many standard errors, without overshooting
    start = m + 2.0 * (exact(n, t, seed=5) - m)
    pulled, _ = _correct(corrector, oracle, start, t, steps, h, 2.0, rngs)
    assert np.all(pulled.var(axis=0) < start.var(axis=0) - 4.5 * 4 * se_var)
    assert np.all(pulled.var(axis=0) > v)


def test_full_sampler_recovers_the_gaussian_law():
    x, info = diffusion.sample(score, dim=3, num_samples=20_000, predictor="rm", corrector="uld-rm",
                               steps=20, t_max=5.0, t_min=1e-3, seed=2)
    m, v = marginal(1e-3)
    # N(0, I) start at T = 5 misses q_T by e^{-5}; discretization bias allowance 3 % of v
    assert np.all(np.abs(x.mean(axis=0) - m) < 4.5 * np.sqrt(v / len(x)) + 0.01 * np.sqrt(v))
    assert np.all(np.abs(x.var(axis=0) / v - 1) < 4.5 * np.sqrt(2 / len(x)) + 0.03)
    # counts: 20 rm steps (2 each) + 20 corrector runs of 4 midpoint steps (2 each)
    # + 1: the last corrector run's end is scored, as every run's end (the next step reuses it)
    assert info["nfe_per_sample"] == 20 * 2 + 20 * 8 + 1
    assert info["rounds"] == 20 * 2 + 20 * 8 + 1


@pytest.mark.parametrize("predictor,corrector", [("rm", "uld-rm"), ("ddpm", "uld"), ("heun", None)])
def test_each_sample_is_the_same_alone_in_a_batch_or_in_chunks(predictor, corrector):
    kwargs = dict(dim=3, predictor=predictor, corrector=corrector, steps=6, seed=11)
    batch, _ = diffusion.sample(score, num_samples=7, **kwargs)
    alone, _ = diffusion.sample(score, num_samples=1, first_sample=4, **kwargs)
    chunk, _ = diffusion.sample(score, num_samples=3, first_sample=2, **kwargs)
    np.testing.assert_array_equal(alone[0], batch[4])
    np.testing.assert_array_equal(chunk, batch[2:5])
    again, _ = diffusion.sample(score, num_samples=7, **kwargs)
    np.testing.assert_array_equal(again, batch)
    other, _ = diffusion.sample(score, num_samples=7, **{**kwargs, "seed": 12})
    assert not np.array_equal(other, batch)


def test_denoise_adds_one_tweedie_step_and_one_evaluation():
    kwargs = dict(dim=3, num_samples=5, predictor="exp-euler", steps=4, seed=0)
    x, info = diffusion.sample(score, **kwargs)
    y, info_d = diffusion.sample(score, denoise=True, **kwargs)
    t = info["ts"][-1]
    np.testing.assert_allclose(y, (x + (1 - np.exp(-2 * t)) * score(x, np.full(5, t))) * np.exp(t))
    assert info_d["nfe"] == info["nfe"] + 5


@pytest.mark.parametrize("predictor", ["ddim", "dpm-pc"])
def test_callback_sees_the_denoised_estimate_and_can_stop(predictor):
    """One-step predictors: the Tweedie estimate at x. "dpm-pc": the D its next step uses,
    evaluated at the step's predicted point, so Tweedie at x only at the start and close
    to it after."""
    seen = []

    def callback(i, t, x, denoised):
        seen.append(i)
        tweedie = (x + (1 - np.exp(-2 * t)) * score(x, np.full(len(x), t))) * np.exp(t)
        tol = 1e-7 if predictor == "ddim" or i == 0 else 0.05
        np.testing.assert_allclose(denoised, tweedie, rtol=tol, atol=tol)
        return i < 2

    _, info = diffusion.sample(score, dim=3, num_samples=4, steps=10, seed=0, callback=callback,
                               predictor=predictor)
    assert seen == [0, 1, 2] and info["interrupted"]


@pytest.mark.parametrize("kwargs,match", [
    ({"ts": [1.0, 2.0]}, "strictly decreasing"),
    ({"ts": [1.0, 0.0]}, "t > 0"),
    ({"t_min": 0.0}, "t_min"),
    ({"predictor": "euler"}, "predictor"),
    ({"corrector": "langevin"}, "corrector"),
    ({"steps": 0}, "steps"),
    ({"num_samples": 0}, "num_samples"),
    ({"friction": -1.0}, "friction"),
    ({"x_init": np.zeros((2, 2))}, "x_init"),
])
def test_bad_arguments_are_rejected_by_name(kwargs, match):
    base = dict(dim=3, num_samples=2, seed=0)
    with pytest.raises(ValueError, match=match):
        diffusion.sample(score, **{**base, **kwargs})


def test_a_broken_score_is_reported_with_time_and_sample():
    def nan_score(x, t):
        out = score(x, t)
        out[1] = np.nan
        return out

    with pytest.raises(ValueError, match=r"non-finite values at t = 5 for sample 8"):
        diffusion.sample(nan_score, dim=3, num_samples=3, first_sample=7, seed=0)
    with pytest.raises(ValueError, match="shape"):
        diffusion.sample(lambda x, t: x[:, :2], dim=3, num_samples=3, seed=0)


def test_two_mode_mixture_weights_are_recovered_with_a_corrector():
    # ⅔ / ⅓ modes, d = 20: the weight on each mode within 4.5 binomial standard errors
    mixture = diffusion.two_modes(20)
    n = 4000
    x, info = diffusion.sample(mixture.score_kernel, score_args=mixture.score_args, dim=20,
                               num_samples=n, predictor="rm", corrector="uld", steps=10, seed=0)
    w = np.bincount(mixture.mode_assign(x), minlength=2) / n
    se = np.sqrt(mixture.weights * (1 - mixture.weights) / n)
    assert np.all(np.abs(w - mixture.weights) < 4.5 * se)
    # a corrector run of 4 steps scores its start and each step's end; the next predictor
    # step starts from the last of these scores, so only the final run's end is extra
    assert info["nfe_per_sample"] == 10 * 2 + 10 * 4 + 1


@pytest.mark.parametrize("predictor", ["rm", "ddim", "exp-euler", "ddpm", "heun"])
def test_jitted_score_gives_the_python_score_samples(predictor):
    # the same loop calls either; only the two score implementations round differently
    mixture = diffusion.grid_mixture(8)
    for corrector in (None, "uld", "uld-rm"):
        kwargs = dict(dim=8, num_samples=40, predictor=predictor, corrector=corrector, steps=5,
                      seed=3, denoise=True)
        a, info_a = diffusion.sample(mixture.score_kernel, score_args=mixture.score_args, **kwargs)
        b, info_b = diffusion.sample(mixture.score, **kwargs)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
        assert (info_a["nfe"], info_a["rounds"]) == (info_b["nfe"], info_b["rounds"])


@numba.njit
def _score_nan_beyond(x, t, out, limit):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = -x[i, j] if abs(x[i, j]) < limit else np.nan


def test_jitted_score_non_finite_is_reported_with_time_and_sample():
    x0 = np.zeros((3, 2))
    x0[1, 0] = 5.0  # sample 1 (global 11) is outside the score's domain from the start
    with pytest.raises(ValueError, match=r"non-finite values at t = 5 for sample 11"):
        diffusion.sample(_score_nan_beyond, score_args=(4.0,), dim=2, num_samples=3,
                         first_sample=10, x_init=x0, seed=0)


def test_ill_conditioned_gaussian_moments_are_recovered():
    target = diffusion.ill_conditioned_gaussian(10, condition=100.0)
    n = 20_000
    x, _ = diffusion.sample(target.score, dim=10, num_samples=n, predictor="rm", corrector="uld-rm",
                            steps=40, grid="logsnr", t_min=1e-3, seed=5)
    mean, cov = target.marginal(1e-3)
    evals, evecs = np.linalg.eigh(cov)
    y = (x - mean) @ evecs
    # every eigen-direction, the stiffest included (docs/theory.md §8): mean within
    # 4.5 SE, variance within 4.5 SE + 5 % discretization allowance
    assert np.all(np.abs(y.mean(axis=0)) < 4.5 * np.sqrt(evals / n))
    assert np.all(np.abs(y.var(axis=0) / evals - 1) < 4.5 * np.sqrt(2 / n) + 0.05)


def test_rm_uld_method_is_rm_with_a_uld_corrector_and_explicit_arguments_override_it():
    kwargs = dict(dim=3, num_samples=4, steps=5, seed=1)
    a, info = diffusion.sample(score, method="rm-uld", **kwargs)
    b, _ = diffusion.sample(score, predictor="rm", corrector="uld", corrector_steps=2, **kwargs)
    np.testing.assert_array_equal(a, b)
    assert info["nfe_per_sample"] == 5 * 2 + 5 * 2 + 1  # + the last corrector run's end
    c, _ = diffusion.sample(score, method="rm-uld", corrector=None, **kwargs)
    d, _ = diffusion.sample(score, predictor="rm", **kwargs)
    np.testing.assert_array_equal(c, d)
    with pytest.raises(ValueError, match="method"):
        diffusion.sample(score, method="ddim", **kwargs)
    with pytest.raises(ValueError, match="rm-uld"):  # the old name says the new one
        diffusion.sample(score, method="gcc", **kwargs)


def test_jitted_score_with_corrector_windows_gives_the_python_score_samples():
    # a corrector after every 2nd step: the same samples and counts from either score
    mixture = diffusion.grid_mixture(8)
    kwargs = dict(dim=8, num_samples=10, predictor="rm", corrector="uld", corrector_every=2,
                  steps=45, seed=8)
    a, info_a = diffusion.sample(mixture.score_kernel, score_args=mixture.score_args, **kwargs)
    b, info_b = diffusion.sample(mixture.score, **kwargs)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    assert info_a["nfe_per_sample"] == info_b["nfe_per_sample"] == 45 * 2 + 22 * 4


def _denoiser_ve(y, sig):
    """E[x_0 | x_0 + σ z = y] for N(MU, diag(S2)) data: a k-diffusion denoiser D(y, σ)."""
    return MU + S2 / (S2 + sig**2) * (y - MU)


@pytest.mark.parametrize("grid", ["logsnr", "karras"])
def test_ddim_is_k_diffusion_euler_and_diffusers_ddim(grid):
    # two independent references on the same grid and start: k-diffusion's sample_euler
    # (churn 0) in variance-exploding coordinates y = x/α, and diffusers' DDIMScheduler step
    # (η = 0) in ᾱ = α² notation with ε̂ from the denoiser
    n, steps = 6, 12
    x0 = np.random.default_rng(3).standard_normal((n, 3))
    x, info = diffusion.sample(score, dim=3, num_samples=n, predictor="ddim", steps=steps,
                               grid=grid, x_init=x0, seed=0, progressbar=False)
    ts = info["ts"]
    sigmas = np.sqrt(np.expm1(2 * ts))
    y = x0 * np.exp(ts[0])
    for sig, sig_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        y = y + (y - _denoiser_ve(y, sig)) / sig * (sig_next - sig)
    np.testing.assert_allclose(x, y * np.exp(-ts[-1]), rtol=1e-10, atol=1e-10)
    abar = np.exp(-2 * ts)
    z = x0
    for a, a_prev in zip(abar[:-1], abar[1:], strict=True):
        pred_x0 = _denoiser_ve(z / np.sqrt(a), np.sqrt((1 - a) / a))
        eps = (z - np.sqrt(a) * pred_x0) / np.sqrt(1 - a)
        z = np.sqrt(a_prev) * pred_x0 + np.sqrt(1 - a_prev) * eps
    np.testing.assert_allclose(x, z, rtol=1e-10, atol=1e-10)
    assert info["nfe_per_sample"] == steps


def test_ddim_and_exp_euler_variances_on_a_stiff_gaussian_are_the_exact_products():
    # centred Gaussian data, d = 8, condition 1e4, 80 log-SNR steps: both predictors are
    # linear maps A, so from x_init = I the rows are A's columns and the output covariance
    # from an N(0, I) start is exactly AAᵀ. Per eigen-direction of variance λ each step
    # multiplies by m: DDIM's σ'/σ + (α' - σ'α/σ)·αλ/(α²λ + σ²) (frozen posterior mean),
    # exp-euler's e^h - (e^h - 1)/(α²λ + σ²) (frozen score)
    data = diffusion.ill_conditioned_gaussian(8, condition=1e4)
    lam, vecs = np.linalg.eigh(data.cov)
    ts = diffusion.time_grid(80, "logsnr", 5.0, 1e-3)
    a, s2 = np.exp(-ts)[:, None], -np.expm1(-2 * ts)[:, None]
    c = a**2 * lam + s2  # the marginal variances along the grid, per direction
    m_ddim = np.sqrt(s2[1:] / s2[:-1]) + (a[1:] - np.sqrt(s2[1:] / s2[:-1]) * a[:-1]) * (
        a[:-1] * lam / c[:-1])
    h = -np.diff(ts)[:, None]
    m_ee = np.exp(h) - np.expm1(h) / c[:-1]
    errors = {}
    for predictor, m in (("ddim", m_ddim), ("exp-euler", m_ee)):
        x, _ = diffusion.sample(data.score, dim=8, num_samples=8, predictor=predictor, ts=ts,
                                x_init=np.eye(8), seed=0, progressbar=False)
        var = np.einsum("ij,jk,ki->i", vecs.T, x.T @ x, vecs)
        np.testing.assert_allclose(var, np.prod(m, axis=0) ** 2, rtol=1e-9)
        errors[predictor] = var / c[-1] - 1
    # the stiffest direction (λ = 1e-4): DDIM is exact as λ → 0 (-0.2 %), the frozen score
    # overshoots (+36 %); DDIM contracts every direction, by at most 5 % (at λ = 1)
    assert -0.003 < errors["ddim"][0] < 0 and 0.35 < errors["exp-euler"][0] < 0.37
    assert np.all((errors["ddim"] < 0) & (errors["ddim"] > -0.05))
    assert np.all(errors["exp-euler"] >= -1e-9)
