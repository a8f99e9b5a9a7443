"""Built-in targets with known structure."""

from .gaussian import Gaussian
from .logistic import LogisticRegression

__all__ = ["Gaussian", "LogisticRegression"]
