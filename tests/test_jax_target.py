"""JAX log densities (issue 14, item 3): the same draws as the NumPy function they mirror,
names and shapes from the pytree, float32 handled."""

import numpy as np
import pytest

import lcsample

jax = pytest.importorskip("jax", reason="the [jax] extra is not installed")
jnp = jax.numpy
QUIET = dict(progressbar=False, compute_convergence_checks=False)


@pytest.fixture
def x64():
    """Double precision for the test, restored after it (the setting is global)."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def _data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 3))
    y = (X @ np.array([1.0, -1.0, 0.5]) + rng.logistic(size=60) > 0).astype(float)
    return X, y


def test_a_jax_target_gives_the_draws_of_the_same_numpy_function(x64):
    # logistic regression with a N(0, 1) prior on w and a log-normal scale s = exp(log_s)
    # on the intercept: once in JAX on a dict, once in NumPy on rows
    X, y = _data()

    def logdensity(p):
        logits = X @ p["w"] + jnp.exp(p["s"]) * 0.3
        return (jnp.sum(y * logits - jnp.logaddexp(0.0, logits)) - 0.5 * jnp.sum(p["w"] ** 2)
                - 0.5 * p["s"] ** 2)

    def batch(Z):  # columns as ravel_pytree orders the dict: s, then w
        s, W = Z[:, 0], Z[:, 1:]
        logits = W @ X.T + 0.3 * np.exp(s)[:, None]
        resid = y - 1.0 / (1.0 + np.exp(-logits))
        lp = (np.sum(y * logits - np.logaddexp(0.0, logits), axis=1)
              - 0.5 * np.sum(W ** 2, axis=1) - 0.5 * s ** 2)
        G = np.column_stack([0.3 * np.exp(s) * resid.sum(axis=1) - s, resid @ X - W])
        return lp, G

    target = lcsample.Target.from_jax(logdensity, {"w": jnp.zeros(3), "s": jnp.zeros(())},
                                      transforms={"s": "log"})
    assert target.structure.labels() == ["s", "w[0]", "w[1]", "w[2]"]
    reference = lcsample.Target.from_batch(batch, 4)
    kwargs = dict(draws=60, tune=60, chains=2, seed=5, **QUIET)
    a, b = lcsample.sample(target, **kwargs), lcsample.sample(reference, **kwargs)
    np.testing.assert_allclose(a.posterior, b.posterior, rtol=0, atol=1e-8)
    np.testing.assert_allclose(a.constrained()["s"], np.exp(b.posterior[:, :, 0]), rtol=1e-8)


def test_names_shapes_and_dims_come_from_the_pytree():
    position = {"beta": {"slope": jnp.zeros((2, 2)), "icpt": jnp.zeros(())},
                "pair": (jnp.zeros(()), jnp.zeros(3))}
    target = lcsample.Target.from_jax(lambda p: 0.0, position,
                                      dims={"pair_1": ("group",)},
                                      coords={"group": ["a", "b", "c"]})
    names = [v.name for v in target.structure.variables]
    assert names == ["beta_icpt", "beta_slope", "pair_0", "pair_1"]
    assert [v.shape for v in target.structure.variables] == [(), (2, 2), (), (3,)]
    assert target.structure.dims() == {"pair_1": ["group"]} and target.dim == 9
    assert lcsample.Target.from_jax(lambda x: 0.0, jnp.zeros(2)).structure.labels() == \
        ["x[0]", "x[1]"]
    with pytest.raises(ValueError, match="not leaves"):
        lcsample.Target.from_jax(lambda p: 0.0, position, transforms={"tau": "log"})


def test_float32_jax_samples_a_gaussian_within_its_error():
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        target = lcsample.Target.from_jax(lambda p: -0.5 * jnp.sum((p - 1.0) ** 2),
                                          jnp.zeros(2, dtype=jnp.float32))
        res = lcsample.sample(target, draws=2000, seed=0, **QUIET)
    finally:
        jax.config.update("jax_enable_x64", before)
    assert target.output_eps == float(np.finfo(np.float32).eps)
    flat = res.posterior.reshape(-1, 2)
    # batch-means standard error over 40 blocks of each chain
    blocks = res.posterior.reshape(4, 40, -1, 2).mean(axis=2).reshape(-1, 2)
    se = blocks.std(axis=0, ddof=1) / np.sqrt(len(blocks))
    assert np.all(np.abs(flat.mean(axis=0) - 1.0) < 4 * se)
