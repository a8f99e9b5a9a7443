"""The numba options used by lcsample, kept in one place."""

from numba import njit

#: Function-free kernels: compiled once and cached on disk.
kernel = njit(cache=True, nogil=True, error_model="numpy")

#: Drivers that take a user's jitted function as an argument. Numba cannot cache a
#: function that receives another dispatcher, so these compile once per process and
#: target; they stay thin and call the cached kernels for the arithmetic.
#: ``nogil`` lets chains run in parallel Python threads.
driver = njit(cache=False, nogil=True, error_model="numpy")
