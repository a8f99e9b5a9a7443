"""Install-time build of lcsample's kernels, compiled ahead of time (lcsample/_aot).

Everything else is declared in setup.cfg. The extension is optional: without a C compiler
(or numba's pycc) the install goes on and the kernels compile on first use instead.
"""

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError

_SOURCE = Path(__file__).resolve().parent / "lcsample"


def _package_without_init():
    """Import lcsample's submodules from this source tree without running its
    ``__init__`` (which needs runtime-only dependencies such as ArviZ)."""
    spec = importlib.machinery.ModuleSpec("lcsample", None, is_package=True)
    spec.submodule_search_locations = [str(_SOURCE)]
    sys.modules["lcsample"] = importlib.util.module_from_spec(spec)


class BuildKernels(build_ext):
    """``build_ext`` that compiles the kernels with numba instead of a C source."""

    def build_extension(self, ext):
        _package_without_init()
        try:
            from lcsample._aot.build import build

            build(self.get_ext_fullpath(ext.name))
        except Exception as err:  # any failure: the JIT fallback still works
            raise CompileError(f"lcsample's ahead-of-time kernels were not built: {err}") from err
        finally:
            for name in [m for m in sys.modules if m == "lcsample" or m.startswith("lcsample.")]:
                del sys.modules[name]


setup(
    ext_modules=[Extension("lcsample._aot._kernels", sources=[], optional=True)],
    cmdclass={"build_ext": BuildKernels},
)
