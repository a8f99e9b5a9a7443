"""R-hat and bulk ESS of the convergence checks against ArviZ, their reference, on
autocorrelated, drifting, tied and constant chains."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lcsample.mcmc.convergence import bulk_ess, rank_rhat

az = pytest.importorskip("arviz")
ARVIZ_1 = int(az.__version__.split(".")[0]) >= 1


def _arviz(draws, statistic):
    """ArviZ's value per coordinate of (chains, draws, d)."""
    method = {"rhat": "rank", "ess": "bulk"}[statistic]
    fn = getattr(az, statistic)
    if ARVIZ_1:
        return np.asarray(fn(draws, method=method, chain_axis=0, draw_axis=1), dtype=float)
    return np.array([float(fn(draws[:, :, j], method=method)) for j in range(draws.shape[2])])


def _chains(seed, m, n, d, phi, shift, ties):
    rng = np.random.default_rng(seed)
    x = np.empty((m, n, d))
    x[:, 0] = rng.standard_normal((m, d))
    for t in range(1, n):  # AR(1): autocorrelation phi
        x[:, t] = phi * x[:, t - 1] + np.sqrt(1 - phi**2) * rng.standard_normal((m, d))
    x[0] += shift  # one chain off: R-hat above 1
    return np.round(x, 1) if ties else x


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(2, 5), n=st.integers(4, 400),
       d=st.integers(1, 3), phi=st.floats(-0.5, 0.98), shift=st.sampled_from([0.0, 0.3, 3.0]),
       ties=st.booleans())
def test_rhat_and_ess_equal_arviz(seed, m, n, d, phi, shift, ties):
    draws = _chains(seed, m, n, d, phi, shift, ties)
    np.testing.assert_allclose(rank_rhat(draws), _arviz(draws, "rhat"), rtol=1e-10)
    np.testing.assert_allclose(bulk_ess(draws), _arviz(draws, "ess"), rtol=1e-10)


def test_one_chain_ess_and_a_constant_coordinate():
    draws = _chains(0, 1, 300, 2, 0.7, 0.0, False)
    np.testing.assert_allclose(bulk_ess(draws), _arviz(draws, "ess"), rtol=1e-10)
    draws = _chains(1, 3, 100, 2, 0.2, 0.0, False)
    draws[:, :, 1] = 2.5
    rhat, ess = rank_rhat(draws), bulk_ess(draws)
    assert np.isnan(rhat[1]) and ess[1] == 300.0
    np.testing.assert_allclose(ess, _arviz(draws, "ess"), rtol=1e-10)


def test_an_ar1_chain_has_its_known_ess():
    # ESS of a long AR(1) chain: S (1 - φ)/(1 + φ), within a few percent
    draws = _chains(2, 4, 20000, 1, 0.8, 0.0, False)
    assert bulk_ess(draws)[0] == pytest.approx(4 * 20000 * 0.2 / 1.8, rel=0.06)
