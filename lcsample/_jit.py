"""The numba options used by lcsample, kept in one place."""

import numba
from numba import njit, types

__all__ = ["inlined_kernel", "kernel", "with_target"]

_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")

#: Function-free kernels: compiled once and cached on disk. ``nogil`` lets chains run in
#: parallel Python threads.
kernel = njit(**_OPTIONS)

#: The step kernels (:mod:`lcsample.kernels.step`): inlined into their callers at numba IR
#: level. A call between compiled functions costs ~10 ns per array argument in reference
#: counting, about as much as the rest of a step at small d (measured: 585 against 448 ns
#: of overhead per RM step at d = 10 without and with inlining,
#: benchmarks/compare_commits.py). Inlining grows the compiled loop; with_target caches it.
inlined_kernel = njit(**_OPTIONS, inline="always")

# Loops specialized to a user's function type, by (loop, argument types), and the last one
# each (loop, function) used; see with_target.
_SPECIALIZED = {}
_LAST = {}


def compile_target(fn, args):
    """Compile ``fn(x, grad_out, *args)`` for 1-D C arrays; returns its argument types.

    A no-op once compiled for these types (``Target.compile`` does it first, timed).
    """
    vector = types.float64[::1]
    fn_args = (vector, vector, *(numba.typeof(a) for a in args))
    fn.compile(fn_args)
    return fn_args


def _function_type(fn, args):
    """The first-class function type of ``fn(x, grad_out, *args)`` with 1-D C arrays."""
    return types.FunctionType(fn.overloads[compile_target(fn, args)].signature)


def with_target(loop, fn, args, *rest):
    """Call ``loop(fn, args, *rest)`` compiled for the user's function and the arguments.

    ``fn`` goes in as a first-class function, typed by its signature alone, so the
    compiled loop does not depend on which function it is: numba caches it on disk, and
    any later target whose function has the same argument types — in this process or
    another — reuses it instead of compiling the loop again.

    Parameters
    ----------
    loop : callable
        A plain Python function whose first two parameters are ``fn`` and ``args``.
    fn : numba dispatcher
        ``fn(x, grad_out, *args) -> float``.
    args : tuple
    *rest
        The loop's other arguments.
    """
    last = _LAST.get((loop, fn))
    if last is not None:
        # the usual case, a chain's next block: numba checks the types itself (~40 µs a
        # call against ~140 µs for working out the signature here)
        try:
            return last(fn, args, *rest)
        except TypeError as err:
            if "No matching definition" not in str(err):
                raise
    signature = (_function_type(fn, args), numba.typeof(args),
                 *(numba.typeof(value) for value in rest))
    compiled = _SPECIALIZED.get((loop, signature))
    if compiled is None:
        compiled = _SPECIALIZED[loop, signature] = njit(signature, **_OPTIONS)(loop)
    _LAST[loop, fn] = compiled
    return compiled(fn, args, *rest)
