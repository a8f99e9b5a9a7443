"""Compile :data:`~lcsample._aot.exports.EXPORTS` into one extension module (numba's pycc).

Run by ``setup.py`` at install, on the machine that will use it: the code is compiled for
its CPU, as numba's just-in-time compiler would, so that both give the same draws. Takes
~1 min on 2 cores.
"""

import contextlib
import importlib
import os

from numba import types
from numba.core.compiler import Flags
from numba.pycc import CC
from numba.pycc import compiler as pycc_compiler

from . import build_tag
from .exports import EXPORTS

__all__ = ["build"]


class _KernelFlags(Flags):
    """pycc's compile flags with those of lcsample's kernels (:mod:`lcsample._jit`).

    Releasing the GIL lets chains run in parallel threads; NumPy's error model makes a
    division by zero give inf or NaN (which the chain loop flags), not an exception.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release_gil = True
        self.error_model = "numpy"


@contextlib.contextmanager
def _kernel_flags():
    # pycc takes its flags from a class it creates; there is no option for them
    default = pycc_compiler.Flags
    pycc_compiler.Flags = _KernelFlags
    try:
        yield
    finally:
        pycc_compiler.Flags = default


def _python_function(dotted):
    """The Python function behind a kernel's dotted path (through its wrappers)."""
    module, name = dotted.rsplit(".", 1)
    found = getattr(importlib.import_module(module), name)
    found = getattr(found, "kernel", found)  # lcsample._jit.precompiled
    return getattr(found, "py_func", found)  # a numba dispatcher


def _tag_function():
    return 0


def build(path):
    """Compile the exports into the extension module file ``path``.

    Parameters
    ----------
    path : str
        Where the module goes (its file name as ``build_ext`` gives it).
    """
    cc = CC("_kernels")
    cc.output_dir, cc.output_file = os.path.split(os.path.abspath(path))
    cc.target_cpu = "host"
    for export in EXPORTS:
        cc.export(export.symbol, export.returns(*export.args))(_python_function(export.kernel))
    # the module's tag: lcsample._aot uses it only where the tag is the installation's
    cc.export("built_for_" + build_tag(), types.int64())(_tag_function)
    with _kernel_flags():
        cc.compile()
