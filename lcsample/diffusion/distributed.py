"""``lcsample.diffusion.sample(..., executor=...)``: the samples drawn in chunks on workers.

Sample i has its own random stream whatever batch it is drawn in (and a Picard window
converges sample by sample), so the samples split into contiguous chunks, one per worker
thread, each drawn by :func:`lcsample.diffusion.sample` with ``first_sample`` at its
offset, are the samples of one local call, bit for bit. The score travels to the workers
by pickle with each chunk: a cluster must be one you trust.
"""

import time
import warnings

import numpy as np

from .._executors import submit, worker_count
from .picard import unconverged_message

__all__ = ["sample_in_chunks"]


def sample_in_chunks(sample, executor, args):
    """Draw ``args["num_samples"]`` samples as chunks on ``executor``'s workers.

    Parameters
    ----------
    sample : callable
        :func:`lcsample.diffusion.sample` (passed in: this module is imported by it).
    executor : dask.distributed.Client or concurrent.futures.Executor
    args : dict
        The arguments of the call, validated.

    Returns
    -------
    samples : ndarray, shape (num_samples, dim)
    info : dict
        As a local call's: ``nfe`` summed over the chunks, ``rounds`` their largest
        (the chunks run side by side), ``time`` the wall time here, Picard windows merged
        (rounds the largest, converged only if every chunk's was), and ``chunks``.
    """
    t0 = time.perf_counter()
    n, first = args["num_samples"], args["first_sample"]
    x_init = None if args["x_init"] is None else np.asarray(args["x_init"], dtype=np.float64)
    edges = np.linspace(0, n, min(n, worker_count(executor)) + 1).round().astype(int)
    futures = []
    args = {k: v for k, v in args.items() if k != "backend"}  # chosen again on the worker
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        chunk = {**args, "num_samples": int(b - a), "first_sample": first + int(a),
                 "x_init": None if x_init is None else x_init[a:b], "progressbar": False,
                 "executor": None}
        futures.append(submit(executor, _quiet, sample, chunk))
    parts = [f.result() for f in futures]  # a worker's error is raised here, by name
    x = np.concatenate([p[0] for p in parts])
    infos = [p[1] for p in parts]
    info = {**infos[0], "nfe": sum(i["nfe"] for i in infos),
            "rounds": max(i["rounds"] for i in infos), "time": time.perf_counter() - t0,
            "interrupted": any(i["interrupted"] for i in infos), "chunks": len(parts)}
    info["nfe_per_sample"] = info["nfe"] / n
    if "windows" in info:
        _merge_windows(info, infos, args["max_rounds"])
    return x, info


def _quiet(sample, chunk):
    """One chunk on a worker; its warnings are the caller's to give (once, merged)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sample(**chunk)


def _merge_windows(info, infos, max_rounds):
    """Picard windows over all chunks; the unconverged warning of a local call, if due."""
    windows = []
    for parts in zip(*(i["windows"] for i in infos), strict=True):
        windows.append({"rounds": max(w["rounds"] for w in parts),
                        "converged": all(w["converged"] for w in parts),
                        "unconverged_samples": sum(w["unconverged_samples"] for w in parts),
                        "residuals": max((w["residuals"] for w in parts), key=len)})
    info.update(windows=windows, window_rounds=np.array([w["rounds"] for w in windows]),
                converged=all(w["converged"] for w in windows))
    bad = [w for w in windows if not w["converged"]]
    if bad:  # samples with an unconverged window: at least the most of any one window
        n = sum(max(w["unconverged_samples"] for w in i["windows"]) for i in infos)
        warnings.warn(unconverged_message(bad, n, info["tolerance"], max_rounds),
                      RuntimeWarning, stacklevel=4)
