"""Small real data sets shipped with lcsample."""

from importlib import resources

import numpy as np

__all__ = ["load_german_credit"]


def load_german_credit():
    """German credit (UCI Statlog, numeric version) as a logistic-regression design.

    Features are standardised with their mean and population standard deviation, and a
    column of ones is appended last, as in inference_gym's
    ``GermanCreditNumericLogisticRegression``; the label is 1 for bad credit.

    Returns
    -------
    X : ndarray, shape (1000, 25)
    y : ndarray, shape (1000,)

    Notes
    -----
    Hofmann, H. (1994). Statlog (German Credit Data). UCI Machine Learning Repository
    (Dua and Graff), CC BY 4.0.
    """
    with resources.files(__name__).joinpath("german_credit.csv").open() as f:
        raw = np.loadtxt(f, delimiter=",", comments="#")
    features = raw[:, :-1]
    standardized = (features - features.mean(axis=0)) / features.std(axis=0)
    X = np.column_stack([standardized, np.ones(raw.shape[0])])
    y = raw[:, -1] - 1.0
    return X, y
