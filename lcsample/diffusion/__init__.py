"""Diffusion-model sampling with randomized midpoints (Gupta, Cai & Chen, ICLR 2025).

Work in progress (issue 4): the forward process and time grids are here; the analytic
testbed, predictors, correctors and the sampler follow.
"""

from .process import alpha, check_grid, sigma, sigma2, sigma_ve, t_from_sigma_ve, time_grid

__all__ = ["alpha", "check_grid", "sigma", "sigma2", "sigma_ve", "t_from_sigma_ve", "time_grid"]
