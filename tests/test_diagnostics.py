"""Convergence checks on synthetic draws whose true behaviour is known."""

import warnings

import numpy as np
import pytest

from lcsample.mcmc.diagnostics import (
    DRIFT_Z_THRESHOLD,
    Diagnostic,
    _check_coverage,
    _check_divergences,
    _check_ess,
    _check_lp_drift,
    _check_rhat,
    _check_rhat_ess_possible,
    _check_warmup_converged,
    _coordinate_subset,
    _finite_chains,
    _left_out_note,
    convergence_checks,
    lp_drift_zscore,
    warn_convergence,
)
from lcsample.mcmc.results import SamplingResult

pytest.importorskip("arviz")

# ArviZ divides by a zero variance on constant coordinates; that must not leak out
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning:arviz.*")


def make_result(posterior, lp=None, diverging=None, attrs=None):
    """A SamplingResult around synthetic draws of shape (chains, draws, d)."""
    posterior = np.asarray(posterior, dtype=float)
    chains, draws, _ = posterior.shape
    if lp is None:
        lp = -0.5 * np.sum(posterior**2, axis=2)
    if diverging is None:
        diverging = np.zeros((chains, draws), dtype=bool)
    stats = {
        "lp": np.asarray(lp, dtype=float),
        "diverging": np.asarray(diverging, dtype=bool),
        "step_size": np.full((chains, draws), 0.1),
        "friction": np.full((chains, draws), 1.0),
        "n_steps": np.full((chains, draws), 2, dtype=np.int64),
    }
    return SamplingResult(posterior=posterior, sample_stats=stats, warmup=None, last_state=None,
                          timing={}, n_grad_evals=np.zeros(chains), attrs=dict(attrs or {}))


def ar1(rng, phi, shape):
    """Stationary AR(1) along axis 1 with unit marginal variance."""
    noise = rng.standard_normal(shape)
    x = np.empty(shape)
    x[:, 0] = noise[:, 0]
    scale = np.sqrt(1 - phi**2)
    for t in range(1, shape[1]):
        x[:, t] = phi * x[:, t - 1] + scale * noise[:, t]
    return x


def kinds(found):
    return [d.kind for d in found]


@pytest.fixture
def iid():
    return np.random.default_rng(0).standard_normal((4, 1000, 5))


def test_iid_draws_have_no_diagnostics(iid):
    result = make_result(iid)
    assert convergence_checks(result) == []
    assert result.diagnostics() == []


def test_shifted_chain_flags_rhat_on_that_coordinate(iid):
    draws = iid.copy()
    draws[1, :, 3] += 2.0
    found = convergence_checks(make_result(draws, lp=np.zeros((4, 1000))))
    # a chain that never visits the others' region also leaves few effective draws
    assert kinds(found) == ["rhat", "ess"]
    item = found[0]
    assert item.variables == (3,) and item.chains == (0, 1, 2, 3) and item.level == "warn"
    # Classic split R-hat of 8 half-chains, 2 with mean 2 and 6 with mean 0, unit variance:
    # sqrt(1 + var(half-chain means)) = sqrt(1 + 6/7) = 1.36; rank normalization compresses
    # the shifted tail somewhat, so the reported value is lower but far above 1.01
    assert 1.15 < item.values[0] < 1.45
    assert "x[3]" in item.message and f"{item.values[0]:.3f}" in item.message
    assert found[1].variables == (3,) and found[1].values[0] < 100 * 4


def test_ar1_draws_flag_ess_close_to_closed_form():
    phi, chains, n, d = 0.99, 4, 4000, 5
    draws = ar1(np.random.default_rng(1), phi, (chains, n, d))
    lp = np.random.default_rng(2).standard_normal((chains, n))  # stationary, no drift
    found = convergence_checks(make_result(draws, lp=lp))
    assert "ess" in kinds(found) and "divergences" not in kinds(found)
    item = next(f for f in found if f.kind == "ess")
    assert sorted(item.variables) == list(range(d))
    assert item.values == tuple(sorted(item.values))  # worst (smallest) first
    # AR(1): integrated autocorrelation time tau = (1 + phi) / (1 - phi) = 199, so the total
    # ESS is chains * n / tau = 80.4, i.e. ~20 per chain, well below 100
    tau = (1 + phi) / (1 - phi)
    expected = chains * n / tau
    # Relative sd of an autocorrelation-time estimate over N = chains * n draws is about
    # sqrt(2 (2 M + 1) / N) for a summation window M ~ tau (Sokal 1997): 0.22 per
    # coordinate, 0.10 for the mean of d = 5 independent coordinates; allow 4 sd
    rel_sd = np.sqrt(2 * (2 * tau + 1) / (chains * n)) / np.sqrt(d)
    assert abs(np.mean(item.values) / expected - 1) < 4 * rel_sd
    assert "per chain is smaller than 100" in item.message


def test_divergences_counted(iid):
    diverging = np.zeros((4, 1000), dtype=bool)
    diverging[1, 500:] = True
    diverging[2, 10] = True
    found = convergence_checks(make_result(iid, diverging=diverging))
    assert kinds(found) == ["divergences"]
    assert found[0].values == (501,) and found[0].chains == (1, 2)
    assert "501 draw(s)" in found[0].message and "2 of 4 chain(s)" in found[0].message


def test_warmup_not_converged_reported(iid):
    note = "step size still shrinking at the end of tuning"
    attrs = {"warmup_converged": False, "warmup_note": note}
    found = convergence_checks(make_result(iid, attrs=attrs))
    assert kinds(found) == ["warmup"] and note in found[0].message
    found = convergence_checks(make_result(iid, attrs={"warmup_converged": False}))
    assert kinds(found) == ["warmup"]
    assert convergence_checks(make_result(iid, attrs={"warmup_converged": True})) == []


@pytest.mark.parametrize("slope", [1e-3, -1e-3])
def test_linear_trend_in_lp_is_a_warmup_drift(iid, slope):
    # lp with unit noise and a trend of one noise sd over the run: the segment means differ
    # by 0.7 sd, the batch-means se (trend included) is ~0.08, so z ~ 9
    lp = np.random.default_rng(3).standard_normal((4, 1000)) + slope * np.arange(1000)
    found = convergence_checks(make_result(iid, lp=lp))
    assert kinds(found) == ["warmup"]
    z = found[0].values[0]
    assert np.sign(z) == np.sign(slope) and 6 < abs(z) < 13
    assert ("rose" if slope > 0 else "fell") in found[0].message


def test_step_in_lp_gives_the_expected_zscore():
    # first 10 % shifted by delta, unit i.i.d. noise: z = delta / sqrt((1/100 + 1/500) / 4)
    rng = np.random.default_rng(4)
    for delta in (0.5, 0.1):
        lp = rng.standard_normal((4, 1000))
        lp[:, :100] -= delta
        expected = delta / np.sqrt((1 / 100 + 1 / 500) / 4)  # 9.1 and 1.8
        # sd of z is 1 plus the relative error of the estimated se (36 degrees of freedom)
        assert abs(lp_drift_zscore(lp) - expected) < 4 * np.sqrt(1 + expected**2 / 72)
    # the small step (z ~ 1.8) is not flagged
    assert convergence_checks(make_result(rng.standard_normal((4, 1000, 1)), lp=lp)) == []


@pytest.mark.parametrize("phi", [0.0, 0.9])
def test_stationary_lp_has_calibrated_drift_zscore(phi):
    # 300 independent stationary runs of 4 chains: z should be close to N(0, 1) (sd inflated
    # by ~8 % at phi = 0.9 where 50-draw batches are 2.6 autocorrelation times), never > 4
    lp = ar1(np.random.default_rng(5), phi, (300 * 4, 1000)).reshape(300, 4, 1000)
    z = np.array([lp_drift_zscore(run) for run in lp])
    assert np.all(np.abs(z) < DRIFT_Z_THRESHOLD)
    assert 0.85 < z.std() < 1.25 and abs(z.mean()) < 0.25


def test_stationary_autocorrelated_lp_has_no_drift_item(iid):
    lp = ar1(np.random.default_rng(6), 0.9, (4, 1000))
    assert convergence_checks(make_result(iid, lp=lp)) == []


def test_drift_check_needs_100_draws():
    assert np.isnan(lp_drift_zscore(np.arange(4 * 99.0).reshape(4, 99)))
    assert np.isfinite(lp_drift_zscore(np.random.default_rng(0).standard_normal((4, 100))))


def test_nan_chain_does_not_crash_and_is_left_out(iid):
    draws = iid.copy()
    draws[0, :, 1] += 2.0  # an R-hat problem among the finite chains
    draws[2, 300:] = np.nan
    lp = -0.5 * np.sum(draws**2, axis=2)
    diverging = np.zeros((4, 1000), dtype=bool)
    diverging[2, 300:] = True
    found = convergence_checks(make_result(draws, lp=lp, diverging=diverging))
    assert kinds(found) == ["rhat", "ess", "divergences"]
    for item in found[:2]:
        assert item.variables == (1,) and item.chains == (0, 1, 3)
        assert "left out chain(s) 2" in item.message
    assert found[2].values == (700,) and found[2].chains == (2,)


def test_only_one_finite_chain_or_none(iid):
    draws = iid.copy()
    draws[1:] = np.nan
    diverging = np.zeros((4, 1000), dtype=bool)
    diverging[1:] = True
    found = convergence_checks(make_result(draws, diverging=diverging))
    assert kinds(found) == ["rhat", "divergences"]
    assert found[0].level == "info" and "chain 0" in found[0].message
    assert found[1].values == (3000,)

    draws[:] = np.nan
    diverging[:] = True
    found = convergence_checks(make_result(draws, diverging=diverging))
    assert kinds(found) == ["rhat", "divergences"] and found[0].level == "info"


def test_single_chain_skips_rhat_but_checks_ess(iid):
    found = convergence_checks(make_result(iid[:1]))
    assert kinds(found) == ["rhat"] and found[0].level == "info"
    assert "Only one chain" in found[0].message
    slow = ar1(np.random.default_rng(7), 0.99, (1, 1000, 2))
    lp = np.random.default_rng(8).standard_normal((1, 1000))
    found = convergence_checks(make_result(slow, lp=lp))
    assert kinds(found) == ["rhat", "ess"] and found[1].chains == (0,)


def test_constant_coordinate_is_flagged(iid):
    draws = iid.copy()
    draws[:, :, 4] = 1.0
    found = convergence_checks(make_result(draws, lp=np.zeros((4, 1000))))
    # R-hat is undefined (0/0) and flagged; ArviZ reports ESS = all draws for a constant
    assert kinds(found) == ["rhat"]
    assert found[0].variables == (4,) and np.isnan(found[0].values[0])


def test_thresholds(iid):
    result = make_result(iid)
    # i.i.d. draws have total ESS ~ 4000, i.e. ~1000 per chain
    found = result.diagnostics(min_ess_per_chain=2000)
    assert kinds(found) == ["ess"] and len(found[0].variables) == 5
    assert kinds(result.diagnostics(rhat_threshold=1.0000001)) == ["rhat"]
    with pytest.raises(ValueError, match="rhat_threshold"):
        convergence_checks(result, rhat_threshold=1.0)
    with pytest.raises(ValueError, match="min_ess_per_chain"):
        convergence_checks(result, min_ess_per_chain=-1)


def test_warn_convergence_emits_one_warning_with_every_message(iid):
    draws = iid.copy()
    draws[1, :, 3] += 2.0
    diverging = np.zeros((4, 1000), dtype=bool)
    diverging[0, 900:] = True
    result = make_result(draws, lp=np.zeros((4, 1000)), diverging=diverging,
                         attrs={"warmup_converged": False, "warmup_note": "tuning stopped early"})
    found = convergence_checks(result)
    assert kinds(found) == ["rhat", "ess", "divergences", "warmup"]
    with pytest.warns(RuntimeWarning) as record:
        warn_convergence(found)
    assert len(record) == 1
    text = str(record[0].message)
    assert "4 problem(s)" in text
    for item in found:
        assert item.message in text


def test_warn_convergence_silent_when_empty():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warn_convergence([])
    assert record == []


def test_diagnostic_record():
    item = Diagnostic("ess", "low ESS", variables=(1,), values=(12.0,))
    assert item.chains == () and item.level == "warn"
    assert item._replace(level="info").level == "info"


def test_large_dimension_checks_an_evenly_spaced_subset_and_maps_names_back():
    rng = np.random.default_rng(3)
    draws = rng.standard_normal((4, 400, 3000))
    draws[0, :, 2999] += 3.0  # one bad coordinate, the last: inside the evenly spaced subset
    found = make_result(draws).diagnostics(max_coordinates=100)
    coverage = [d for d in found if d.kind == "coverage"]
    assert coverage and "100 of 3000" in coverage[0].message and coverage[0].level == "info"
    rhat = [d for d in found if d.kind == "rhat"]
    assert rhat and rhat[0].variables[0] == 2999


# --- the check functions one by one, on constructed arrays ------------------------------


def test_check_rhat_flags_the_shifted_coordinates_worst_first():
    draws = np.random.default_rng(10).standard_normal((4, 500, 4))
    draws[2, :, 0] += 1.0
    draws[2, :, 2] += 4.0  # further from the others: larger R-hat, listed first
    draws[:, :, 3] = 0.5  # constant: R-hat is 0/0, flagged as the worst
    columns = np.array([7, 11, 13, 17])
    labels = [f"y[{i}]" for i in range(18)]
    found = _check_rhat(draws, (0, 1, 2, 3), 4, 1.01, columns, labels)
    assert len(found) == 1
    item = found[0]
    assert (item.kind, item.level, item.chains) == ("rhat", "warn", (0, 1, 2, 3))
    # run indices (columns), not positions in draws; coordinate 1 (iid) is not flagged
    assert item.variables == (17, 13, 7)
    assert np.isnan(item.values[0]) and item.values[1] > item.values[2] > 1.05
    assert "for 3 of 4 coordinates" in item.message and "y[13] = " in item.message
    assert "left out" not in item.message


def test_check_rhat_passes_iid_chains():
    draws = np.random.default_rng(11).standard_normal((4, 1000, 3))
    assert _check_rhat(draws, (0, 1, 2, 3), 4, 1.01, np.arange(3)) == []


def test_check_rhat_names_left_out_chains():
    draws = np.random.default_rng(12).standard_normal((3, 500, 2))
    draws[0, :, 1] += 3.0
    (item,) = _check_rhat(draws, (0, 1, 3), 4, 1.01, np.arange(2))
    assert item.variables == (1,) and item.chains == (0, 1, 3)
    assert "(computed on chains 0, 1, 3; left out chain(s) 2 with non-finite draws)" \
        in item.message


def test_check_rhat_needs_two_chains():
    draws = np.random.default_rng(13).standard_normal((1, 100, 2))
    (item,) = _check_rhat(draws, (0,), 1, 1.01, np.arange(2))
    assert item.level == "info" and item.chains == (0,)
    assert item.message.startswith("Only one chain was sampled: R-hat needs")
    (item,) = _check_rhat(draws, (2,), 3, 1.01, np.arange(2))
    assert item.message.startswith("Only one chain (chain 2) has finite draws")


def test_check_ess_flags_only_the_autocorrelated_coordinate():
    chains, n, phi = 4, 1000, 0.95
    draws = np.empty((chains, n, 2))
    draws[:, :, 0] = np.random.default_rng(14).standard_normal((chains, n))
    draws[:, :, 1] = ar1(np.random.default_rng(15), phi, (chains, n))
    (item,) = _check_ess(draws, (0, 1, 2, 3), 4, 100, np.array([3, 8]))
    assert (item.kind, item.variables, item.chains) == ("ess", (8,), (0, 1, 2, 3))
    # AR(1): tau = (1 + phi) / (1 - phi) = 39, total ESS = 4000 / 39 = 103 (26 per chain);
    # the estimate's relative sd is ~0.2 for one coordinate (Sokal 1997)
    expected = chains * n * (1 - phi) / (1 + phi)
    assert 0.5 * expected < item.values[0] < 1.5 * expected
    assert "total over 4 chain(s)" in item.message and "x[8] = " in item.message


def test_check_ess_threshold_is_per_chain_used():
    # two iid chains of 1000 draws: total bulk ESS ~ 2000, ~1000 per chain used
    draws = np.random.default_rng(16).standard_normal((2, 1000, 3))
    assert _check_ess(draws, (0, 2), 3, 700, np.arange(3)) == []
    (item,) = _check_ess(draws, (0, 2), 3, 1400, np.arange(3))
    assert sorted(item.variables) == [0, 1, 2] and item.chains == (0, 2)
    assert list(item.values) == sorted(item.values)  # smallest first
    assert all(1400 < v < 2800 for v in item.values)
    assert "left out chain(s) 1" in item.message


def test_check_divergences_counts_draws_and_names_chains():
    diverging = np.zeros((4, 50), dtype=bool)
    assert _check_divergences(diverging) == []
    diverging[1, 5:10] = True
    diverging[3, 0] = True
    (item,) = _check_divergences(diverging)
    assert (item.kind, item.values, item.chains) == ("divergences", (6,), (1, 3))
    assert item.message.startswith("6 draw(s) after warmup were flagged diverging, in 2 of "
                                   "4 chain(s) (chains: 1, 3): the chain's energy jumped")


def test_check_warmup_converged_reads_attrs():
    assert _check_warmup_converged({}) == []
    assert _check_warmup_converged({"warmup_converged": True, "warmup_note": "x"}) == []
    (item,) = _check_warmup_converged({"warmup_converged": False, "warmup_note": "  slow \n"})
    assert item == Diagnostic("warmup", "Warmup reported that it did not converge: slow")
    (item,) = _check_warmup_converged({"warmup_converged": False, "warmup_note": None})
    assert item.message == "Warmup reported that it did not converge."


def test_check_lp_drift_flags_a_step_on_the_usable_chains():
    lp = np.random.default_rng(17).standard_normal((4, 1000))
    assert _check_lp_drift(lp, (0, 1, 2, 3)) == []  # stationary
    lp[:, :100] -= 1.0  # z = 1 / sqrt((1/100 + 1/500) / 4) = 18 > DRIFT_Z_THRESHOLD
    lp[2, 700] = np.nan  # chain 2's lp is not finite: left out
    (item,) = _check_lp_drift(lp, (0, 1, 2))  # chain 3 has non-finite draws: not passed
    used = [0, 1]
    z = lp_drift_zscore(lp[used])
    assert (item.kind, item.chains, item.values) == ("warmup", (0, 1), (z,))
    assert 8 < z < 30
    early, late = lp[used, :100].mean(), lp[used, 500:].mean()
    assert item.message.startswith(f"The log density rose from {early:.4g} (mean of the "
                                   f"first 10 % of the draws) to {late:.4g}")
    assert f"z = {z:.1f} over chain(s) 0, 1:" in item.message
    assert _check_lp_drift(-lp, (0, 1))[0].message.startswith("The log density fell")
    assert _check_lp_drift(lp, ()) == [] and _check_lp_drift(lp, (2,)) == []


def test_check_coverage_and_rhat_ess_possible_info_items():
    assert _check_coverage(5, 5) == []
    (item,) = _check_coverage(100, 3000)
    assert (item.kind, item.level) == ("coverage", "info")
    assert item.message.startswith("R-hat and ESS computed on 100 of 3000 coordinates")
    assert _check_rhat_ess_possible(4, (0,)) == []
    (item,) = _check_rhat_ess_possible(3, (0, 1))
    assert item == Diagnostic("rhat", "R-hat and ESS not computed: fewer than 4 draws.",
                              level="info")
    (item,) = _check_rhat_ess_possible(10, ())
    assert item.message == "R-hat and ESS not computed: no chain has all draws finite."


def test_coordinate_subset_finite_chains_and_left_out_note():
    assert _coordinate_subset(10, 4).tolist() == [0, 3, 6, 9]
    assert _coordinate_subset(10, None).tolist() == list(range(10))
    assert _coordinate_subset(10, 10).tolist() == list(range(10))
    subset = _coordinate_subset(3000, 100)
    assert subset.size == 100 and subset[0] == 0 and subset[-1] == 2999
    assert np.all(np.diff(subset) > 0)
    posterior = np.zeros((4, 3, 2))
    posterior[1, 2, 0] = np.nan
    posterior[3, 0, 1] = np.inf
    assert _finite_chains(posterior) == (0, 2)
    assert _left_out_note((0, 2), 4) == (" (computed on chains 0, 2; left out chain(s) 1, 3 "
                                         "with non-finite draws)")
    assert _left_out_note((0, 1), 2) == ""


def test_convergence_checks_concatenates_the_checks_in_order():
    rng = np.random.default_rng(18)
    draws = rng.standard_normal((4, 400, 30))
    draws[1, :, 0] += 3.0
    lp = rng.standard_normal((4, 400))
    lp[:, :40] -= 2.0
    diverging = np.zeros((4, 400), dtype=bool)
    diverging[2, 7] = True
    attrs = {"warmup_converged": False, "warmup_note": "n"}
    found = convergence_checks(make_result(draws, lp=lp, diverging=diverging, attrs=attrs),
                               max_coordinates=10)
    columns = _coordinate_subset(30, 10)
    chains = (0, 1, 2, 3)
    expected = (_check_coverage(10, 30)
                + _check_rhat(draws[:, :, columns], chains, 4, 1.01, columns)
                + _check_ess(draws[:, :, columns], chains, 4, 100, columns)
                + _check_divergences(diverging) + _check_warmup_converged(attrs)
                + _check_lp_drift(lp, chains))
    assert kinds(found) == ["coverage", "rhat", "ess", "divergences", "warmup", "warmup"]
    assert repr(found) == repr(expected)
