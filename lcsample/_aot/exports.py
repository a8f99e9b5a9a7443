"""What the ahead-of-time build compiles: the kernels of a default run, for fixed types.

Each entry names a kernel by its dotted path and gives the argument types it is built
for. The types come from :func:`numba.typeof` on example values shaped like the ones the
sampler passes, so they equal what :mod:`lcsample._jit` computes at a call.

The chain loop takes the target's function as a first-class function, typed by the types
of ``args``. It is built for the built-in targets' ``args`` and for a few common shapes of
a user's data (none, one vector, one scalar, a matrix and a vector, two vectors); a target
with other ``args`` types compiles the loop on its first run, as without this build.
"""

from typing import NamedTuple

import numba
import numpy as np
from numba import types

__all__ = ["EXPORTS", "TARGET_ARGS", "Export"]

_VECTOR, _MATRIX = np.empty(1), np.empty((1, 1))

#: ``args`` of the targets the chain loop is built for, by what they are.
TARGET_ARGS = {
    "logistic and Poisson regression": (_MATRIX, _MATRIX, _VECTOR, 0.0),
    "linear regression": (_MATRIX, _MATRIX, _VECTOR, 0.0, 0.0, 0.0),
    "Gaussian": (_VECTOR, _MATRIX, 0.0),
    "no data": (),
    "one vector": (_VECTOR,),
    "one scalar": (0.0,),
    "a matrix and a vector": (_MATRIX, _VECTOR),
    "two vectors": (_VECTOR, _VECTOR),
}


class Export(NamedTuple):
    """One compiled entry point.

    Attributes
    ----------
    symbol : str
        Its name in the built extension module.
    kernel : str
        Dotted path of the Python function or kernel it compiles.
    args : tuple of numba types
    returns : numba type
    """

    symbol: str
    kernel: str
    args: tuple
    returns: object


def _typeof(values):
    return tuple(numba.typeof(value) for value in values)


def _chain_loop_args(target_args):
    """Types of :func:`lcsample.kernels.compiled.run_chain`'s arguments for a target."""
    vector = types.float64[::1]
    fn = types.FunctionType(types.float64(vector, vector, *_typeof(target_args)))
    rng = np.random.default_rng(0)
    precond = (_VECTOR, _MATRIX, _MATRIX)  # InverseMass.kernel_args: u, chol, dense
    rest = (0, 0.1, 1.0, precond, None, 1, _VECTOR, _VECTOR, _VECTOR, _VECTOR, 0.0, rng,
            _MATRIX, _VECTOR, _VECTOR)
    return (fn, numba.typeof(target_args), *_typeof(rest))


def _exports():
    vector, matrix = types.float64[::1], types.float64[:, ::1]
    rng = numba.typeof(np.random.default_rng(0))
    found = [
        Export("fresh_velocity", "lcsample.kernels.step.fresh_velocity",
               (rng, vector, matrix, matrix, matrix, vector), types.none),
        Export("rmd_averaged_maps", "lcsample.kernels.exact._rmd_averaged_maps",
               _typeof((0.0, 0.0, 0.0, 0.0, _VECTOR, _VECTOR, True)),
               types.UniTuple(matrix, 2)),
        Export("geyer_ess", "lcsample.mcmc.convergence._geyer_ess", (matrix, types.int64),
               vector),
    ]
    for k, target_args in enumerate(TARGET_ARGS.values()):
        found.append(Export(f"run_chain_{k}", "lcsample.kernels.compiled._run_chain",
                            _chain_loop_args(target_args),
                            types.Tuple((types.int64, types.float64, types.int64))))
    return tuple(found)


#: Everything the build compiles, in a fixed order.
EXPORTS = _exports()
