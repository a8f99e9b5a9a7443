"""Score adapters against the exact parameterizations of Gaussian data."""

import numpy as np
import pytest

from lcsample.diffusion.adapters import DiscreteSchedule, score_from_denoiser, score_from_model

MU, S2 = np.array([0.5, -1.0]), np.array([0.3, 2.0])  # data N(MU, diag(S2))


def exact(x, t):
    """score, x₀ (Tweedie), ε and v of Gaussian data at OU times t (n,)."""
    a = np.exp(-t)[:, None]
    sig2 = 1 - a**2
    score = -(x - a * MU) / (a**2 * S2 + sig2)
    x0 = (x + sig2 * score) / a
    eps = -np.sqrt(sig2) * score
    return score, x0, eps, a * eps - np.sqrt(sig2) * x0


@pytest.fixture
def points():
    rng = np.random.default_rng(0)
    return rng.standard_normal((50, 2)) * 2, rng.uniform(0.01, 4.0, 50)


@pytest.mark.parametrize("kind,position",
                         [("score", 0), ("sample", 1), ("epsilon", 2), ("v_prediction", 3)])
def test_each_parameterization_gives_the_exact_score(points, kind, position):
    x, t = points
    score = score_from_model(lambda x, t: exact(x, t)[position], kind)
    np.testing.assert_allclose(score(x, t), exact(x, t)[0], rtol=1e-10, atol=1e-12)


def test_karras_denoiser_gives_the_exact_score(points):
    x, t = points

    def denoiser(x_ve, sigma):
        # D(x̃, σ) = E[X₀ | X₀ + σZ = x̃] for N(MU, diag(S2)) data
        s2 = sigma[:, None] ** 2
        return MU + S2 / (S2 + s2) * (x_ve - MU)

    np.testing.assert_allclose(score_from_denoiser(denoiser)(x, t), exact(x, t)[0], rtol=1e-10)


def test_discrete_schedule_round_trips_and_interpolates():
    betas = np.linspace(1e-4, 0.02, 1000)
    sched = DiscreteSchedule(np.cumprod(1 - betas))
    idx = np.array([0.0, 10.5, 499.25, 999.0])
    np.testing.assert_allclose(sched.index(sched.time(idx)), idx, atol=1e-9)
    np.testing.assert_allclose(sched.time(np.arange(1000.0)), sched.times, rtol=1e-12)
    # a model that knows its continuous time through the index gives the exact score
    x, t = np.ones((3, 2)), sched.time(np.array([3.3, 200.7, 900.1]))
    model = lambda x, i: exact(x, sched.time(i))[2]  # noqa: E731
    np.testing.assert_allclose(sched.score(model)(x, t), exact(x, t)[0], rtol=1e-9)
    nearest = DiscreteSchedule(np.cumprod(1 - betas), interpolate=False)
    assert (nearest.index(t) == np.rint(nearest.index(t))).all()
    # rounding: the score of the nearest training time, converted with that time's α, σ
    t_nearest = sched.time(np.rint(sched.index(t)))
    np.testing.assert_allclose(nearest.score(model)(x, t), exact(x, t_nearest)[0], rtol=1e-9)


def test_bad_adapter_input_is_rejected():
    with pytest.raises(ValueError, match="prediction_type"):
        score_from_model(lambda x, t: x, "noise")
    with pytest.raises(ValueError, match="alphas_cumprod"):
        DiscreteSchedule([0.5, 0.9])
    with pytest.raises(ValueError, match="alphas_cumprod"):
        DiscreteSchedule([1.0, 0.5])
