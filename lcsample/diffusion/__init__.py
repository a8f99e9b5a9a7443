"""Diffusion-model sampling with randomized midpoints (Gupta, Cai & Chen, ICLR 2025).

:func:`sample` runs the reverse process: predictors ("dpm-pc", the default, a multistep
predictor-corrector on the data prediction, :mod:`~lcsample.diffusion.multistep`; "rm",
the paper's Algorithm 1; "ddim", "exp-euler", "ddpm", "heun"), underdamped-Langevin
correctors ("uld", "uld-rm") on the MCMC sampler's kernels, sequentially or in Picard
windows (``picard_steps=R``, :mod:`lcsample.diffusion.picard`), on NumPy arrays or torch
tensors on their device (:mod:`~lcsample.diffusion.backend`). Also here: the forward
process and time grids (:mod:`~lcsample.diffusion.process`), adapters for trained models
(:mod:`~lcsample.diffusion.adapters`) and an analytic Gaussian-mixture testbed
(:mod:`~lcsample.diffusion.testbed`).
"""

from .adapters import (
    PREDICTION_TYPES,
    DiscreteSchedule,
    score_from_denoiser,
    score_from_model,
    score_from_unet,
)
from .process import alpha, check_grid, sigma, sigma2, sigma_ve, t_from_sigma_ve, time_grid
from .sampler import CORRECTORS, METHODS, PREDICTORS, sample
from .testbed import (
    GaussianData,
    GaussianMixture,
    grid_mixture,
    ill_conditioned_gaussian,
    two_modes,
)

__all__ = [
    "CORRECTORS",
    "DiscreteSchedule",
    "GaussianData",
    "GaussianMixture",
    "METHODS",
    "PREDICTION_TYPES",
    "PREDICTORS",
    "alpha",
    "check_grid",
    "grid_mixture",
    "ill_conditioned_gaussian",
    "sample",
    "score_from_denoiser",
    "score_from_model",
    "score_from_unet",
    "sigma",
    "sigma2",
    "sigma_ve",
    "t_from_sigma_ve",
    "time_grid",
    "two_modes",
]
