"""Picard-parallel diffusion sampling against the sequential sampler and exact laws."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lcsample.diffusion as diffusion
from lcsample.diffusion.picard import plan_windows
from lcsample.metrics import mode_weights

MU = np.array([1.0, -2.0, 0.5])
S2 = np.array([0.5, 2.0, 0.1])  # data N(MU, diag(S2)): L = 1/0.1 = 10


def score(x, t):
    """Exact ∇log p_t of N(MU, diag(S2)) data, row-wise."""
    a = np.exp(-t)[:, None]
    return -(x - a * MU) / (a**2 * S2 + 1 - a**2)


COMBINATIONS = [
    ("rm", None, 1),
    ("rm", "uld", 4),
    ("rm", "uld-rm", "end"),
    ("exp-euler", "uld", 1),
    ("ddim", "uld-rm", 3),
    ("ddpm", None, 1),
    ("heun", "uld", "end"),
    ("dpm-pc", None, 1),
    ("dpm-pc", "uld", 4),
]


@pytest.mark.parametrize("predictor,corrector,every", COMBINATIONS)
def test_converged_parallel_run_is_the_sequential_run(predictor, corrector, every):
    # all random numbers of a window are drawn once and replayed, so with tolerance 0 the
    # Picard fixed point is the sequential run itself, draw for draw
    kw = dict(dim=3, num_samples=20, predictor=predictor, corrector=corrector,
              corrector_every=every, steps=12, seed=11, progressbar=False)
    x_seq, info_seq = diffusion.sample(score, **kw)
    x_par, info = diffusion.sample(score, picard_steps=5, tolerance=0.0, **kw)
    np.testing.assert_allclose(x_par, x_seq, rtol=0, atol=1e-10)
    assert info["converged"] and all(w["converged"] for w in info["windows"])
    assert info["rounds"] == 1 + info["window_rounds"].sum()
    kinds = [w["kind"] for w in info["windows"]]
    assert kinds.count("correct") == (0 if corrector is None else
                                       1 if every == "end" else 12 // every)
    # a small tolerance gives the sequential result to about that tolerance
    x_tol, info_tol = diffusion.sample(score, picard_steps=5, tolerance=1e-8, **kw)
    np.testing.assert_allclose(x_tol, x_seq, rtol=0, atol=1e-6)
    assert info_tol["rounds"] <= info["rounds"]


def test_jitted_score_parallel_matches_the_compiled_sequential_loop():
    gm = diffusion.two_modes(4)
    kw = dict(dim=4, num_samples=8, steps=10, seed=5, progressbar=False, method="rm-uld")
    x_seq, _ = diffusion.sample(gm.score_kernel, score_args=gm.score_args, **kw)
    x_par, info = diffusion.sample(gm.score_kernel, score_args=gm.score_args, picard_steps=4,
                                   tolerance=0.0, **kw)
    np.testing.assert_allclose(x_par, x_seq, rtol=0, atol=1e-10)
    assert info["converged"]


def test_one_point_one_round_is_paper_algorithm_1():
    # docs/theory.md §11: R = 1, K = 1 with the exponential-integrator initialisation is
    # exactly one step of Algorithm 1
    ts = np.array([1.0, 0.8])
    x0 = np.random.default_rng(0).standard_normal((50, 3))
    kw = dict(dim=3, num_samples=50, predictor="rm", corrector=None, ts=ts, x_init=x0, seed=2,
              progressbar=False)
    x_seq, _ = diffusion.sample(score, **kw)
    x_par, info = diffusion.sample(score, picard_steps=1, max_rounds=1, **kw)
    assert np.array_equal(x_par, x_seq)
    assert info["rounds"] == 2 and info["window_rounds"].tolist() == [1]
    # by hand: x_mid = e^{αh}x + (e^{αh} - 1)s_1(x), x' = e^h x + h e^{(1-α)h} s_{1-αh}(x_mid)
    alpha = np.array([rng.random() for rng in diffusion.sampler._streams(2, 0, 50)])[:, None]
    h = 0.2
    x_mid = np.exp(alpha * h) * x0 + np.expm1(alpha * h) * score(x0, np.full(50, 1.0))
    by_hand = np.exp(h) * x0 + h * np.exp((1 - alpha) * h) * score(x_mid, 1.0 - alpha[:, 0] * h)
    np.testing.assert_allclose(x_par, by_hand, rtol=1e-14, atol=1e-14)


def test_picard_residuals_decay_geometrically_on_a_short_window():
    # window H = 1/(2L) = 0.05 split into R = 8 stratified cells: the Picard map contracts
    # by about L·H·e^H ≈ 0.5 or better per round; measured: ~100× per round
    L = 1.0 / S2.min()
    H = 1.0 / (2.0 * L)
    ts = np.linspace(1.0, 1.0 - H, 9)
    _, info = diffusion.sample(score, dim=3, num_samples=200, ts=ts, predictor="rm",
                               picard_steps=8, tolerance=1e-14, seed=4, progressbar=False)
    r = np.array(info["windows"][0]["residuals"])
    r = r[r > 1e-13]  # before round-off
    assert len(r) >= 3
    assert np.all(r[1:] / r[:-1] < 0.1)


def test_samples_do_not_depend_on_the_batch():
    kw = dict(dim=3, predictor="rm", corrector="uld", corrector_every=3, steps=9, seed=8,
              picard_steps=3, tolerance=1e-3, progressbar=False)
    whole, _ = diffusion.sample(score, num_samples=6, **kw)
    parts = [diffusion.sample(score, num_samples=k, first_sample=i, **kw)[0]
             for i, k in ((0, 2), (2, 1), (3, 3))]
    np.testing.assert_array_equal(whole, np.concatenate(parts))


def test_max_rounds_cap_is_reported_not_hidden():
    with pytest.warns(RuntimeWarning, match=r"max_rounds=2 before tolerance=0.0 in 1 window"
                                            r"\(s\), for 10 sample\(s\)"):
        _, info = diffusion.sample(score, dim=3, num_samples=10, steps=16, predictor="rm",
                                   picard_steps=16, tolerance=0.0, max_rounds=2, seed=1,
                                   progressbar=False)
    assert not info["converged"]
    w = info["windows"][0]
    assert w["rounds"] == 2 and not w["converged"] and w["unconverged_samples"] == 10


def test_plan_windows_end_at_correctors():
    assert plan_windows(10, 4) == [("predict", 0, 4), ("predict", 4, 8), ("predict", 8, 10)]
    assert plan_windows(10, 4, corrector_every=5) == [
        ("predict", 0, 4), ("predict", 4, 5), ("correct", 5),
        ("predict", 5, 9), ("predict", 9, 10), ("correct", 10)]


@settings(max_examples=60, deadline=None)
@given(steps=st.integers(1, 40), parallel=st.integers(1, 12),
       every=st.one_of(st.none(), st.integers(1, 15)))
def test_windows_cover_the_grid_once_in_order(steps, parallel, every):
    windows = plan_windows(steps, parallel, every)
    covered = [i for w in windows if w[0] == "predict" for i in range(w[1], w[2])]
    assert covered == list(range(steps))
    assert all(0 < w[2] - w[1] <= parallel for w in windows if w[0] == "predict")
    corrections = [w[1] for w in windows if w[0] == "correct"]
    assert corrections == ([] if every is None else list(range(every, steps + 1, every)))
    # a corrector follows the window that ends at its step, and no window crosses one
    for a, b in zip(windows, windows[1:], strict=False):
        if b[0] == "correct":
            assert a[0] == "predict" and a[2] == b[1]
        if every is not None and a[0] == "predict":
            assert (a[1] // every) == ((a[2] - 1) // every)


@pytest.mark.parametrize("preset", ["two_modes", "grid_mixture"])
def test_parallel_sampler_is_as_accurate_as_the_sequential_one_on_a_mixture(preset):
    # GMM presets (two modes 0.3 / 0.7; a 25-mode grid): the parallel sampler at its
    # default tolerance reproduces the sequential sampler's samples to ~1e-3 and both
    # put the exact weights within Monte Carlo error
    gm = getattr(diffusion, preset)(8)
    kw = dict(dim=8, num_samples=4000, steps=30, seed=21, predictor="rm", progressbar=False)
    x_seq, info_seq = diffusion.sample(gm.score, **kw)
    x_par, info = diffusion.sample(gm.score, picard_steps=6, **kw)
    # the parallel run equals its sequential counterpart to the tolerance's scale, in
    # fewer rounds (measured 32 and 29 of 60: the first windows, long steps at high
    # noise, need about one round per score call; the later ones converge in a few)
    assert np.sqrt(np.mean((x_par - x_seq) ** 2)) < 1e-2
    assert info["rounds"] < 0.6 * info_seq["rounds"]
    for x in (x_seq, x_par):
        mw = mode_weights(gm.mode_assign(x), gm.weights)
        assert np.all(np.abs(mw.estimated - gm.weights) < 4.5 * mw.standard_errors)


@pytest.mark.parametrize("kwargs,name", [
    ({"picard_steps": 0}, "picard_steps"),
    ({"picard_steps": 2.5}, "picard_steps"),
    ({"picard_steps": 2, "tolerance": -1.0}, "tolerance"),
    ({"picard_steps": 2, "tolerance": float("nan")}, "tolerance"),
    ({"picard_steps": 2, "max_rounds": 0}, "max_rounds"),
    ({"picard_steps": 2, "callback": lambda *a: None}, "callback"),
    ({"corrector_every": "sometimes"}, "corrector_every"),
])
def test_bad_parallel_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        diffusion.sample(score, dim=3, num_samples=2, steps=4, progressbar=False, **kwargs)
