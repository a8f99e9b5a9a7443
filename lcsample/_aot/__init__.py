"""lcsample's kernels compiled ahead of time, when the install built them.

Installing from source (``pip install .``) compiles the kernels of a default run
(:data:`~lcsample._aot.exports.EXPORTS`) with numba's ``pycc`` into the extension module
``lcsample._aot._kernels``, for the machine's CPU (:mod:`lcsample._aot.build`, run by
``setup.py``). A first run then compiles only the target's own function instead of the
sampler's loops: this is what brings the first draw on an empty numba cache from ~9 s to
~1.5 s (benchmarks/first_draw.py).

The build is used only where it matches: the module carries a tag (:func:`build_tag`) of
lcsample's sources, the numba, NumPy and Python versions and the CPU, and a kernel is taken
from it only for exactly the argument types it was built for (:class:`Guarded`). Anything
else — no C compiler at install, an edited source, another CPU, ``LCSAMPLE_PRECOMPILED=0``
or ``NUMBA_DISABLE_JIT`` in the environment — falls back to numba (compiling just in
time), which gives the same draws (tests/test_precompiled.py).
"""

import hashlib
import importlib
import os
import sys
from pathlib import Path

import numba

from .exports import EXPORTS

try:  # the C fingerprint of a value's type that numba's dispatchers use (not public API)
    from numba._dispatcher import compute_fingerprint
except ImportError:  # slower, same answer
    compute_fingerprint = numba.typeof

__all__ = ["Guarded", "build_tag", "lookup", "status", "type_key"]

_PACKAGE = Path(__file__).resolve().parent.parent
_LOADED = {}  # "module" and "status", once looked at
_TABLE = {(export.kernel, export.args): export.symbol for export in EXPORTS}


def build_tag():
    """16 hex digits naming what compiled code depends on.

    A digest of every ``.py`` file of the package, the numba, NumPy and Python versions,
    and the CPU numba compiles for (its name and features, or numba's overrides of them).
    """
    import llvmlite.binding as llvm
    import numpy

    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(_PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    for part in (numba.__version__, numpy.__version__, sys.version, llvm.get_host_cpu_name(),
                 llvm.get_host_cpu_features().flatten(), str(numba.config.CPU_NAME),
                 str(numba.config.CPU_FEATURES)):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _load():
    if os.environ.get("LCSAMPLE_PRECOMPILED", "1") == "0":
        return None, "not used: LCSAMPLE_PRECOMPILED=0"
    if numba.config.DISABLE_JIT:  # the user asked for Python, to debug
        return None, "not used: NUMBA_DISABLE_JIT is set"
    try:
        built = importlib.import_module(f"{__name__}._kernels")
    except ImportError:
        return None, ("not built: the install did not build it (it needs a C compiler; "
                      "`pip install -v` shows why it failed)")
    if not hasattr(built, "built_for_" + build_tag()):
        return None, ("not used: built for other sources, numba, NumPy, Python or CPU; "
                      "reinstall lcsample to rebuild it")
    return built, "in use"


def _module():
    if "module" not in _LOADED:
        _LOADED["module"], _LOADED["status"] = _load()
    return _LOADED["module"]


def status():
    """Whether the ahead-of-time build is in use, and if not, why (a sentence)."""
    _module()
    return _LOADED["status"]


def lookup(function, arg_types):
    """The built entry point for ``function`` with these argument types, or None.

    Parameters
    ----------
    function : Python function
        A kernel's Python function (a dispatcher's ``py_func``), or a loop's.
    arg_types : tuple of numba types

    Returns
    -------
    callable or None
        Not guarded: call it only with arguments of exactly these types (:class:`Guarded`).
    """
    built = _module()
    if built is None:
        return None
    symbol = _TABLE.get((f"{function.__module__}.{function.__qualname__}", tuple(arg_types)))
    return None if symbol is None else getattr(built, symbol)


def type_key(values):
    """What numba's type of each value depends on, cheaply (~0.1 µs an array).

    numba's own fingerprint of a value's type; for values it has none for (a NumPy
    Generator, a function), the value's Python type, which fixes their numba type in the
    built signatures.
    """
    return tuple(_fingerprint(value) for value in values)


def _fingerprint(value):
    try:
        return compute_fingerprint(value)
    except (NotImplementedError, ValueError):
        return type(value)


class Guarded:
    """A built entry point that refuses arguments of other types than it was built for.

    Compiled code trusts its argument types (another layout or dtype would crash the
    process). This checks them against those of the call it was chosen for and raises
    numba's own ``TypeError`` otherwise, so that callers fall back as they do for a
    dispatcher without a matching compilation.

    Parameters
    ----------
    function : callable
        From :func:`lookup`.
    values : tuple
        Arguments of a call whose numba types match the ones it was built for.
    """

    def __init__(self, function, values):
        self._function = function
        self._key = type_key(values)

    def __call__(self, *values):
        if type_key(values) != self._key:
            raise TypeError("No matching definition for argument type(s) in the "
                            "ahead-of-time build")
        return self._function(*values)
