"""Where a diffusion run's samples live: NumPy on the host, or PyTorch tensors on a device.

The predictors, the corrector and the Picard windows are written once over the few
operations below. Everything that is a function of the grid alone — step coefficients,
noise scales, the per-sample random numbers from the samples' NumPy streams — is
computed on the host in float64 and moved to the samples' device in one transfer per
step (:meth:`NumpyBackend.put`); the samples themselves never leave the device inside
the loop. The only device-to-host traffic is a per-row flag vector per score call (the
finiteness check) and per Picard round (the residuals): one synchronisation each.

PyTorch is imported only when a run asks for it (``device=``, ``dtype=`` or a tensor
``x_init``); it is the optional extra ``lcsample[torch]``.
"""

import sys

import numpy as np

__all__ = ["NumpyBackend", "TorchBackend", "backend_of", "choose_backend", "import_torch",
           "is_tensor", "namespace"]


class NumpyBackend:
    """float64 NumPy arrays on the host."""

    name = "numpy"
    device = "cpu"
    itemsize = 8

    def put(self, a):
        """Host values as a working array (here: float64 NumPy)."""
        return np.asarray(a, dtype=np.float64)

    def copy(self, x):
        return x.copy()

    def full_like(self, x, value):
        return np.full_like(x, value)

    def concat(self, arrays):
        return np.concatenate(arrays)

    def rows(self, mask):
        """A host boolean mask (n,) as an index for working arrays."""
        return mask

    def finite_rows(self, *arrays):
        """Rows (host bool, (n,)) finite in every one of the (n, d) ``arrays``."""
        ok = np.isfinite(arrays[0]).all(axis=1)
        for a in arrays[1:]:
            ok &= np.isfinite(a).all(axis=1)
        return ok

    def rows_equal(self, a, b):
        """(Q, n) host bool: row j of a[q] equals row j of b[q], for stacked lists."""
        return np.array([(p == q).all(axis=1) for p, q in zip(a, b, strict=True)])

    def row_rms(self, a, b):
        """(Q, n) host float: RMS over coordinates of a[q] - b[q], for stacked lists."""
        return np.array([np.sqrt(np.mean((p - q) ** 2, axis=1)) for p, q in zip(a, b, strict=True)])


class TorchBackend(NumpyBackend):
    """``torch.Tensor`` samples of one dtype on one device."""

    name = "torch"

    def __init__(self, device=None, dtype=None):
        torch = import_torch()
        self.torch = torch
        try:
            self.device = torch.device("cpu" if device is None else device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device must be a torch device or its name, got {device!r}") from err
        self.dtype = torch.float32 if dtype is None else _torch_dtype(torch, dtype)
        self.itemsize = torch.finfo(self.dtype).bits // 8

    def put(self, a):
        return self.torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=self.dtype,
                                    device=self.device)

    def copy(self, x):
        return x.clone()

    def full_like(self, x, value):
        return self.torch.full_like(x, value)

    def concat(self, arrays):
        return self.torch.cat(arrays)

    def rows(self, mask):
        return self.torch.as_tensor(mask, device=self.device)

    def finite_rows(self, *arrays):
        ok = self.torch.isfinite(arrays[0]).all(dim=1)
        for a in arrays[1:]:
            ok &= self.torch.isfinite(a).all(dim=1)
        return ok.cpu().numpy()

    def rows_equal(self, a, b):
        return (self.torch.stack(a) == self.torch.stack(b)).all(dim=2).cpu().numpy()

    def row_rms(self, a, b):
        diff = self.torch.stack(a) - self.torch.stack(b)
        return diff.square().mean(dim=2).sqrt().double().cpu().numpy()


def import_torch():
    """``torch``, or an ImportError naming the extra that installs it."""
    try:
        import torch
    except ImportError as err:
        raise ImportError("PyTorch tensors need the torch extra: pip install 'lcsample[torch]' "
                          "(CPU build: pip install torch==2.13.0)") from err
    return torch


def _torch_dtype(torch, dtype):
    """float32 or float64 as a torch dtype, from a torch dtype or its name."""
    allowed = {"float32": torch.float32, "float64": torch.float64}
    dtype = allowed.get(dtype, dtype)
    if dtype not in allowed.values():
        raise ValueError(f"dtype must be torch.float32 or torch.float64 (the sampler's state; "
                         f"the model may compute in another precision), got {dtype!r}")
    return dtype


def is_tensor(x):
    """Whether ``x`` is a torch.Tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def backend_of(x):
    """The backend of a working array: NumPy for ndarrays, torch for tensors."""
    if is_tensor(x):
        return TorchBackend(x.device, x.dtype)
    return NumpyBackend()


def choose_backend(device, dtype, x_init):
    """The backend :func:`lcsample.diffusion.sample` runs on.

    torch when ``device`` or ``dtype`` is given or ``x_init`` is a tensor (its device and
    dtype are the defaults then); NumPy float64 otherwise.
    """
    if device is None and dtype is None and not is_tensor(x_init):
        return NumpyBackend()
    if is_tensor(x_init):
        device = x_init.device if device is None else device
        dtype = x_init.dtype if dtype is None else dtype
    backend = TorchBackend(device, dtype)
    try:
        backend.torch.empty(0, device=backend.device)  # an absent device fails here
    except (RuntimeError, AssertionError) as err:
        raise ValueError(f"device={device!r} is not available here: {err}") from err
    return backend


def namespace(t):
    """The array module of ``t``: torch for tensors, NumPy (as float64) otherwise.

    Returns (module, t) so that formulas like ``xp.expm1(-2 * t)`` serve both.
    """
    if is_tensor(t):
        return sys.modules["torch"], t
    return np, np.asarray(t, dtype=np.float64)
