"""Shared by the regression targets: checks of the data, a positive scale, the weights."""

import numpy as np

from .structure import Structure, Variable

__all__ = ["design_and_response", "positive_scale", "weights_structure"]


def design_and_response(X, y):
    """X (n, d) and y (n,) as contiguous float64, finite and of matching length.

    Raises
    ------
    ValueError
        Naming ``X`` or ``y``.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X must be finite")
    if not np.isfinite(y).all():
        raise ValueError("y must be finite")
    return X, y


def positive_scale(value, name):
    """``value`` as a positive finite float; ValueError naming ``name`` otherwise."""
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return float(value)


def weights_structure(X):
    """The regressions' one variable: weights ``w`` with dims ("feature",).

    The feature labels are the columns of ``X`` when it has them (a pandas DataFrame),
    else ArviZ numbers them.
    """
    columns = getattr(X, "columns", None)
    d = np.shape(X)[1]
    coords = {"feature": [str(c) for c in columns]} if columns is not None else None
    return Structure([Variable("w", (d,), dims=("feature",))], coords)
