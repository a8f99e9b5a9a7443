"""Conversion of a SamplingResult to ArviZ 0.x InferenceData or 1.x DataTree."""

import numpy as np

__all__ = ["to_arviz", "arrays_by_group"]


def _split(array, var_names):
    """Map a (chains, draws, d) array to ArviZ variables named by ``var_names``."""
    if isinstance(var_names, str):
        return {var_names: array}
    var_names = list(var_names)
    if len(var_names) != array.shape[-1]:
        raise ValueError(
            f"var_names has {len(var_names)} names but the target has dimension {array.shape[-1]}"
        )
    return {name: array[..., i] for i, name in enumerate(var_names)}


def _variables(array, structure, var_names):
    """The target's variables, constrained, or the split that ``var_names`` asks for."""
    return structure.constrained(array) if var_names is None else _split(array, var_names)


def arrays_by_group(result, var_names=None):
    """The ArviZ groups of ``result`` as plain dicts of arrays with (chain, draw) leading.

    Returns
    -------
    dict
        ``{"posterior": {...}, "sample_stats": {...}}``; ``"unconstrained_posterior"``
        when a variable is transformed (and ``var_names`` is None); the target's
        ``"observed_data"`` and ``"constant_data"`` when it has them; and, when warmup
        was kept, ``"warmup_posterior"`` and ``"warmup_sample_stats"``.
    """
    structure = result.structure
    groups = {
        "posterior": _variables(result.posterior, structure, var_names),
        "sample_stats": dict(result.sample_stats),
    }
    if var_names is None and structure.transformed:
        groups["unconstrained_posterior"] = structure.unconstrained(result.posterior)
    groups.update(structure.data)  # observed_data, constant_data: the model's data
    if result.warmup is not None:
        groups["warmup_posterior"] = _variables(result.warmup["posterior"], structure,
                                                var_names)
        groups["warmup_sample_stats"] = dict(result.warmup["sample_stats"])
    return groups


def _netcdf_safe(attrs):
    """Attributes as types netCDF can store (no None, no bool, no nested containers)."""
    safe = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        elif isinstance(value, np.ndarray):
            value = value.tolist() if value.ndim <= 1 else str(value.tolist())
        safe[key] = value
    return safe


def to_arviz(result, var_names=None, coords=None, dims=None):
    """See :meth:`lcsample.SamplingResult.to_arviz`."""
    import arviz as az

    groups = arrays_by_group(result, var_names)
    if var_names is None:  # the target's dims and coords, then the caller's on top
        coords = {**result.structure.coords, **(coords or {})}
        dims = {**result.structure.dims(), **(dims or {})}
    attrs = _netcdf_safe(result.attrs)
    keep_warmup = result.warmup is not None
    if int(az.__version__.split(".")[0]) >= 1:
        return az.from_dict(
            groups,
            coords=coords,
            dims=dims,
            save_warmup=keep_warmup,
            attrs={"/": attrs, "posterior": attrs, "sample_stats": attrs},
        )
    unconstrained = groups.pop("unconstrained_posterior", None)
    data = az.from_dict(**groups, coords=coords, dims=dims, save_warmup=keep_warmup)
    if unconstrained is not None:  # a group ArviZ 0.x's from_dict has no argument for
        extra = az.from_dict(posterior=unconstrained, coords=coords, dims=dims)
        data.add_groups(unconstrained_posterior=extra.posterior)
    # ArviZ 0.x's from_dict does not write ``attrs`` into the groups: set them directly
    for group in data.groups():
        data[group].attrs.update(attrs)
    return data
