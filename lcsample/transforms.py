"""Maps from the unconstrained space the sampler runs in to a variable's support.

Each transform maps an unconstrained y ∈ R to a constrained x and knows its inverse and
the log-Jacobian log|dx/dy|, elementwise. A target written on the unconstrained scale
adds the log-Jacobian to its log density (and its derivative to the gradient); the
transforms declared on its variables then turn the draws back into the values users
report (``SamplingResult.to_arviz``, ``SamplingResult.constrained``), as PyMC, Stan and
NumPyro do. For a target written with numba, the formulas are one line each::

    sigma = np.exp(y)            # Log(): log-Jacobian y, its derivative 1
    p = 1 / (1 + np.exp(-y))     # Logit(): log-Jacobian log p + log(1 - p), derivative 1 - 2p
"""

import numpy as np
from scipy.special import expit, log_expit, logit

__all__ = [
    "Identity",
    "Interval",
    "Log",
    "Logit",
    "LowerBound",
    "Transform",
    "UpperBound",
    "as_transform",
]


class Transform:
    """Base class: elementwise x = forward(y), with inverse and log|dx/dy|."""

    #: Short name, as shown in ``repr`` and ArviZ attributes.
    name = "transform"

    def forward(self, y):
        """Constrained values of unconstrained ``y`` (any shape)."""
        raise NotImplementedError

    def inverse(self, x):
        """Unconstrained values of constrained ``x`` (any shape)."""
        raise NotImplementedError

    def log_jacobian(self, y):
        """log|dx/dy| elementwise, same shape as ``y``."""
        raise NotImplementedError

    def contains(self, x):
        """Whether each ``x`` lies in the open support (the inverse is finite there)."""
        return np.isfinite(x)

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self), tuple(sorted(vars(self).items()))))


class Identity(Transform):
    """x = y: a real variable."""

    name = "identity"

    def forward(self, y):
        return np.asarray(y, dtype=float)

    def inverse(self, x):
        return np.asarray(x, dtype=float)

    def log_jacobian(self, y):
        return np.zeros_like(np.asarray(y, dtype=float))


class LowerBound(Transform):
    """x = lower + exp(y): x > lower."""

    name = "lower_bound"

    def __init__(self, lower):
        self.lower = _finite_bound(lower, "lower")

    def forward(self, y):
        return self.lower + np.exp(y)

    def inverse(self, x):
        return np.log(np.asarray(x, dtype=float) - self.lower)

    def log_jacobian(self, y):
        return np.asarray(y, dtype=float)

    def contains(self, x):
        return np.asarray(x) > self.lower

    def __repr__(self):
        return f"LowerBound({self.lower:g})"


class Log(LowerBound):
    """x = exp(y): a positive variable (a scale, a rate)."""

    name = "log"

    def __init__(self):
        super().__init__(0.0)

    def __repr__(self):
        return "Log()"


class UpperBound(Transform):
    """x = upper - exp(y): x < upper."""

    name = "upper_bound"

    def __init__(self, upper):
        self.upper = _finite_bound(upper, "upper")

    def forward(self, y):
        return self.upper - np.exp(y)

    def inverse(self, x):
        return np.log(self.upper - np.asarray(x, dtype=float))

    def log_jacobian(self, y):
        return np.asarray(y, dtype=float)

    def contains(self, x):
        return np.asarray(x) < self.upper

    def __repr__(self):
        return f"UpperBound({self.upper:g})"


class Interval(Transform):
    """x = lower + (upper - lower)·σ(y), σ the logistic function: lower < x < upper."""

    name = "interval"

    def __init__(self, lower, upper):
        self.lower = _finite_bound(lower, "lower")
        self.upper = _finite_bound(upper, "upper")
        if not self.upper > self.lower:
            raise ValueError(f"upper must exceed lower, got lower={lower!r}, upper={upper!r}")

    def forward(self, y):
        return self.lower + (self.upper - self.lower) * expit(y)

    def inverse(self, x):
        return logit((np.asarray(x, dtype=float) - self.lower) / (self.upper - self.lower))

    def log_jacobian(self, y):
        # log σ(y) + log σ(-y) without the cancellation of log(1 - σ(y)) for large y
        return np.log(self.upper - self.lower) + log_expit(y) + log_expit(-np.asarray(y))

    def contains(self, x):
        x = np.asarray(x)
        return (x > self.lower) & (x < self.upper)

    def __repr__(self):
        return f"Interval({self.lower:g}, {self.upper:g})"


class Logit(Interval):
    """x = σ(y): a probability in (0, 1)."""

    name = "logit"

    def __init__(self):
        super().__init__(0.0, 1.0)

    def __repr__(self):
        return "Logit()"


_BY_NAME = {"identity": Identity, "log": Log, "logit": Logit}


def as_transform(value, name="transform"):
    """A Transform from an instance, None (identity) or one of "identity", "log", "logit"."""
    if value is None:
        return Identity()
    if isinstance(value, Transform):
        return value
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]()
    raise ValueError(
        f"{name} must be a lcsample.transforms.Transform or one of {sorted(_BY_NAME)}, "
        f"got {value!r}"
    )


def _finite_bound(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)
