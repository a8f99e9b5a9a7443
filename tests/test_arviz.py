"""ArviZ output under whichever ArviZ line is installed (0.x on Python 3.11, 1.x on 3.12+)."""

import numpy as np
import pytest

import lcsample
from lcsample.mcmc.arviz import arrays_by_group

az = pytest.importorskip("arviz")
ARVIZ_1 = int(az.__version__.split(".")[0]) >= 1

TARGET = lcsample.targets.Gaussian(np.zeros(3), np.array([1.0, 2.0, 3.0]))


@pytest.fixture(scope="module")
def result():
    return lcsample.sample(TARGET, draws=200, tune=100, chains=4, seed=9, progressbar=False,
                           discard_tuned_samples=False)


def test_groups_as_plain_arrays(result):
    groups = arrays_by_group(result)
    assert set(groups) == {"posterior", "sample_stats", "warmup_posterior", "warmup_sample_stats"}
    np.testing.assert_array_equal(groups["posterior"]["x"], result.posterior)
    named = arrays_by_group(result, var_names=["a", "b", "c"])
    np.testing.assert_array_equal(named["posterior"]["b"], result.posterior[:, :, 1])
    with pytest.raises(ValueError, match="var_names"):
        arrays_by_group(result, var_names=["a", "b"])


def test_container_type_and_groups(result):
    data = result.to_arviz()
    if ARVIZ_1:
        import xarray as xr

        assert isinstance(data, xr.DataTree)
        groups = set(data.children)
    else:
        assert isinstance(data, az.InferenceData)
        groups = set(data.groups())
    assert {"posterior", "sample_stats", "warmup_posterior", "warmup_sample_stats"} <= groups
    post = data["posterior"]["x"]
    assert post.dims[:2] == ("chain", "draw") and post.shape == (4, 200, 3)
    np.testing.assert_array_equal(post.values, result.posterior)
    stats = data["sample_stats"]
    for name in ("lp", "diverging", "step_size", "n_steps"):
        assert stats[name].shape == (4, 200)
    assert stats["diverging"].dtype == bool
    attrs = data["posterior"].attrs
    assert attrs["inference_library"] == "lcsample"
    assert attrs["method"] == "rmd-lagged" and attrs["seed"] == 9
    assert attrs["is_calibrated"] == 0  # stored netCDF-safe as 0/1


def test_diagnostics_work(result):
    data = result.to_arviz(var_names=["a", "b", "c"])
    summary = az.summary(data)
    assert list(summary.index) == ["a", "b", "c"]
    ess = az.ess(data)
    rhat = az.rhat(data)
    for name in "abc":
        # a Dataset on 0.x, a DataTree rooted at the posterior group on 1.x
        ess_value, rhat_value = float(ess[name].values), float(rhat[name].values)
        assert 20 < ess_value <= 4 * 200 * 3  # antithetic chains can exceed the draw count
        assert 0.95 < rhat_value < 1.1
    # summary's mean is the draws' mean
    np.testing.assert_allclose(summary.loc["b", "mean"], result.posterior[:, :, 1].mean(), atol=1e-3)


def test_coords_and_dims(result):
    data = result.to_arviz(coords={"param": ["p0", "p1", "p2"]}, dims={"x": ["param"]})
    assert list(data["posterior"]["x"].coords["param"].values) == ["p0", "p1", "p2"]
