"""Diffusion-model sampling with randomized midpoints (Gupta, Cai & Chen, ICLR 2025).

Work in progress (issue 4): the forward process, time grids, the predictors ("rm",
"exp-euler", "ddpm", "heun"), the Langevin correctors ("uld", "uld-rm") and
:func:`sample` are here; score adapters, the fully compiled path and the parallel
(Picard) version follow.
"""

from .adapters import (
    PREDICTION_TYPES,
    DiscreteSchedule,
    score_from_denoiser,
    score_from_model,
)
from .process import alpha, check_grid, sigma, sigma2, sigma_ve, t_from_sigma_ve, time_grid
from .sampler import CORRECTORS, METHODS, PREDICTORS, sample
from .testbed import Gaussian, GaussianMixture, grid_mixture, ill_conditioned_gaussian, two_modes

__all__ = [
    "CORRECTORS",
    "DiscreteSchedule",
    "Gaussian",
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
    "sigma",
    "sigma2",
    "sigma_ve",
    "t_from_sigma_ve",
    "time_grid",
    "two_modes",
]
