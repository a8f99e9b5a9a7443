"""One BLAS thread while ``sample`` runs: faster with several chain threads, and the
same draws whatever ``cores`` and whatever BLAS thread count the caller set.

The warmup's own linear algebra in the main thread (the mode search, Lanczos, the mass)
is held to one thread too, so that its rounding does not depend on the thread count the
caller left BLAS with: a run and its continuation in another process tune alike.

A target that calls BLAS inside its log density (the built-in regressions' matrix-vector
products over the rows) makes OpenBLAS start a thread per core at every call; with two
or more chains in parallel threads those pools fight over the same cores. Measured on a
logistic regression of 10⁵ rows, d = 10 (4 chains, ``cores=2``, 2 cores, 200 draws after
100 warmup steps): 10.6 s with OpenBLAS's default, 5.8 s with one BLAS thread.

The limit holds for one chain thread too: a threaded BLAS splits the sums of a
transposed product between its threads, so its rounding (measured: 1e-12 in the draws)
would otherwise depend on how many chain threads run, and ``cores`` would change the
draws. One BLAS thread is also what a Dask worker runs with. A single chain on a large
BLAS-bound target gives up BLAS's own threads for that.

The limit uses ``threadpoolctl`` when it is installed (scikit-learn brings it); without
it BLAS keeps its own setting, and ``OPENBLAS_NUM_THREADS=1`` does the same from the
environment.
"""

import contextlib

__all__ = ["one_blas_thread"]


@contextlib.contextmanager
def one_blas_thread():
    """Limit BLAS to one thread (per calling thread's library pool) inside the block."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
