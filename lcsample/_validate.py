"""Argument checks shared by the public entry points: a ValueError that names the argument."""

import numpy as np

__all__ = ["choice", "non_negative_float", "positive_float", "positive_int"]


def positive_int(value, name, minimum=1):
    """``value`` as an int ≥ ``minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def positive_float(value, name):
    """``value`` as a positive finite float; None passes through (meaning "tune it")."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def non_negative_float(value, name):
    """``value`` as a finite float >= 0 (a tolerance)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def choice(value, name, options):
    """``value`` if it is one of the string ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value
