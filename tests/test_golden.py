"""Every sampler path reproduces its recorded fixed-seed draws (tests/golden.py) to 1e-12."""

import numpy as np
import pytest
from golden import PATH, cases

GOLDEN = np.load(PATH, allow_pickle=False)
CASES = list(cases())


@pytest.mark.parametrize("name, fn, args", CASES, ids=[c[0] for c in CASES])
def test_golden_draws_are_reproduced(name, fn, args):
    for key, value in fn(*args).items():
        np.testing.assert_allclose(value, GOLDEN[f"{name}/{key}"], rtol=0, atol=1e-12,
                                   err_msg=f"{name}/{key}")
