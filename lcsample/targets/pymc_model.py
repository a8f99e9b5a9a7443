"""PyMC models as lcsample targets: the unconstrained log density compiled to numba.

:func:`from_pymc` takes a ``pymc.Model`` and returns a :class:`lcsample.Target` whose
function is the model's log density on the unconstrained scale (PyMC's transforms and
their log-Jacobians included) and its gradient, compiled by PyTensor's numba backend:

1. One flat float64 vector ``x`` stands for all value variables, each replaced by its
   slice ``x[start:stop].reshape(shape)``, in the order of ``model.free_RVs``.
2. Data (``pm.Data``, observed values, float array constants such as a design matrix)
   are lifted out of the graph into inputs, passed as the target's ``args``: PyTensor
   never folds them into the code, and its on-disk cache key does not depend on them.
3. The log density and its gradient are compiled with ``mode="NUMBA"`` and without
   fastmath; a small generated wrapper gives lcsample's ``fn(x, grad_out, *args)``.

PyMC and PyTensor are imported only when :func:`from_pymc` is called.
"""

import hashlib
import math
import warnings
from typing import NamedTuple

import numba
import numpy as np

from ..transforms import Identity, Interval, Log, Logit, LowerBound, Transform, UpperBound
from .base import Target
from .structure import Structure, Variable

__all__ = ["PyMCTransform", "from_pymc"]

_MISSING_PYMC = "from_pymc needs PyMC: pip install 'lcsample[pymc]' (PyMC 6 on Python >= 3.12)"
#: Array constants with at least this many elements become ``args``; smaller ones (prior
#: parameters such as ``[0., 1.]``) stay in the code, where PyTensor can fold them.
_LIFT_MIN_SIZE = 2
#: Part of the wrapper's cache key: bump when the generated wrapper changes.
_WRAPPER_VERSION = "lcsample-pymc-1"
_OBJECT_MODE = "Numba will use object mode"


class _Block(NamedTuple):
    """One free variable of the model: its slice of the flat vector and its metadata."""

    name: str
    value_name: str
    shape: tuple  # of the value (unconstrained) variable
    start: int
    stop: int
    dims: tuple | None
    transform: Transform


class PyMCTransform(Transform):
    """A PyMC transform with no lcsample equivalent (simplex, ordered, ...).

    Draws are constrained by the model's own graph (``Structure.constrain``); only named
    starting values, which would need the inverse here, are refused.

    Parameters
    ----------
    variable : str
        The model variable, for the error message.
    pymc_name : str
        PyMC's name of the transform (``"simplex"``, ``"ordered"``...).
    """

    name = "pymc"

    def __init__(self, variable, pymc_name):
        self.variable = variable
        self.pymc_name = pymc_name

    def contains(self, x):
        self._refuse()

    def inverse(self, x):
        self._refuse()

    def _refuse(self):
        raise ValueError(
            f"named initial_positions are not supported for {self.variable!r}: its PyMC "
            f"transform {self.pymc_name!r} has no lcsample equivalent. Give a flat "
            "unconstrained vector instead (target.initial_point is one).")

    def __repr__(self):
        return f"PyMCTransform({self.pymc_name!r})"


def from_pymc(model, *, cache=True):
    """An lcsample target for a PyMC model's posterior.

    Parameters
    ----------
    model : pymc.Model
        A model whose free variables are all continuous.
    cache : bool
        Keep the compiled wrapper in PyTensor's numba disk cache, so a later process
        (same graph, any data of the same shapes) skips the compilation.

    Returns
    -------
    Target
        ``fn(x, grad_out, *args)`` with x of shape (dim,) in the order of
        ``model.free_RVs``; ``args`` the data arrays. Its Structure names the free
        variables (shapes, dims, transforms), the model's coords and deterministics
        (derived variables, computed by the model's graph) and its observed and
        constant data (``structure.data``, for ArviZ). Extra attribute:
        ``initial_point`` (dim,), PyMC's starting point, unconstrained.

    Raises
    ------
    ImportError
        PyMC is not installed.
    ValueError
        A discrete free variable, a model with no free variable, or an operation the
        numba backend cannot compile (object mode), named.
    """
    pm = _import_pymc()
    if not isinstance(model, pm.Model):
        raise TypeError(f"from_pymc needs a pymc.Model, got {type(model).__name__}")
    _reject_discrete(model)
    blocks = _layout(model)
    # Dim lengths are shared scalars in PyMC: as constants, PyTensor knows static shapes
    # and they need no argument. Data stay shared, to be lifted into args.
    frozen = pm.model.transform.optimization.freeze_dims_and_data(model, data=[])
    dim = blocks[-1].stop
    inner, args = _compile_logp(pm, frozen, blocks, dim)
    fn = _wrap(inner, len(args), cache)
    constrain, derived = _constrain(pm, frozen, blocks, dim)
    free = [Variable(b.name, b.shape, b.transform, b.dims) for b in blocks]
    coords = {name: list(values) for name, values in model.coords.items()}
    data = {"observed_data": _observed_data(model), "constant_data": _constant_data(model)}
    data_dims = {name: list(model.named_vars_to_dims[name])
                 for group in data.values() for name in group
                 if model.named_vars_to_dims.get(name)}
    structure = Structure(free, coords=coords, constrain=constrain, derived=derived,
                          data=data, data_dims=data_dims)
    target = Target(fn, dim, args=args, variables=structure)
    target.initial_point = _flat_initial_point(model, blocks)
    return target


def _import_pymc():
    try:
        import pymc
    except ImportError as err:
        raise ImportError(_MISSING_PYMC) from err
    return pymc


# ---- layout -------------------------------------------------------------------------------


def _reject_discrete(model):
    """Raise for discrete free variables: a gradient sampler cannot move them."""
    for rv in model.free_RVs:
        if rv.type.dtype.startswith(("int", "uint", "bool")):
            raise ValueError(
                f"free variable {rv.name!r} is discrete (dtype {rv.type.dtype}); lcsample's "
                "gradient-based samplers need continuous free variables. Marginalize it "
                "(pymc_extras.marginalize) or make it observed.")


def _layout(model):
    """One _Block per free variable, in ``model.free_RVs`` order (the order of x).

    Shapes are the value variables' (after transforms) at the model's initial point.
    """
    point = model.initial_point()
    blocks, start = [], 0
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        shape = tuple(int(n) for n in np.shape(point[value.name]))
        blocks.append(_Block(rv.name, value.name, shape, start, start + math.prod(shape),
                             _block_dims(model, rv.name, shape), _transform(model, rv)))
        start = blocks[-1].stop
    if not blocks:
        raise ValueError("the model has no free variables to sample")
    return blocks


def _block_dims(model, name, shape):
    """The variable's dims if they label the unconstrained block, else None.

    A transform that changes the shape (simplex: K values → K - 1) leaves the block
    unlabelled: the dims describe the constrained value.
    """
    dims = model.named_vars_to_dims.get(name)
    if not dims or len(dims) != len(shape):
        return None
    lengths = [len(model.coords.get(d) or ()) or n for d, n in zip(dims, shape, strict=True)]
    return tuple(dims) if tuple(lengths) == shape else None


def _transform(model, rv):
    """The lcsample transform equal to ``rv``'s PyMC transform, else a PyMCTransform."""
    from pymc.logprob.transforms import IntervalTransform, LogOddsTransform, LogTransform

    transform = model.rvs_to_transforms.get(rv)
    if transform is None:
        return Identity()
    if isinstance(transform, LogTransform):
        return Log()
    if isinstance(transform, LogOddsTransform):
        return Logit()
    if isinstance(transform, IntervalTransform):
        lower, upper = (_constant_bound(b) for b in transform.args_fn(*rv.owner.inputs))
        if lower is not False and upper is not False and (lower, upper) != (None, None):
            if upper is None:
                return LowerBound(lower)
            return UpperBound(upper) if lower is None else Interval(lower, upper)
    return PyMCTransform(rv.name, getattr(transform, "name", type(transform).__name__))


def _constant_bound(bound):
    """A bound as a float, None when unbounded, False when not a scalar constant."""
    from pytensor.tensor import get_underlying_scalar_constant_value
    from pytensor.tensor.exceptions import NotScalarConstantError

    if bound is None:
        return None
    try:
        value = float(get_underlying_scalar_constant_value(bound))
    except NotScalarConstantError:  # depends on other variables or data
        return False
    return value if np.isfinite(value) else None


def _flat_initial_point(model, blocks):
    point = model.initial_point()
    return np.concatenate([np.ravel(point[b.value_name]) for b in blocks]).astype(np.float64)


def _slices_of(model, blocks, x):
    """Each value variable of ``model`` → its reshaped slice of the flat vector ``x``."""
    values = [model.rvs_to_values[model[b.name]] for b in blocks]
    return {value: x[b.start:b.stop].reshape(b.shape).astype(value.dtype)
            for value, b in zip(values, blocks, strict=True)}


# ---- the log density ----------------------------------------------------------------------


def _compile_logp(pm, model, blocks, dim):
    """The numba function of the graph ``x, *data -> (logp 0-d array, gradient (dim,))``.

    Returns (the graph's numba dispatcher, tuple of data arrays in input order).
    """
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.rewriting.utils import rewrite_graph

    logp = model.logp(jacobian=True)
    # Lift before any rewrite: canonicalize folds functions of constant data
    # (gammaln(k + 1), log(sigma)) into new constants that new data would not update.
    inputs, args = _lift_data(model, logp)
    # Stabilize before differentiating, so the gradient gets the stable forms
    # (log1p, softplus), as PyMC's own dlogp does.
    logp = rewrite_graph(clone_replace(logp, inputs), include=("canonicalize", "stabilize"))
    values = [model.rvs_to_values[model[b.name]] for b in blocks]
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in pt.grad(logp, values)])
    x = pt.vector("__lcsample_x", dtype="float64", shape=(dim,))
    logp, grad = clone_replace([logp, grad], _slices_of(model, blocks, x))
    # The project computes without fastmath: reassociation and approximate functions
    # would make PyMC's log density differ between backends and runs.
    with pytensor.config.change_flags(numba__fastmath=False), model, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        function = pm.pytensorf.compile([x, *inputs.values()], [logp, grad], mode="NUMBA")
    _reject_object_mode(caught)
    return _graph_dispatcher(function), args


def _reject_object_mode(caught):
    """Raise if PyTensor fell back to Python (object mode) for some operation.

    Such a function holds the GIL and is slow; lcsample's threads need nopython code.
    """
    ops = [str(w.message).split(" to run ", 1)[-1].split("'s perform", 1)[0]
           for w in caught if str(w.message).startswith(_OBJECT_MODE)]
    if ops:
        raise ValueError(
            f"PyTensor's numba backend has no implementation of {', '.join(sorted(set(ops)))} "
            "and would run it in Python (object mode), which lcsample cannot call from its "
            "compiled sampler. Rewrite the model without it, or use "
            "lcsample.Target.from_batch with model.compile_logp / compile_dlogp.")
    for w in caught:  # warnings other than the fallback are the user's to see
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _is_data(var, observed):
    """Whether an input of the logp graph becomes one of the target's ``args``.

    Shared variables (pm.Data), observed values and float arrays (covariates). Integer
    constants that are not observed stay in the code: they are mostly shapes, which
    PyTensor needs as constants; an index array meant to change belongs in pm.Data.
    """
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.tensor import TensorConstant, TensorType

    if isinstance(var, SharedVariable):
        return isinstance(var.type, TensorType)
    if not isinstance(var, TensorConstant) or var.data.ndim == 0:
        return False
    return var in observed or (var.dtype.startswith("float") and var.data.size >= _LIFT_MIN_SIZE)


def _lift_data(model, logp):
    """Replace the data in the graph of ``logp`` by new inputs of the same static types.

    Returns
    -------
    inputs : dict
        {data variable: new input}, in the order the inputs are passed.
    args : tuple of ndarray
        Their values, C-contiguous and writeable (numba types read-only or
        non-contiguous arrays differently).
    """
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    observed = {model.rvs_to_values[rv] for rv in model.observed_RVs}
    inputs, args = {}, []
    for var in graph_inputs([logp]):
        if var in inputs or not _is_data(var, observed):
            continue
        data = var.get_value(borrow=False) if isinstance(var, SharedVariable) else var.data
        inputs[var] = var.type(name=f"__lcsample_arg{len(args)}")
        args.append(np.array(data, dtype=var.type.dtype, order="C", copy=True))
    return inputs, tuple(args)


# ---- PyTensor internals: the only place that touches them ---------------------------------


def _graph_dispatcher(function):
    """The numba dispatcher of a PyTensor function compiled with ``mode="NUMBA"``."""
    jit_fn = getattr(getattr(function, "vm", None), "jit_fn", None)
    if jit_fn is None:
        raise RuntimeError("this PyTensor version does not expose the numba function of a "
                           "compiled graph (function.vm.jit_fn); from_pymc needs PyTensor 3")
    return jit_fn


def _pytensor_cache(inner):
    """PyTensor's disk-cache key for the graph function and its source compiler.

    Returns (key, compile_src), or (None, None) when the graph is not cacheable (an Op
    without a cache key, ``config.numba__cache`` off) or this PyTensor has no such cache.
    """
    try:
        from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src
    except ImportError:
        return None, None
    key = CACHED_SRC_FUNCTIONS.get(getattr(inner, "py_func", None))
    return (key, compile_numba_function_src) if key is not None else (None, None)


# ---- the lcsample wrapper -----------------------------------------------------------------


def _wrapper_source(n_args):
    """Source of ``fn(x, grad_out, arg0, ...)``: an explicit parameter list, because
    lcsample compiles ``fn`` for a flat signature (``*args`` would be a star-args tuple)."""
    params = "".join(f", arg{i}" for i in range(n_args))
    return (f"def pymc_logp_dlogp(x, grad_out{params}):\n"
            f"    lp, grad = inner(x{params})\n"
            "    grad_out[:] = grad\n"
            "    return lp.item()\n")  # lp is a 0-d array


def _wrap(inner, n_args, cache):
    """The wrapper as a numba dispatcher, on disk in PyTensor's cache if it can be keyed.

    Numba's own cache refuses functions made by ``exec``; PyTensor's cache locator serves
    them by a key registered with ``compile_numba_function_src``. The key covers the
    graph (PyTensor's key, fastmath flag included), the wrapper and the numba version.
    """
    src = _wrapper_source(n_args)
    # __name__: numba's cache records the module of the function's globals and imports
    # it when loading; without one, loading fails.
    env = {"inner": inner, "__name__": __name__}
    inner_key, compile_src = _pytensor_cache(inner) if cache else (None, None)
    if inner_key is None:
        exec(compile(src, "<lcsample.from_pymc>", "exec"), env)
        py_fn = env["pymc_logp_dlogp"]
    else:
        key = hashlib.sha256(f"{_WRAPPER_VERSION}|{numba.__version__}|{inner_key}|{src}"
                             .encode()).hexdigest()
        py_fn = compile_src(src, "pymc_logp_dlogp", env, cache_key=key)
    with warnings.catch_warnings():  # numba warns that a source-less function is cached
        warnings.simplefilter("ignore", numba.NumbaWarning)
        return numba.njit(py_fn, cache=inner_key is not None, nogil=True)


# ---- constrained values, deterministics, data ---------------------------------------------


def _constrain(pm, model, blocks, dim):
    """The Structure's ``constrain`` and its derived variables (the deterministics).

    Returns
    -------
    constrain : callable
        Flat unconstrained rows X (n, dim) → {name: (n, *shape)} for the free variables
        (PyMC's own backward transforms) and the deterministics; one compiled call for
        all rows (the graph vectorized over a leading axis).
    derived : list of Variable
        The deterministics, with shapes at the initial point and their dims.
    """
    import pytensor.tensor as pt
    from pytensor.graph.replace import clone_replace, vectorize_graph

    outputs = [model[b.name] for b in blocks] + list(model.deterministics)
    names = [var.name for var in outputs]
    row = pt.vector("__lcsample_row", dtype="float64", shape=(dim,))
    exprs = clone_replace(model.replace_rvs_by_values(outputs), _slices_of(model, blocks, row))
    rows = pt.matrix("__lcsample_rows", dtype="float64", shape=(None, dim))
    with model:
        function = pm.pytensorf.compile([rows], vectorize_graph(exprs, replace={row: rows}),
                                        on_unused_input="ignore")

    def constrain(X):
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != dim:
            raise ValueError(f"constrain needs rows of length {dim}, got shape {X.shape}")
        # an output that does not depend on x (a constant deterministic) has no row axis
        return {name: np.broadcast_to(value, (X.shape[0], *np.shape(value)))
                if np.ndim(value) == expr.type.ndim else np.asarray(value)
                for name, value, expr in zip(names, function(X), exprs, strict=True)}

    at_start = constrain(np.zeros((1, dim)))
    derived = [Variable(det.name, at_start[det.name].shape[1:], None,
                        _dims(model, det.name, at_start[det.name].ndim - 1))
               for det in model.deterministics]
    return constrain, derived


def _dims(model, name, ndim):
    dims = model.named_vars_to_dims.get(name)
    return tuple(dims) if dims and len(dims) == ndim else None


def _value(var):
    """The numpy value of a data variable: shared, constant, or a graph of data."""
    if hasattr(var, "get_value"):
        return np.asarray(var.get_value())
    return np.asarray(var.data if hasattr(var, "data") else var.eval())


def _observed_data(model):
    """{name: ndarray} of the observed variables, for ArviZ's observed_data group."""
    return {rv.name: _value(model.rvs_to_values[rv]) for rv in model.observed_RVs}


def _constant_data(model):
    """{name: ndarray} of the pm.Data not used as observations (ArviZ's constant_data)."""
    observed = {model.rvs_to_values[rv] for rv in model.observed_RVs}
    return {var.name: _value(var) for var in model.data_vars if var not in observed}
