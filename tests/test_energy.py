"""The ``energy`` sample statistic (the Hamiltonian at each draw) and ``diverging`` as NUTS
users read it (issue 14, item 4), against exact values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lcsample
from lcsample.kernels.step import kinetic_energy
from lcsample.mcmc.warmup.loop import MAX_ENERGY_ERROR, flag_energy_jumps
from lcsample.mcmc.warmup.mass import InverseMass

QUIET = dict(progressbar=False, compute_convergence_checks=False)
COV = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dense=st.booleans())
def test_kinetic_energy_is_half_v_u_inverse_v(seed, dense):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((4, 4))
    matrix = a @ a.T + 0.5 * np.eye(4) if dense else rng.uniform(0.1, 5.0, 4)
    u, chol, _ = InverseMass(matrix).kernel_args
    v = rng.standard_normal(4)
    full = matrix if dense else np.diag(matrix)
    assert kinetic_energy(u, chol, v) == pytest.approx(0.5 * v @ np.linalg.solve(full, v),
                                                       rel=1e-12)


def _batched():
    precision = np.linalg.inv(COV)
    return lcsample.Target.from_batch(lambda X: (-0.5 * np.einsum("ij,jk,ik->i", X, precision, X),
                                                 -X @ precision), 3)


@pytest.mark.parametrize("method", ["rmd", "ulmc", "rmd-tv", "rmd-picard"])
@pytest.mark.parametrize("batched", [False, True])
def test_the_last_draws_energy_is_its_hamiltonian(method, batched):
    # the last draw is the last state (but for rmd-tv, whose draw is the corrector's end)
    target = _batched() if batched else lcsample.targets.Gaussian(np.zeros(3), cov=COV)
    extra = {"tolerance": 0.0} if method == "rmd-picard" else {}
    res = lcsample.sample(target, draws=30, tune=50, chains=2, seed=3, method=method, **extra,
                          **QUIET)
    energy, lp = res.sample_stats["energy"], res.sample_stats["lp"]
    assert np.isfinite(energy).all() and res.warmup is None
    if method == "rmd-tv":
        # a fresh velocity run from each draw: kinetic energy ≥ 0, mean ≈ d/2 = 1.5
        assert (energy >= -lp).all()
        return
    state = res.last_state
    for c in range(2):
        mass = InverseMass(state.inverse_mass_matrix[c])
        u, chol, _ = mass.kernel_args
        kinetic = kinetic_energy(u, chol, state.velocity[c])
        assert energy[c, -1] == pytest.approx(kinetic - lp[c, -1], rel=1e-12, abs=1e-12)


def test_the_mean_energy_of_a_gaussian_is_the_chains_exact_stationary_value():
    # with the dense Laplace mass (exact here) each eigen-direction is N(0, 1) for the
    # chain: E[H] = ½ log det(2πΣ) + Σ_i ½ (Var x_i + Var v_i), both variances from the
    # chain's exact stationary law at its tuned (h, γ) (the continuous dynamics would give
    # ½ log det(2πΣ) + d; the discretization overstates Var v by several percent)
    target = lcsample.targets.Gaussian(np.ones(3), cov=COV)
    res = lcsample.sample(target, draws=4000, seed=1, method="rmd", **QUIET)
    h, gamma = res.attrs["step_size"][0], res.attrs["friction"][0]
    law = lcsample.stationary_covariance(1.0, h, gamma)
    exact = 0.5 * np.linalg.slogdet(2 * np.pi * COV)[1] + 1.5 * (law[0, 0] + law[1, 1])
    energy = res.sample_stats["energy"]
    means = np.array([b.mean() for chain in energy for b in np.array_split(chain, 20)])
    se = means.std(ddof=1) / np.sqrt(means.size)
    assert abs(energy.mean() - exact) < 4 * se
    assert abs(energy.mean() - (exact - 1.5 * (law[0, 0] + law[1, 1]) + 3)) > 2 * se


def test_an_energy_jump_is_a_divergence_and_a_stop_is_also_nonfinite():
    records = {"energy": np.array([[1.0, 2.0, 2.0 + MAX_ENERGY_ERROR + 1, 1.0, np.nan]]),
               "diverging": np.array([[False, False, False, False, True]])}
    flag_energy_jumps(records)
    assert records["diverging"].tolist() == [[False, False, True, True, True]]
    # a run that blows up: its stop is nonfinite and diverging, and ArviZ gets both stats
    target = lcsample.targets.Gaussian(np.zeros(2), cov=np.ones(2))
    with pytest.warns(RuntimeWarning, match="non-finite"):
        res = lcsample.sample(target, draws=200, tune=0, chains=1, seed=0, step_size=40.0,
                              friction=0.01, check_gradient=False, **QUIET)
    stats = res.sample_stats
    assert stats["nonfinite"].any() and (stats["diverging"] >= stats["nonfinite"]).all()
    assert {"energy", "nonfinite"} <= set(res.to_arviz()["sample_stats"].data_vars)
