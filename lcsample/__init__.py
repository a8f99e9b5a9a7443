"""Fast sampling with randomized-midpoint underdamped Langevin dynamics."""

from . import datasets, metrics, targets, transforms
from ._version import __version__
from .kernels.exact import corrected_variance, stationary_covariance
from .mcmc.results import ChainState, SamplingResult
from .mcmc.sampler import sample
from .storage.reader import open_store
from .storage.zarr_store import ZarrStore
from .targets.base import Target
from .targets.pymc_model import from_pymc
from .targets.structure import Structure, Variable

__all__ = [
    "ChainState",
    "SamplingResult",
    "Structure",
    "Target",
    "Variable",
    "ZarrStore",
    "__version__",
    "corrected_variance",
    "datasets",
    "from_pymc",
    "metrics",
    "open_store",
    "sample",
    "stationary_covariance",
    "targets",
    "transforms",
]
