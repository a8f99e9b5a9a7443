"""Named variables over the flat vector a sampler moves: names, shapes, dims, transforms.

A target is a log density on R^d. Its :class:`Structure` says which slice of the d
coordinates is which model variable, with its shape, its ArviZ ``dims`` and the transform
from the unconstrained coordinates to the variable's support. It names coordinates in
warnings (``theta[3]``), splits and constrains draws for ArviZ, and turns named
starting values into a flat unconstrained vector.
"""

import keyword
import math
from typing import NamedTuple

import numpy as np

from ..transforms import Identity, as_transform

__all__ = ["Structure", "Variable"]


class Variable(NamedTuple):
    """One model variable: a block of the flat coordinates.

    Parameters
    ----------
    name : str
        A Python identifier, unique in the target.
    shape : tuple of int
        ``()`` for a scalar.
    transform : Transform, str or None
        From the unconstrained coordinates to the support: None or ``"identity"`` (real),
        ``"log"`` (positive), ``"logit"`` (in (0, 1)), or an instance of
        :mod:`lcsample.transforms` (``Interval(a, b)``, ``LowerBound(a)``, ...).
    dims : tuple of str or None
        ArviZ dimension names, one per axis of ``shape``.
    """

    name: str
    shape: tuple = ()
    transform: object = None
    dims: tuple | None = None


class Structure:
    """The variables of a target, in the order of its flat coordinates.

    Parameters
    ----------
    variables : sequence of Variable
        Free variables, whose sizes add up to the target's dimension.
    coords : dict, optional
        ``{dim name: labels}`` for ArviZ.
    constrain : callable, optional
        ``constrain(X) -> {name: array (n, *shape)}`` for flat unconstrained rows X,
        shape (n, d); it replaces the per-variable transforms and may add derived
        variables (as PyMC's deterministics). Default: each variable's transform.
    derived : sequence of Variable, optional
        Variables that ``constrain`` computes beyond the free ones (their ``transform``
        is ignored).
    data : dict, optional
        ``{"observed_data": {name: array}, "constant_data": {name: array}}``: the model's
        data, written to those ArviZ groups.
    data_dims : dict, optional
        ``{name: dims}`` of the data arrays.

    Raises
    ------
    ValueError
        A name that is not an identifier or is repeated, a shape that is not a tuple of
        non-negative integers, ``dims`` of the wrong length, or coords whose length does
        not match the axis they label.
    """

    def __init__(self, variables, coords=None, constrain=None, derived=(), data=None,
                 data_dims=None):
        self.variables = tuple(_checked(v) for v in variables)
        self.derived = tuple(_checked(v) for v in derived)
        if not self.variables:
            raise ValueError("variables must name at least one variable")
        names = [v.name for v in self.variables + self.derived]
        if len(set(names)) != len(names):
            raise ValueError(f"variables: repeated names in {names}")
        self.coords = {str(k): list(v) for k, v in (coords or {}).items()}
        self._check_coords()
        self._constrain = constrain
        self.data = {group: dict(arrays) for group, arrays in (data or {}).items() if arrays}
        unknown = set(self.data) - {"observed_data", "constant_data"}
        if unknown:
            raise ValueError(f"data groups must be observed_data or constant_data, got "
                             f"{sorted(unknown)}")
        self.data_dims = {name: list(d) for name, d in (data_dims or {}).items()}
        sizes = [math.prod(v.shape) for v in self.variables]
        self.dim = int(sum(sizes))
        ends = np.cumsum([0, *sizes])
        self.slices = {v.name: slice(int(a), int(b))
                       for v, a, b in zip(self.variables, ends[:-1], ends[1:], strict=True)}

    @classmethod
    def single(cls, name, dim):
        """One real vector variable ``name`` of shape (dim,): the default structure."""
        return cls([Variable(name, (dim,))])

    @property
    def transformed(self):
        """Whether any free variable is not on the real line."""
        return any(not isinstance(v.transform, Identity) for v in self.variables)

    def labels(self):
        """A name per flat coordinate: ``"mu"``, ``"theta[3]"``, ``"L[0,1]"``."""
        out = []
        for v in self.variables:
            if v.shape == ():
                out.append(v.name)
                continue
            for index in np.ndindex(*v.shape):
                out.append(f"{v.name}[{','.join(map(str, index))}]")
        return out

    def unconstrained(self, flat):
        """Split flat coordinates ``(..., d)`` into ``{name: (..., *shape)}``, unconstrained."""
        flat = np.asarray(flat)
        lead = flat.shape[:-1]
        return {v.name: flat[..., self.slices[v.name]].reshape(lead + v.shape)
                for v in self.variables}

    def constrained(self, flat):
        """The values users report, ``{name: (..., *shape)}``, derived variables included."""
        flat = np.asarray(flat, dtype=float)
        if self._constrain is not None:
            lead = flat.shape[:-1]
            values = self._constrain(flat.reshape(-1, flat.shape[-1]))
            return {k: np.asarray(a).reshape(lead + np.shape(a)[1:]) for k, a in values.items()}
        return {name: v.transform.forward(value)
                for (name, value), v in zip(self.unconstrained(flat).items(), self.variables,
                                            strict=True)}

    def flatten(self, values, what="initial_positions"):
        """Named constrained values {name: array of the variable's shape} → flat (d,).

        Raises
        ------
        ValueError
            A missing or unknown name, a wrong shape, or a value outside the support.
        """
        names = {v.name for v in self.variables}
        unknown, missing = set(values) - names, names - set(values)
        if unknown or missing:
            raise ValueError(f"{what}: unknown variables {sorted(unknown)}, missing "
                             f"{sorted(missing)}; the target's are {sorted(names)}")
        flat = np.empty(self.dim)
        for v in self.variables:
            x = np.asarray(values[v.name], dtype=float)
            if x.shape != v.shape:
                raise ValueError(f"{what}[{v.name!r}] must have shape {v.shape}, got {x.shape}")
            transform = v.transform
            if not np.all(transform.contains(x)):
                raise ValueError(f"{what}[{v.name!r}] lies outside the support of {transform!r}")
            flat[self.slices[v.name]] = transform.inverse(x).reshape(-1)
        return flat

    def dims(self):
        """{name: dims} of the variables and data that declare them, for ArviZ."""
        return {**self.data_dims,
                **{v.name: list(v.dims) for v in self.variables + self.derived if v.dims}}

    def _check_coords(self):
        for v in self.variables + self.derived:
            for axis, dim in enumerate(v.dims or ()):
                if dim in self.coords and len(self.coords[dim]) != v.shape[axis]:
                    raise ValueError(
                        f"coords[{dim!r}] has {len(self.coords[dim])} labels but axis {axis} "
                        f"of {v.name!r} has length {v.shape[axis]}")

    def __repr__(self):
        inner = ", ".join(f"{v.name}{list(v.shape) if v.shape else ''}" for v in self.variables)
        return f"Structure({inner})"


def _checked(variable):
    """Validate one Variable; returns it with a tuple shape and a Transform instance (the
    Structure's methods rely on the latter)."""
    if not isinstance(variable, Variable):
        raise ValueError(f"variables must be lcsample.Variable entries, got {variable!r}")
    name = variable.name
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"variable names must be Python identifiers, got {name!r}")
    shape = variable.shape
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    if not isinstance(shape, tuple) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0
            for n in shape):
        raise ValueError(f"shape of {name!r} must be a tuple of non-negative integers, "
                         f"got {variable.shape!r}")
    dims = None if variable.dims is None else tuple(variable.dims)
    if dims is not None and len(dims) != len(shape):
        raise ValueError(f"dims of {name!r} must name each of its {len(shape)} axes, "
                         f"got {variable.dims!r}")
    transform = as_transform(variable.transform, f"transform of {name!r}")
    return Variable(name, tuple(int(n) for n in shape), transform, dims)
