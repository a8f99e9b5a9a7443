"""Built-in targets with known structure."""

from .gaussian import Gaussian
from .linear import LinearRegression
from .logistic import LogisticRegression
from .poisson import PoissonRegression

__all__ = ["Gaussian", "LinearRegression", "LogisticRegression", "PoissonRegression"]
