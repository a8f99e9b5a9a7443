"""The numba options used by lcsample, kept in one place, and how a kernel is called.

A kernel called from Python (:class:`precompiled`) or a loop compiled for a user's
function (:func:`with_target`) is taken from the ahead-of-time build (:mod:`lcsample._aot`)
where it has one for the call's argument types, and compiled just in time otherwise.
"""

import numba
from numba import njit, types

from ._aot import Guarded, lookup, type_key

__all__ = ["inlined_kernel", "kernel", "precompiled", "with_target"]

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
        built = lookup(loop, signature)
        compiled = (njit(signature, **_OPTIONS)(loop) if built is None
                    else Guarded(built, (fn, args, *rest)))
        _SPECIALIZED[loop, signature] = compiled
    _LAST[loop, fn] = compiled
    return compiled(fn, args, *rest)


class precompiled:
    """A kernel as called from Python: its ahead-of-time build where one matches.

    The build is picked by the call's argument types (once per set of types); where it
    has none, the kernel itself runs (and compiles on its first call, as always). Wraps
    kernels that only Python calls: compiled callers need the dispatcher itself.

    Parameters
    ----------
    kernel : numba dispatcher
    """

    def __init__(self, kernel):
        self.kernel = kernel
        self._by_types = {}

    def __call__(self, *values):
        key = type_key(values)
        function = self._by_types.get(key)
        if function is None:
            built = lookup(self.kernel.py_func, tuple(numba.typeof(value) for value in values))
            function = self._by_types[key] = self.kernel if built is None else built
        return function(*values)
