"""JAX log densities as batched targets: a pytree in, a scalar out, as BlackJAX takes them.

The pytree's leaves become the target's named variables (a dict's keys, nested keys
joined by ``_``); ``jax.value_and_grad`` gives the gradient and ``jax.vmap`` evaluates all
chains in one jitted call per round of the lockstep sampler.
"""

import numpy as np

from .base import BatchedTarget
from .structure import Structure, Variable

__all__ = ["from_jax"]


def _import_jax():
    try:
        import jax
        from jax.flatten_util import ravel_pytree
    except ImportError as err:
        raise ImportError(
            "Target.from_jax needs JAX: pip install 'lcsample[jax]' (or pip install jax)"
        ) from err
    return jax, ravel_pytree


def from_jax(logdensity, example_position, transforms=None, dims=None, coords=None):
    """See :meth:`lcsample.Target.from_jax`."""
    jax, ravel_pytree = _import_jax()
    flat, unravel = ravel_pytree(example_position)
    if flat.size == 0:
        raise ValueError("example_position has no array leaves")
    structure = _structure(jax, example_position, transforms or {}, dims or {}, coords)

    def flat_logdensity(z):
        return logdensity(unravel(z))

    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(flat_logdensity)))

    def logdensity_and_grad_batch(X):
        lp, G = value_and_grad(jax.numpy.asarray(X, dtype=flat.dtype))
        return np.asarray(lp), np.asarray(G)

    logdensity_and_grad_batch.__name__ = getattr(logdensity, "__name__", "logdensity")
    return BatchedTarget(logdensity_and_grad_batch, int(flat.size), variables=structure)


def _structure(jax, example_position, transforms, dims, coords):
    """Variables from the pytree's leaves, in the order ``ravel_pytree`` flattens them."""
    leaves = jax.tree_util.tree_flatten_with_path(example_position)[0]
    names = [_name(path) for path, _ in leaves]
    unknown = (set(transforms) | set(dims)) - set(names)
    if unknown:
        raise ValueError(f"transforms/dims name {sorted(unknown)}, which are not leaves of "
                         f"example_position ({names})")
    variables = [Variable(name, tuple(np.shape(leaf)), transforms.get(name), dims.get(name))
                 for name, (_, leaf) in zip(names, leaves, strict=True)]
    return Structure(variables, coords)


def _name(path):
    """A variable name from a pytree path: dict keys and indices joined by ``_``.

    A bare array is ``x``; characters that cannot be in an identifier become ``_``, and a
    name that would start with a digit (a tuple's leaf) gets an ``x_`` prefix.
    """
    parts = [str(getattr(key, "key", getattr(key, "idx", getattr(key, "name", key))))
             for key in path]
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in "_".join(parts)) or "x"
    return name if name.isidentifier() else f"x_{name}"
