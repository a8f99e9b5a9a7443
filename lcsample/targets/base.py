"""The two kinds of user target, models only: a jitted function, or a function on rows.

:class:`Target` wraps a numba-jitted ``(x, grad_out, *args) -> log π(x)``, called from the
compiled chain loop; :class:`BatchedTarget` (made by :meth:`Target.from_batch`) wraps a
Python function on an (n, d) array of points — JAX, PyTorch, NumPy — whose chains the
samplers advance in lockstep, one call per round (:mod:`lcsample.mcmc.lockstep`). Both are
checked once at the starting point, with an error that says what is wrong.
"""

import time

import numba
import numpy as np
from numba.core.registry import CPUDispatcher

from .._jit import compile_target
from .structure import Structure

__all__ = ["BatchedTarget", "OutputTypeError", "Target"]

# Written past the end of the gradient buffer during the check, to catch an oracle that
# writes more than ``dim`` entries (nothing bounds-checks inside compiled code).
_GUARD = 7.0e300
_GUARD_LEN = 8
# Failures to compile, as opposed to errors raised by the compiled function at run time.
# UnsupportedBytecodeError (e.g. an import inside the function) is not a NumbaError.
_COMPILE_ERRORS = (numba.core.errors.NumbaError, numba.core.errors.UnsupportedBytecodeError)


class OutputTypeError(TypeError):
    """A target's function returned values of the wrong type (complex, integer, object)."""


def _require_finite(fn_name, lp, grad):
    """Raise a ValueError naming ``fn_name`` if the log density or gradient is not finite."""
    if not np.isfinite(lp):
        raise ValueError(
            f"{fn_name} returned a non-finite log density ({lp}) at the initial point")
    if not np.isfinite(grad).all():
        bad = np.flatnonzero(~np.isfinite(grad))
        raise ValueError(
            f"{fn_name} returned a non-finite gradient at the initial point "
            f"(entries {bad[:10].tolist()})"
        )


def _positive_dim(dim):
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return int(dim)


def _structure(variables, coords, name, dim):
    """The target's Structure: the variables given, or one vector ``name`` of length dim."""
    if variables is None:
        if coords is not None:
            raise ValueError("coords label the dims of variables: give variables too")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"name must be a Python identifier, got {name!r}")
        return Structure.single(name, dim)
    if name != "x":
        raise ValueError("give either name (one vector variable) or variables, not both")
    structure = variables if isinstance(variables, Structure) else Structure(variables, coords)
    if isinstance(variables, Structure) and coords is not None:
        raise ValueError("coords belong in the Structure given as variables")
    if structure.dim != dim:
        raise ValueError(f"variables have {structure.dim} coordinates in all, but dim={dim}")
    return structure


class Target:
    """A log density π(x) on R^d with its gradient, callable from compiled code.

    Parameters
    ----------
    logdensity_and_grad : callable
        ``logdensity_and_grad(x, grad_out, *args) -> float``: returns log π(x) (up to a
        constant) for ``x`` of shape (dim,) and writes ∇log π(x) into ``grad_out``, shape
        (dim,). It must be compiled with ``numba.njit``; a plain Python function is compiled
        here if numba can, otherwise a ``TypeError`` says why it cannot.
    dim : int
        Dimension d.
    args : tuple, optional
        Extra arguments (data arrays, constants) passed after ``grad_out``. Chains share
        them across threads, so the function must not write into them.
    name : str, optional
        Name of the one vector variable when ``variables`` is not given (default ``"x"``).
    variables : sequence of lcsample.Variable or lcsample.Structure, optional
        The model's variables in the order of x: names, shapes, ArviZ dims and the
        transforms from x (unconstrained) to the values reported. Their sizes must add up
        to ``dim``. The function sees the unconstrained x and must include the transforms'
        log-Jacobians (:mod:`lcsample.transforms`).
    coords : dict, optional
        ``{dim name: labels}`` for the variables' dims.

    Examples
    --------
    >>> import numba, lcsample
    >>> @numba.njit
    ... def logdensity_and_grad(x, grad_out, scale):
    ...     grad_out[:] = -x / scale**2
    ...     return -0.5 * (x @ x) / scale**2
    >>> target = lcsample.Target(logdensity_and_grad, dim=3, args=(2.0,))

    Named variables, one of them positive (sampled as log σ, reported as σ):

    >>> @numba.njit
    ... def normal_model(x, grad_out, y):
    ...     mu, log_sigma = x[0], x[1]
    ...     r = (y - mu) / np.exp(log_sigma)
    ...     grad_out[0] = r.sum() / np.exp(log_sigma)
    ...     grad_out[1] = (r * r).sum() - y.size + 1.0  # + 1: the log-Jacobian's derivative
    ...     return -0.5 * (r * r).sum() - y.size * log_sigma + log_sigma
    >>> target = lcsample.Target(normal_model, dim=2, args=(np.array([0.3, -1.2, 0.8]),),
    ...                          variables=[lcsample.Variable("mu"),
    ...                                     lcsample.Variable("sigma", transform="log")])
    """

    #: Whether the target evaluates many points per call (see :meth:`from_batch`).
    batched = False
    #: Whether the log density is concave by construction (the built-in targets): it has
    #: one mode, so ``sample`` does not survey for others.
    log_concave = False
    #: Whether the gradient is the package's own, checked by its tests: ``sample`` does
    #: not check it again against finite differences.
    gradient_tested = False
    #: Relative precision of the function's values (float64; a batched function's own).
    output_eps = float(np.finfo(np.float64).eps)

    def __init__(self, logdensity_and_grad, dim, args=(), name="x", variables=None,
                 coords=None):
        if not callable(logdensity_and_grad):
            raise TypeError("logdensity_and_grad must be callable")
        if not isinstance(args, tuple):
            raise ValueError(f"args must be a tuple, got {type(args).__name__}")
        if not isinstance(logdensity_and_grad, CPUDispatcher):
            logdensity_and_grad = numba.njit(logdensity_and_grad)
        self.logdensity_and_grad = logdensity_and_grad
        self.dim = _positive_dim(dim)
        self.args = args
        self.structure = _structure(variables, coords, name, self.dim)
        self.name = self.structure.variables[0].name

    @classmethod
    def from_batch(cls, logdensity_and_grad_batch, dim, name="x", variables=None, coords=None):
        """A target evaluated by a Python function on all chains at once.

        For log densities numba cannot compile (JAX, PyTorch, plain NumPy): all chains
        advance together, one call per round of gradient evaluations, while the
        integrator arithmetic stays in the compiled kernels. Draws equal those of the
        same target written for numba, to round-off.

        Parameters
        ----------
        logdensity_and_grad_batch : callable
            ``fn(X) -> (lp, G)``: X shape (n, dim) → lp shape (n,), G = ∇log π shape
            (n, dim); array-likes are converted with ``numpy.asarray``.
        dim : int
        name, variables, coords : optional
            As for :class:`Target`.

        Returns
        -------
        BatchedTarget

        Examples
        --------
        >>> import numpy as np, lcsample
        >>> def fn(X):
        ...     return -0.5 * (X**2).sum(axis=1), -X
        >>> target = lcsample.Target.from_batch(fn, dim=3)
        """
        return BatchedTarget(logdensity_and_grad_batch, dim, name=name, variables=variables,
                             coords=coords)

    @classmethod
    def from_jax(cls, logdensity, example_position, transforms=None, dims=None, coords=None):
        """A target from a JAX log density on a pytree, as BlackJAX and NumPyro take them.

        The gradient comes from ``jax.value_and_grad`` and all chains are evaluated in one
        jitted ``jax.vmap`` call per round (a :class:`BatchedTarget`). Needs the ``jax``
        extra (``pip install 'lcsample[jax]'``). JAX computes in float32 unless
        ``jax.config.update("jax_enable_x64", True)`` was called; lcsample's checks allow
        for the precision the function returns.

        Parameters
        ----------
        logdensity : callable
            ``logdensity(position) -> scalar``, written with ``jax.numpy`` on the
            unconstrained scale (log-Jacobians included).
        example_position : pytree of arrays
            Gives the variables: each leaf one variable, named by its dict keys (nested
            keys joined by ``_``; a bare array is ``x``), with the leaf's shape.
        transforms, dims : dict, optional
            ``{name: transform}`` and ``{name: dims}`` for the leaves (see
            :class:`lcsample.Variable`).
        coords : dict, optional
            ``{dim name: labels}``.

        Returns
        -------
        BatchedTarget

        Examples
        --------
        >>> import jax.numpy as jnp, lcsample
        >>> def logdensity(p):
        ...     return -0.5 * jnp.sum(p["theta"] ** 2) - 0.5 * p["log_tau"] ** 2
        >>> target = lcsample.Target.from_jax(
        ...     logdensity, {"theta": jnp.zeros(3), "log_tau": jnp.zeros(())})
        """
        from .jax_target import from_jax

        return from_jax(logdensity, example_position, transforms, dims, coords)

    def __repr__(self):
        fn = getattr(self.logdensity_and_grad, "__name__", "logdensity_and_grad")
        return f"{type(self).__name__}({fn}, dim={self.dim})"

    def compile(self):
        """Compile the function for the sampler's argument types, ahead of its first call.

        Returns
        -------
        float
            Seconds it took (0 when it was compiled already).

        Raises
        ------
        TypeError
            Numba cannot compile the function in nopython mode (with numba's reason).
        """
        t0 = time.perf_counter()
        try:
            compile_target(self.logdensity_and_grad, self.args)
        except _COMPILE_ERRORS as err:
            fn_name = getattr(self.logdensity_and_grad, "__name__", "logdensity_and_grad")
            raise TypeError(
                f"{fn_name} could not be compiled by numba in nopython mode, which lcsample "
                "needs to call it from its compiled sampler. Write it with NumPy operations "
                "numba supports, with signature (x, grad_out, *args) -> float. "
                f"Numba said:\n{err}"
            ) from None
        return time.perf_counter() - t0

    def logdensity_and_gradient(self, x):
        """Evaluate at one point from Python.

        Parameters
        ----------
        x : array_like, shape (dim,)

        Returns
        -------
        lp : float
        grad : ndarray, shape (dim,)
        """
        x = np.ascontiguousarray(x, dtype=np.float64)
        grad = np.empty(self.dim)
        lp = self.logdensity_and_grad(x, grad, *self.args)
        return float(lp), grad

    def check(self, x):
        """Evaluate once at ``x`` and raise a clear error for any broken contract.

        Parameters
        ----------
        x : ndarray, shape (dim,)

        Returns
        -------
        lp : float
        grad : ndarray, shape (dim,)

        Raises
        ------
        TypeError
            The function cannot be compiled by numba, or returns something that is not a
            float.
        ValueError
            It raises at ``x``, writes a gradient of the wrong length, or returns a
            non-finite value or gradient.
        """
        fn_name = getattr(self.logdensity_and_grad, "__name__", "logdensity_and_grad")
        x = np.array(x, dtype=np.float64)
        buffer = np.full(self.dim + _GUARD_LEN, np.nan)
        buffer[self.dim :] = _GUARD
        grad = buffer[: self.dim]
        self.compile()
        try:
            lp = self.logdensity_and_grad(x, grad, *self.args)
        except Exception as err:
            raise ValueError(
                f"{fn_name} raised at the initial point (dim={self.dim}): "
                f"{type(err).__name__}: {err}"
            ) from err
        if not isinstance(lp, (float, np.floating)):  # an int or a complex is a bug
            raise TypeError(
                f"{fn_name} must return the log density as a float, got {type(lp).__name__}"
            )
        if np.any(buffer[self.dim :] != _GUARD):
            raise ValueError(
                f"{fn_name} wrote past the end of grad_out: the target's gradient is longer "
                f"than dim={self.dim}"
            )
        if np.isnan(grad).any():
            missing = np.flatnonzero(np.isnan(grad))
            raise ValueError(
                f"{fn_name} left grad_out entries {missing[:10].tolist()} unwritten or NaN at "
                f"the initial point: is dim={self.dim} right, and is the gradient finite there?"
            )
        _require_finite(fn_name, lp, grad)
        return float(lp), grad.copy()


class BatchedTarget(Target):
    """A log density evaluated on a batch of points by a Python function.

    Made by :meth:`lcsample.Target.from_batch`.

    Parameters
    ----------
    logdensity_and_grad_batch : callable
        ``fn(X) -> (lp, G)`` for X of shape (n, d): lp shape (n,), G = ∇log π, shape
        (n, d). Anything array-like (JAX, PyTorch on CPU) that ``numpy.asarray`` converts.
    dim : int
    name, variables, coords : optional
        As for :class:`Target`.
    """

    batched = True

    def __init__(self, logdensity_and_grad_batch, dim, name="x", variables=None, coords=None):
        if not callable(logdensity_and_grad_batch):
            raise TypeError("logdensity_and_grad_batch must be callable")
        self.batch_fn = logdensity_and_grad_batch
        self.logdensity_and_grad = None
        self.dim = _positive_dim(dim)
        self.args = ()
        self.structure = _structure(variables, coords, name, self.dim)
        self.name = self.structure.variables[0].name

    def __repr__(self):
        fn = getattr(self.batch_fn, "__name__", "logdensity_and_grad_batch")
        return f"Target.from_batch({fn}, dim={self.dim})"

    def evaluate(self, X):
        """Call the function on points ``X``, shape (n, d); returns float64 (lp, G)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        lp, G = (np.asarray(value) for value in self.batch_fn(X))
        for value, what in ((lp, "log density"), (G, "gradient")):
            if not np.issubdtype(value.dtype, np.floating):
                # complex would be cut to its real part, integers hide a wrong formula
                raise OutputTypeError(f"the batched function must return a real "
                                      f"floating-point {what}, got dtype {value.dtype}")
        # the precision the function computes in (JAX: float32 by default), for checks
        # that difference its values
        self.output_eps = float(max(np.finfo(lp.dtype).eps, np.finfo(G.dtype).eps))
        lp = lp.astype(np.float64).reshape(-1)
        G = np.ascontiguousarray(G, dtype=np.float64)
        if lp.shape != (X.shape[0],) or G.shape != X.shape:
            raise ValueError(
                f"the batched function must return lp of shape ({X.shape[0]},) and a gradient "
                f"of shape {X.shape}; got {lp.shape} and {G.shape}"
            )
        return lp, G

    def compile(self):
        """Nothing to compile ahead: a jitted batched function (JAX) compiles at its first
        call, which lcsample counts in ``timing["initialization"]``. Returns 0."""
        return 0.0

    def logdensity_and_gradient(self, x):
        lp, G = self.evaluate(np.asarray(x, dtype=np.float64)[None, :])
        return float(lp[0]), G[0]

    def check(self, x):
        fn_name = getattr(self.batch_fn, "__name__", "logdensity_and_grad_batch")
        try:
            lp, grad = self.logdensity_and_gradient(x)
        except ValueError as err:
            raise ValueError(f"{fn_name}: {err}") from err
        except OutputTypeError as err:
            raise OutputTypeError(f"{fn_name}: {err}") from None
        except Exception as err:
            raise ValueError(
                f"{fn_name} raised at the initial point (dim={self.dim}): "
                f"{type(err).__name__}: {err}"
            ) from err
        _require_finite(fn_name, lp, grad)
        return lp, grad.copy()
