"""Diffusion sampling on torch tensors against the NumPy run and the exact Gaussian law.

The score is written in torch (real tensors, no NumPy inside), for Gaussian data
N(MU, diag(S2)) whose smallest variance makes the last levels stiff. Given a seed, the
samples' random numbers are the NumPy run's, so float64 on the CPU must reproduce it to
round-off; float32 within the tolerance the docs state.
"""

import numpy as np
import pytest

import lcsample.diffusion as diffusion

torch = pytest.importorskip("torch", reason="the [torch] extra is not installed")

MU = np.array([0.5, -1.0, 2.0, 0.0])
S2 = np.array([1.0, 0.1, 1e-2, 1e-3])  # data variances: condition number 1e3
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]


def numpy_score(x, t):
    a = np.exp(-t)[:, None]
    return -(x - a * MU) / (a**2 * S2 - np.expm1(-2 * t)[:, None])


def torch_score(x, t):
    """The same score in torch, on x's device and dtype."""
    mu, s2 = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (MU, S2))
    a = torch.exp(-t)[:, None]
    return -(x - a * mu) / (a**2 * s2 - torch.expm1(-2 * t)[:, None])


def exact_variance(t):
    """Var of p_t per coordinate: α² S2 + σ²."""
    return np.exp(-2 * t) * S2 - np.expm1(-2 * t)


SETTINGS = [
    {"predictor": "rm"}, {"predictor": "ddim"}, {"predictor": "heun"},
    {"predictor": "ddpm", "steps": 60}, {"predictor": "exp-euler"},
    {"method": "rm-uld"}, {"corrector": "uld-rm", "steps": 20},
    {"picard_steps": 5}, {"method": "rm-uld", "picard_steps": 4},
    {"predictor": "ddim", "denoise": True},
]


@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda k: "-".join(map(str, k.values())))
def test_float64_on_cpu_reproduces_the_numpy_samples(kwargs):
    """Same seed, same noise: the torch run is the NumPy run (and the kernels' corrector)."""
    common = dict(dim=4, num_samples=64, seed=11, progressbar=False, **kwargs)
    x_np, info_np = diffusion.sample(numpy_score, **common)
    x_t, info_t = diffusion.sample(torch_score, dtype=torch.float64, **common)
    assert isinstance(x_t, torch.Tensor) and x_t.dtype == torch.float64
    np.testing.assert_allclose(x_t.numpy(), x_np, rtol=0, atol=1e-10)
    assert info_t["nfe"] == info_np["nfe"] and info_t["rounds"] == info_np["rounds"]


@pytest.mark.parametrize("kwargs", [{"predictor": "ddim"}, {"method": "rm-uld"},
                                    {"picard_steps": 5}])
def test_float32_stays_within_its_documented_tolerance(kwargs):
    """docs/diffusion.md: float32 samples within 1e-5 · (1 + |x|) of float64's, same noise.

    Measured: at most 7.2e-7 (rm-uld), 4.3e-7 (ddim), 5.3e-7 (Picard) on this target.
    """
    common = dict(dim=4, num_samples=256, seed=2, progressbar=False, **kwargs)
    x64, _ = diffusion.sample(torch_score, dtype=torch.float64, **common)
    x32, _ = diffusion.sample(torch_score, device="cpu", **common)
    assert x32.dtype == torch.float32
    gap = (x32.double() - x64).abs() / (1 + x64.abs())
    assert gap.max().item() < 1e-5


@pytest.mark.parametrize("device", DEVICES)
def test_the_law_on_a_device_matches_the_exact_gaussian(device):
    """float32 on the device, default sampler: means and variances (the stiffest
    included) of p_{t_min}.

    The default predictor's own bias on this grid (50 log-SNR steps, its linear map on
    this Gaussian against the exact flow's, computed exactly) is -0.037 % in variance in
    every direction; allowed: 4.5 standard errors plus 0.1 %.
    """
    n = 20_000
    x, info = diffusion.sample(torch_score, dim=4, num_samples=n, seed=5, device=device,
                               progressbar=False)
    assert x.device.type == device and x.dtype == torch.float32
    x = x.double().cpu().numpy()
    t_end = info["ts"][-1]
    v = exact_variance(t_end)
    assert np.all(np.abs(x.mean(0) - np.exp(-t_end) * MU) < 4.5 * np.sqrt(v / n))
    assert np.all(np.abs(x.var(0) / v - 1) < 4.5 * np.sqrt(2 / n) + 0.001)


@pytest.mark.parametrize("device", DEVICES)
def test_a_sample_is_the_same_whatever_its_batch(device):
    """Sample i's stream is its own: drawn in a batch of 40 or as rows 10..19 alone."""
    common = dict(dim=4, seed=3, device=device, method="rm-uld", progressbar=False)
    whole, _ = diffusion.sample(torch_score, num_samples=40, **common)
    part, _ = diffusion.sample(torch_score, num_samples=10, first_sample=10, **common)
    assert torch.equal(whole[10:20], part)


def test_x_init_tensor_sets_device_and_dtype_and_is_not_modified():
    x0 = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    keep = x0.clone()
    x, _ = diffusion.sample(torch_score, dim=4, num_samples=8, x_init=x0, seed=0,
                            predictor="ddim", progressbar=False)
    assert x.dtype == torch.float64 and torch.equal(x0, keep)
    x_np, _ = diffusion.sample(numpy_score, dim=4, num_samples=8, x_init=x0.numpy(), seed=0,
                               predictor="ddim", progressbar=False)
    np.testing.assert_allclose(x.numpy(), x_np, atol=1e-12)


def test_the_score_sees_tensors_on_the_device_only():
    seen = []

    def score(x, t):
        seen.append((type(x), type(t), x.dtype, t.dtype, t.shape))
        return torch_score(x, t)

    diffusion.sample(score, dim=4, num_samples=3, steps=6, grid="karras", predictor="heun",
                     seed=0, device="cpu", progressbar=False)
    assert set(seen) == {(torch.Tensor, torch.Tensor, torch.float32, torch.float32, (3,))}


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_adapters_wrap_a_diffusers_style_unet_and_an_edm_denoiser(prediction):
    """Toy image models (shape (1, 2, 2)) that return the exact ε (or v) and x̂₀."""
    betas = np.linspace(1e-4, 0.02, 1000)
    abar = np.cumprod(1 - betas)

    class Scheduler:  # diffusers' schedulers carry these two
        alphas_cumprod = torch.as_tensor(abar, dtype=torch.float32)

        class config:
            prediction_type = prediction

    schedule = diffusion.DiscreteSchedule(abar)

    class Output:
        def __init__(self, sample):
            self.sample = sample

    class UNet(torch.nn.Module):
        def forward(self, sample, timestep):
            assert sample.shape[1:] == (1, 2, 2) and timestep.shape == sample.shape[:1]
            x = sample.reshape(len(sample), 4)
            t = schedule.time(timestep)
            a, sig = torch.exp(-t)[:, None], torch.sqrt(-torch.expm1(-2 * t))[:, None]
            eps = -sig * torch_score(x, t)
            out = eps if prediction == "epsilon" else a * eps - sig * (x - sig * eps) / a
            return Output(out.reshape(sample.shape))

    def denoiser(x_ve, sigma):  # E[X0 | X0 + σZ = x̃] for the Gaussian data
        mu, s2 = (torch.as_tensor(v, dtype=x_ve.dtype) for v in (MU, S2))
        flat = x_ve.reshape(len(x_ve), 4)
        return (mu + s2 / (s2 + sigma[:, None] ** 2) * (flat - mu)).reshape(x_ve.shape)

    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0.05, 3.0, 6, dtype=torch.float64)
    expected = numpy_score(x.numpy(), t.numpy())
    unet = diffusion.score_from_unet(UNet(), Scheduler(), (1, 2, 2))
    # float64 round-off through the time <-> timestep map, amplified by v's 1/α at t = 3
    # (α = 0.05): a small score coordinate beside large ones differs by up to 5e-9
    np.testing.assert_allclose(unet(x, t).numpy(), expected, rtol=1e-7,
                               atol=1e-9 * np.abs(expected).max())
    edm = diffusion.score_from_denoiser(denoiser, sample_shape=(1, 2, 2))
    np.testing.assert_allclose(edm(x, t).numpy(), expected, rtol=1e-10)


def test_discrete_schedule_on_tensors_matches_numpy():
    schedule = diffusion.DiscreteSchedule(np.cumprod(1 - np.linspace(1e-4, 0.02, 1000)))
    t = np.array([1e-3, 0.01, 0.3, 1.7, 4.0, 9.0])  # 9.0 is beyond the schedule: clamped
    index = schedule.index(torch.as_tensor(t))
    np.testing.assert_allclose(index.numpy(), schedule.index(t), rtol=1e-12, atol=1e-9)
    back = schedule.time(torch.as_tensor(schedule.index(t)))
    np.testing.assert_allclose(back.numpy(), schedule.time(schedule.index(t)), rtol=1e-12)


def test_bad_torch_settings_are_refused_by_name():
    common = dict(dim=4, num_samples=2, progressbar=False)
    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.float64"):
        diffusion.sample(torch_score, dtype=torch.float16, **common)
    with pytest.raises(ValueError, match="device"):
        diffusion.sample(torch_score, device="no-such-device", **common)
    with pytest.raises(ValueError, match="must return a torch.Tensor"):
        diffusion.sample(lambda x, t: numpy_score(x.numpy(), t.numpy()), device="cpu", **common)
    with pytest.raises(ValueError, match="numba-jitted score runs on NumPy"):
        mixture = diffusion.grid_mixture(4)
        diffusion.sample(mixture.score_kernel, score_args=mixture.score_args, device="cpu",
                         **common)
    with pytest.raises(ValueError, match="x_init must be finite"):
        diffusion.sample(torch_score, x_init=torch.full((2, 4), float("nan")), **common)


@pytest.mark.parametrize("picard", [None, 4])
def test_a_non_finite_score_names_its_sample(picard):
    def flagged(x, t):  # NaN for the rows of the marked sample, wherever they are
        out = torch_score(x, t)
        out[x[:, 3].abs() > 1e6] = float("nan")
        return out

    x0 = torch.zeros(20, 4, dtype=torch.float64)
    x0[13, 3] = 1e7  # sample 13 is the one whose score turns NaN
    with pytest.raises(ValueError, match="for sample 113 "):
        diffusion.sample(flagged, dim=4, num_samples=20, x_init=x0, first_sample=100,
                         picard_steps=picard, seed=0, progressbar=False)
