"""Runs that leave memory: Zarr stores written block by block and resumed after a crash.

* :mod:`~lcsample.storage.zarr_store` — the store's layout, writes and safe opening;
* :mod:`~lcsample.storage.slots` — a chain's state as one checksummed vector;
* :mod:`~lcsample.storage.reader` — a finished or partial store as a result or an
  ArviZ object, read lazily.
"""
