"""A store read back lazily: as ArviZ data (:func:`open_store`) or as a run's records.

Nothing is read into memory until asked for: the arrays come back as Dask arrays over the
store's chunks (one block of one chain each), so a store larger than memory opens at once
and ``.mean()``, ArviZ's ``summary`` or a plot read it block by block.
"""

import numpy as np

from .zarr_store import STATE_GROUP, STATS, open_checked

__all__ = ["lazy_records", "open_store"]


def lazy_records(store, n_kept=None, prefix=""):
    """The records of a :class:`RunStore`'s first ``n_kept`` draws (all: None), lazily.

    ``prefix``: ``"warmup_"`` for the warmup's groups.

    Returns
    -------
    dict of dask.array.Array
        ``posterior`` (chains, n_kept, d), the unconstrained coordinates the sampler moved,
        and each of :data:`~lcsample.storage.zarr_store.STATS` (chains, n_kept).
    """
    import dask.array as da

    structure = store.structure
    group = store.root[prefix + ("unconstrained_posterior" if structure.transformed
                                 else "posterior")]
    parts = []
    for v in structure.variables:
        values = da.from_zarr(group[v.name])[:, :n_kept]
        parts.append(values.reshape(*values.shape[:2], int(np.prod(v.shape))))
    records = {"posterior": da.concatenate(parts, axis=-1)}
    stats = store.root[prefix + "sample_stats"]
    records.update({name: da.from_zarr(stats[name])[:, :n_kept] for name in STATS})
    return records


def open_store(path):
    """A run's store as ArviZ data, read lazily: ``DataTree`` (ArviZ 1.x) or
    ``InferenceData`` (0.x).

    Parameters
    ----------
    path : str or os.PathLike
        A store written by ``lcsample.sample(..., store=path)``, finished or not (a run
        still going or killed has NaN where its draws are not written yet;
        ``attrs["complete"]`` is absent until it finishes).

    Returns
    -------
    xarray.DataTree or arviz.InferenceData
        The groups ``posterior``, ``sample_stats`` and the others the run wrote, as Dask
        arrays; the resume state is left out.

    Raises
    ------
    ValueError
        Not an lcsample store, or an array with a type or codec lcsample does not write
        (nothing is read from such a store).
    """
    import arviz as az
    import xarray as xr

    root = open_checked(path)
    names = [name for name, _ in root.groups() if name != STATE_GROUP]
    groups = {name: xr.open_zarr(path, group=name, consolidated=False, chunks={})
              for name in names}
    attrs = {k: v for k, v in root.attrs.items() if not isinstance(v, dict)}
    if int(az.__version__.split(".")[0]) >= 1:
        tree = xr.DataTree.from_dict(groups)
        tree.attrs.update(attrs)
        return tree
    data = az.InferenceData(**groups)
    return data
