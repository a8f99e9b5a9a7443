"""A small trained diffusion model of scikit-learn's 8×8 digits: architecture, data, loading.

The model is a k-diffusion / EDM denoiser (Karras, Aittala, Aila & Laine 2022, "Elucidating
the design space of diffusion-based generative models") in variance-exploding coordinates:
given x̃ = x₀ + σ ε (ε ~ N(0, I)) it returns x̂₀ = D(x̃, σ) ≈ E[x₀ | x̃]. Its weights,
``tests/data/digits_denoiser.safetensors`` (float32, the architecture in the file's
metadata), are made by ``python benchmarks/train_digits.py``, which records how in
``tests/data/digits_denoiser.json``; ``benchmarks/digits_picture.py`` draws
``docs/images/digits_samples.png``.

Data
----
scikit-learn's ``load_digits``: 1,797 grey 8×8 images (d = 64) of the digits 0-9 with
integer pixels 0..16 (UCI "Optical Recognition of Handwritten Digits", shipped with
scikit-learn, no download). The model works in x = pixel/8 - 1 ∈ [-1, 1]
(:func:`to_model_scale`; :func:`to_pixels` is the inverse, clipped to 0..16 for
pictures). :func:`digits_split` fixes a random permutation (seed 0): 1,500 training
images, 297 held out.

Preconditioning (EDM, Table 1), with σ_data = :data:`SIGMA_DATA`::

    D(x̃, σ) = c_skip(σ) x̃ + c_out(σ) F(c_in(σ) x̃, c_noise(σ))
    c_skip = σ_data² / (σ² + σ_data²)      c_out = σ σ_data / √(σ² + σ_data²)
    c_in   = 1 / √(σ² + σ_data²)           c_noise = ¼ ln σ

F is a residual MLP: x → Linear(64, H) plus the noise embedding, ``blocks`` residual
blocks h ← h + W₂ SiLU(W₁ LayerNorm(h) + A e(σ)), then LayerNorm, SiLU, Linear(H, 64);
e(σ) = MLP(sin/cos of c_noise at fixed geometric frequencies). The EDM training loss
(``train_digits.py``) is E λ(σ) ||D(x₀ + σε, σ) - x₀||² with λ = (σ² + σ_data²)/(σ σ_data)²
and ln σ ~ N(P_mean, P_std²).

With lcsample (OU time t, x = α_t x₀ + σ_t z, σ_VE = √(e^{2t} - 1)), the score is
``lcsample.diffusion.score_from_denoiser(model)``, on the model's own tensors:
:func:`draw` samples on the model's device and in its dtype, with the settings
``train_digits.py`` evaluates.
"""

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["DEFAULT_WEIGHTS", "DigitsDenoiser", "SAMPLER", "SIGMA_DATA", "digits_split", "draw",
           "load_denoiser", "to_model_scale", "to_pixels"]

REPO = Path(__file__).resolve().parent.parent
#: The committed weights.
DEFAULT_WEIGHTS = REPO / "tests" / "data" / "digits_denoiser.safetensors"
#: σ_data of the preconditioning: the standard deviation of all training pixel values in
#: model scale (0.752), rounded.
SIGMA_DATA = 0.75
#: The sampler of the evaluation and the picture (lcsample.diffusion.sample arguments;
#: t_max and t_min are EDM's σ_max = 80 and σ_min = 0.002 as OU times).
SAMPLER = {"predictor": "heun", "grid": "karras", "steps": 40, "sigma_max": 80.0,
           "sigma_min": 0.002, "denoise": True}
_N_TRAIN, _N_FREQ = 1500, 16


def to_model_scale(pixels):
    """Digits pixels 0..16 → model scale x = pixel/8 - 1 ∈ [-1, 1] (float64, same shape)."""
    return np.asarray(pixels, dtype=np.float64) / 8.0 - 1.0


def to_pixels(x):
    """Model scale → pixels 0..16 (the inverse of :func:`to_model_scale`), clipped."""
    return np.clip(8.0 * (np.asarray(x, dtype=np.float64) + 1.0), 0.0, 16.0)


def digits_split(seed=0, n_train=_N_TRAIN):
    """The digits in model scale, split by a fixed permutation into training and held-out sets.

    Parameters
    ----------
    seed : int
        Seed of the permutation (``numpy.random.default_rng(seed).permutation(1797)``).
    n_train : int
        Training images; the remaining 1,797 - n_train are held out.

    Returns
    -------
    train : ndarray, shape (n_train, 64), float64
    held_out : ndarray, shape (1797 - n_train, 64), float64
    """
    from sklearn.datasets import load_digits

    x = to_model_scale(load_digits().data)
    order = np.random.default_rng(seed).permutation(x.shape[0])
    return x[order[:n_train]].copy(), x[order[n_train:]].copy()


class _Block(nn.Module):
    """h ← h + W₂ SiLU(W₁ LayerNorm(h) + A e)."""

    def __init__(self, hidden, emb, dropout):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.lin1 = nn.Linear(hidden, hidden)
        self.emb = nn.Linear(emb, hidden)
        self.lin2 = nn.Linear(hidden, hidden)
        nn.init.zeros_(self.lin2.weight)
        nn.init.zeros_(self.lin2.bias)

    def forward(self, h, e):
        return h + self.lin2(self.drop(nn.functional.silu(self.lin1(self.norm(h)) + self.emb(e))))


class DigitsDenoiser(nn.Module):
    """EDM-preconditioned MLP denoiser D(x̃, σ) for flattened 8×8 digits.

    Parameters
    ----------
    dim : int
        Data dimension (64).
    hidden : int
        Width H of the residual stream.
    blocks : int
        Residual blocks.
    emb : int
        Width of the noise-level embedding.
    sigma_data : float
        σ_data of the preconditioning.
    dropout : float
        Dropout in the residual blocks during training (none in eval mode).
    """

    def __init__(self, dim=64, hidden=192, blocks=3, emb=64, sigma_data=SIGMA_DATA, dropout=0.0):
        super().__init__()
        self.config = {"dim": dim, "hidden": hidden, "blocks": blocks, "emb": emb,
                       "sigma_data": sigma_data, "dropout": dropout}
        self.sigma_data = sigma_data
        freqs = torch.exp(torch.linspace(math.log(0.5), math.log(32.0), _N_FREQ))
        self.register_buffer("freqs", freqs, persistent=False)
        self.embed = nn.Sequential(nn.Linear(2 * _N_FREQ, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Linear(dim, hidden)
        self.inp_emb = nn.Linear(emb, hidden)
        self.blocks = nn.ModuleList(_Block(hidden, emb, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def raw(self, x_in, c_noise):
        """The network F(c_in x̃, c_noise): shapes (n, dim), (n,) → (n, dim)."""
        angles = c_noise[:, None] * self.freqs
        e = self.embed(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1))
        h = self.inp(x_in) + self.inp_emb(nn.functional.silu(e))
        for block in self.blocks:
            h = block(h, e)
        return self.out(nn.functional.silu(self.norm(h)))

    def forward(self, x_tilde, sigma):
        """The denoised estimate x̂₀ = D(x̃, σ).

        Parameters
        ----------
        x_tilde : torch.Tensor, shape (n, dim)
            Noisy data x₀ + σ ε in model scale.
        sigma : torch.Tensor, shape (n,)
            Noise levels σ > 0 (variance-exploding).

        Returns
        -------
        torch.Tensor, shape (n, dim)
        """
        sigma = sigma.to(x_tilde.dtype)
        sd2, s2 = self.sigma_data**2, sigma**2
        c_skip = (sd2 / (s2 + sd2))[:, None]
        c_out = (sigma * self.sigma_data / torch.sqrt(s2 + sd2))[:, None]
        c_in = torch.rsqrt(s2 + sd2)[:, None]
        return c_skip * x_tilde + c_out * self.raw(c_in * x_tilde, 0.25 * torch.log(sigma))


def load_denoiser(path=DEFAULT_WEIGHTS, dtype=torch.float32, device="cpu"):
    """The trained denoiser from a safetensors file (no pickle: loading runs no code).

    Parameters
    ----------
    path : str or Path
        Weights written by ``train_digits.py``; the architecture is in the file's metadata.
    dtype : torch.dtype
        Cast the float32 weights to this (``torch.float64`` for lcsample's NumPy sampler).
    device : str or torch.device

    Returns
    -------
    DigitsDenoiser
        In eval mode, parameters with ``requires_grad=False``.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        config = json.loads(f.metadata()["config"])
    model = DigitsDenoiser(**config)
    model.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def draw(model, num_samples, seed=0, **settings):
    """Samples of the model (model scale) by lcsample's sampler on the model's tensors.

    Every step runs on the model's device in its dtype (float32 or float64); the samples
    come back as a float64 NumPy array.

    Parameters
    ----------
    model : DigitsDenoiser
    num_samples : int
    seed : int
    **settings
        Override :data:`SAMPLER` (``predictor``, ``grid``, ``steps``, ``sigma_max``,
        ``sigma_min``, ``denoise``) or pass other ``sample`` arguments.

    Returns
    -------
    samples : ndarray, shape (num_samples, 64)
    info : dict
        ``sample``'s info.
    """
    from lcsample.diffusion import sample, score_from_denoiser, t_from_sigma_ve

    opts = {**SAMPLER, **settings}
    t_max, t_min = t_from_sigma_ve(opts.pop("sigma_max")), t_from_sigma_ve(opts.pop("sigma_min"))
    weight = next(model.parameters())
    with torch.no_grad():
        x, info = sample(score_from_denoiser(model), dim=64, num_samples=num_samples,
                         t_max=float(t_max), t_min=float(t_min), seed=seed, progressbar=False,
                         device=weight.device, dtype=weight.dtype, **opts)
    return x.double().cpu().numpy(), info
