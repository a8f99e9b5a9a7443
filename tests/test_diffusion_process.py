"""Forward process helpers and time grids: the defining property of each grid."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lcsample.diffusion.process import (
    alpha,
    check_grid,
    sigma2,
    sigma_ve,
    t_from_sigma_ve,
    time_grid,
)


def test_sigma2_has_no_cancellation_and_ve_conversions_round_trip():
    t = np.array([1e-12, 1e-6, 1e-3, 1.0, 10.0])
    # σ² = 1 - e^{-2t} = 2t - 2t² + ... to full relative precision at tiny t
    np.testing.assert_allclose(sigma2(t[:2]), 2 * t[:2] * (1 - t[:2]), rtol=1e-12)
    np.testing.assert_allclose(alpha(t) ** 2 + sigma2(t), 1.0, rtol=1e-15)
    np.testing.assert_allclose(t_from_sigma_ve(sigma_ve(t)), t, rtol=1e-12)
    np.testing.assert_allclose(sigma_ve(t) ** 2, sigma2(t) / alpha(t) ** 2, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.floats(1.5, 20.0), st.floats(1e-5, 0.5),
       st.sampled_from(["uniform", "logsnr", "karras", "windows"]))
def test_every_grid_is_strictly_decreasing_between_its_end_points(steps, t_max, t_min, kind):
    ts = time_grid(steps, kind, t_max, t_min)
    assert ts.shape == (steps + 1,)
    assert ts[0] == t_max and ts[-1] == t_min
    assert (np.diff(ts) < 0).all()
    check_grid(ts)


@pytest.mark.parametrize("kind,transform", [
    ("uniform", lambda t: t),
    ("logsnr", lambda t: -np.log(np.expm1(2 * t))),
    ("karras", lambda t: sigma_ve(t) ** (1 / 7)),
])
def test_each_grid_is_uniform_in_its_own_variable(kind, transform):
    ts = time_grid(25, kind, 5.0, 1e-3)
    np.testing.assert_allclose(np.diff(transform(ts)), np.diff(transform(ts))[0], rtol=1e-8)


def test_windows_grid_is_uniform_above_one_and_geometric_below():
    ts = time_grid(20, "windows", 5.0, 1e-3)
    above, below = ts[ts >= 1.0], ts[ts <= 1.0]
    np.testing.assert_allclose(np.diff(above), np.diff(above)[0])
    np.testing.assert_allclose(np.diff(np.log(below)), np.diff(np.log(below))[0])
    # steps split in proportion to t_max - 1 = 4 and log(1/t_min) = 6.9
    assert len(above) - 1 == round(20 * 4 / (4 + np.log(1e3)))


@pytest.mark.parametrize("kwargs,match", [
    ({"steps": 0}, "steps"), ({"steps": 2.0}, "steps"), ({"kind": "cosine"}, "kind"),
    ({"t_min": 0.0}, "t_min"), ({"t_min": -1.0}, "t_min"), ({"t_max": 1e-6}, "t_max"),
    ({"rho": 0.0}, "rho"),
])
def test_bad_grid_arguments_are_rejected_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        time_grid(**{"steps": 10, **kwargs})


@pytest.mark.parametrize("ts,match", [
    ([1.0], "at least 2"), ([[1.0, 0.5]], "1-D"), ([1.0, np.nan], "finite"),
    ([1.0, 1.0], "strictly decreasing"), ([1.0, -0.1], "t > 0"),
])
def test_bad_user_grids_are_rejected(ts, match):
    with pytest.raises(ValueError, match=match):
        check_grid(ts)
