"""Shared statistical helpers for the tests."""

import numpy as np


def batch_means_se(series, n_batches=20):
    """Standard error of the mean of ``series`` (chains, draws) by batch means.

    Each chain is cut into ``n_batches`` consecutive batches; batch means are nearly
    independent once a batch is much longer than the autocorrelation time.
    """
    series = np.asarray(series)
    chains, draws = series.shape
    length = draws // n_batches
    means = series[:, : length * n_batches].reshape(chains, n_batches, length).mean(axis=2)
    return means.std(ddof=1) / np.sqrt(means.size)
