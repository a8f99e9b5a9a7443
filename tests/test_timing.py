"""``timing`` accounts for the wall time of ``sample()`` (issue 14, item 5)."""

import time

import lcsample


def test_the_parts_of_timing_add_up_to_the_wall_time_of_sample():
    X, y = lcsample.datasets.load_german_credit()
    target = lcsample.targets.LogisticRegression(X, y)
    lcsample.sample(target, draws=10, tune=20, seed=0, progressbar=False)  # caches warm
    start = time.perf_counter()
    result = lcsample.sample(target, seed=0, progressbar=False)
    wall = time.perf_counter() - start
    parts = {k: v for k, v in result.timing.items() if k != "total"}
    assert set(parts) == {"compile", "initialization", "warmup", "sampling", "checks"}
    assert all(v >= 0 for v in parts.values())
    assert abs(result.timing["total"] - wall) < 0.05 * wall
    assert abs(sum(parts.values()) - wall) < 0.05 * wall
    assert result.attrs["total_time"] == result.timing["total"]
