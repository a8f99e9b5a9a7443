"""PyMC models through lcsample.from_pymc: PyMC's own log density and gradient to 1e-10,
the posterior of a posteriordb model equal to a hand-written numba target's, named
variables, dims, deterministics and transforms in ArviZ, and clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

pm = pytest.importorskip("pymc", reason="the [pymc] extra is not installed")

import pytensor  # noqa: E402  (after the skip: installed with pymc)
import pytensor.tensor as pt  # noqa: E402

import lcsample  # noqa: E402
from lcsample.targets.pymc_model import from_pymc  # noqa: E402

DATA = Path(__file__).parent / "data"
QUIET = dict(progressbar=False, compute_convergence_checks=False)
EIGHT_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
EIGHT_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def normal_model(y=None):
    y = np.random.default_rng(0).normal(1.0, 2.0, size=20) if y is None else y
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 10.0)
        sigma = pm.HalfNormal("sigma", 5.0)
        pm.Normal("y", mu, sigma, observed=y)
    return model


def logistic_model():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = (rng.random(40) < 1 / (1 + np.exp(-X @ [1.0, -1.0, 0.5]))).astype(int)
    with pm.Model(coords={"predictor": ["a", "b", "c"], "obs": np.arange(40)}) as model:
        alpha = pm.Normal("alpha", 0.0, 2.0)
        beta = pm.Normal("beta", 0.0, 1.0, dims="predictor")
        eta = pm.Deterministic("eta", alpha + pm.math.dot(X, beta), dims="obs")
        pm.Bernoulli("y", logit_p=eta, observed=y, dims="obs")
    return model


def eight_schools_model():
    with pm.Model(coords={"school": list("ABCDEFGH")}) as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        z = pm.Normal("z", 0.0, 1.0, dims="school")
        theta = pm.Deterministic("theta", mu + tau * z, dims="school")
        pm.Normal("y", theta, sigma=EIGHT_SIGMA, observed=EIGHT_Y, dims="school")
    return model


def bounded_model():
    k = np.random.default_rng(2).binomial(20, 0.3, size=10)
    with pm.Model() as model:
        p = pm.Beta("p", 2.0, 2.0)
        u = pm.Uniform("u", -1.0, 3.0, shape=2)
        pm.Binomial("k", 20, p, observed=k)
        pm.Normal("obs", u, 1.0, observed=[0.5, 2.5])
    return model


MODELS = {"normal": normal_model, "logistic": logistic_model,
          "eight_schools": eight_schools_model, "bounded": bounded_model}
_COMPILED = {}


def compiled(name):
    """(model, target), compiled once per test session: compiling takes seconds."""
    if name not in _COMPILED:
        model = MODELS[name]()
        _COMPILED[name] = model, from_pymc(model)
    return _COMPILED[name]


def as_point(model, target, x):
    """A flat unconstrained vector as PyMC's point dict (value-variable names)."""
    parts = target.structure.unconstrained(x[None, :])
    return {model.rvs_to_values[rv].name: parts[rv.name][0] for rv in model.free_RVs}


@pytest.mark.parametrize("name", list(MODELS))
def test_logp_and_gradient_equal_pymcs(name):
    model, target = compiled(name)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    rng = np.random.default_rng(0)
    for x in target.initial_point + rng.normal(scale=0.7, size=(5, target.dim)):
        lp, grad = target.logdensity_and_gradient(x)
        point = as_point(model, target, x)
        np.testing.assert_allclose(lp, logp(point), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-10, atol=1e-10)


def test_structure_follows_the_model():
    model, target = compiled("eight_schools")
    assert [(v.name, v.shape, v.dims) for v in target.structure.variables] == [
        ("mu", (), None), ("tau", (), None), ("z", (8,), ("school",))]
    assert [v.transform for v in target.structure.variables] == [
        lcsample.transforms.Identity(), lcsample.transforms.Log(),
        lcsample.transforms.Identity()]
    assert [(v.name, v.shape, v.dims) for v in target.structure.derived] == [
        ("theta", (8,), ("school",))]
    assert target.structure.coords == {"school": list("ABCDEFGH")}
    point = model.initial_point()
    np.testing.assert_array_equal(target.initial_point, np.concatenate(
        [np.ravel(point[v.name]) for v in model.value_vars]))
    np.testing.assert_array_equal(target.structure.data["observed_data"]["y"], EIGHT_Y)
    assert target.structure.data_dims == {"y": ["school"]}
    _, bounded = compiled("bounded")
    assert [v.transform for v in bounded.structure.variables] == [
        lcsample.transforms.Logit(), lcsample.transforms.Interval(-1.0, 3.0)]


def test_data_are_arguments():
    """The function compiled for one data set gives another data set's log density."""
    model, target = compiled("normal")
    y2 = np.random.default_rng(5).normal(size=20)
    logp2 = normal_model(y2).compile_logp()
    x = np.array([0.3, 0.2])
    lp = target.logdensity_and_grad(x, np.empty(2), y2)
    np.testing.assert_allclose(lp, logp2(as_point(model, target, x)), rtol=1e-10)


def test_pm_data_are_constant_data():
    with pm.Model() as model:
        x = pm.Data("x", np.linspace(0.0, 1.0, 5))
        b = pm.Normal("b")
        pm.Normal("y", b * x, 1.0, observed=np.ones(5))
    target = from_pymc(model)
    data = target.structure.data
    np.testing.assert_array_equal(data["constant_data"]["x"], np.linspace(0.0, 1.0, 5))
    assert list(data["observed_data"]) == ["y"]
    groups = lcsample.sample(target, draws=20, tune=20, chains=2, seed=0, progressbar=False,
                             compute_convergence_checks=False).to_arviz()
    np.testing.assert_array_equal(groups["observed_data"]["y"].values, np.ones(5))
    np.testing.assert_array_equal(groups["constant_data"]["x"].values, data["constant_data"]["x"])


def test_compiled_without_fastmath():
    # inspect_llvm needs code compiled here, not loaded from a disk cache
    with pytensor.config.change_flags(numba__cache=False):
        target = from_pymc(normal_model(np.array([0.5, 1.5])), cache=False)
    assert pytensor.config.numba__fastmath  # the flag is only changed while compiling
    target.compile()
    llvm = "".join(target.logdensity_and_grad.inspect_llvm().values())
    assert "sqrt" in llvm or "fmul" in llvm  # the graph's code is in there
    assert "reassoc" not in llvm and "afn" not in llvm


# ---- a posteriordb posterior, once from PyMC and once written by hand -------------------


def _blr_data():
    data = json.loads((DATA / "posteriordb_sblrc.json").read_text())
    return np.array(data["X"], dtype=float), np.array(data["y"], dtype=float)


def blr_pymc(X, y):
    """posteriordb sblrc-blr: beta ~ N(0, 10), sigma ~ N+(0, 10), y ~ N(X beta, sigma)."""
    with pm.Model(coords={"coef": np.arange(X.shape[1])}) as model:
        beta = pm.Normal("beta", 0.0, 10.0, dims="coef")
        sigma = pm.HalfNormal("sigma", 10.0)
        pm.Normal("y", pm.math.dot(X, beta), sigma, observed=y)
    return model


@numba.njit
def blr_hand(x, grad_out, X, y):
    """The same log density on (beta, log sigma), up to a constant."""
    beta, tau = x[:-1], x[-1]
    r = y - X @ beta
    s2 = np.exp(-2.0 * tau)
    grad_out[:-1] = -beta / 100.0 + s2 * (X.T @ r)
    grad_out[-1] = -np.exp(2.0 * tau) / 100.0 + 1.0 - y.size + s2 * (r @ r)
    return (-0.5 * (beta @ beta) / 100.0 - 0.5 * np.exp(2.0 * tau) / 100.0 + tau
            - y.size * tau - 0.5 * s2 * (r @ r))


def _batch_means(draws, n_batches=20):
    """Mean and its batch-means standard error per column; draws (chains, n, k)."""
    chains, n, k = draws.shape
    size = n // n_batches
    batches = draws[:, : size * n_batches].reshape(chains * n_batches, size, k).mean(axis=1)
    return draws.mean(axis=(0, 1)), batches.std(axis=0, ddof=1) / np.sqrt(len(batches))


def _same_moments(a, b):
    """Means and variances of draws a, b (chains, n, k) agree within 5 combined MCSEs."""
    for moment in (lambda d: d, lambda d: (d - d.mean(axis=(0, 1))) ** 2):
        mean_a, se_a = _batch_means(moment(a))
        mean_b, se_b = _batch_means(moment(b))
        assert np.all(np.abs(mean_a - mean_b) < 5 * np.hypot(se_a, se_b)), (mean_a, mean_b)


def test_posteriordb_blr_matches_the_hand_written_target():
    X, y = _blr_data()
    model = blr_pymc(X, y)
    target = from_pymc(model)
    hand = lcsample.Target(blr_hand, 6, args=(X, y), variables=[
        lcsample.Variable("beta", (5,)), lcsample.Variable("sigma", (), "log")])
    # the same parameterization: equal gradients, log densities equal up to a constant
    rng = np.random.default_rng(0)
    diffs = []
    for x in target.initial_point + rng.normal(scale=0.1, size=(3, 6)):
        lp, grad = target.logdensity_and_gradient(x)
        lp_hand, grad_hand = hand.logdensity_and_gradient(x)
        np.testing.assert_allclose(grad, grad_hand, rtol=1e-9, atol=1e-6)
        diffs.append(lp - lp_hand)
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-7)

    ours = lcsample.sample(target, draws=1500, chains=4, seed=1, **QUIET)
    theirs = lcsample.sample(hand, draws=1500, chains=4, seed=2, **QUIET)
    _same_moments(ours.posterior, theirs.posterior)
    values = ours.constrained()
    assert values["beta"].shape == (4, 1500, 5) and (values["sigma"] > 0).all()
    sigma_hand = np.exp(theirs.posterior[..., -1:])
    mean, se = _batch_means(values["sigma"][..., None])
    mean_hand, se_hand = _batch_means(sigma_hand)
    assert abs(mean - mean_hand)[0] < 5 * np.hypot(se, se_hand)[0]


# ---- ArviZ output, starting values ----------------------------------------------------------


def test_to_arviz_has_names_dims_coords_and_deterministics():
    _, target = compiled("eight_schools")
    idata = lcsample.sample(target, draws=100, chains=2, seed=0, **QUIET).to_arviz()
    posterior = idata["posterior"]
    assert set(posterior.data_vars) == {"mu", "tau", "z", "theta"}
    assert posterior["theta"].dims == ("chain", "draw", "school")
    assert list(posterior["school"].values) == list("ABCDEFGH")
    assert (posterior["tau"].values > 0).all()
    np.testing.assert_allclose(posterior["theta"].values, posterior["mu"].values[..., None]
                               + posterior["tau"].values[..., None] * posterior["z"].values)
    unconstrained = idata["unconstrained_posterior"]
    np.testing.assert_allclose(np.exp(unconstrained["tau"].values), posterior["tau"].values)


def test_named_initial_positions():
    _, target = compiled("normal")
    np.testing.assert_allclose(target.structure.flatten({"mu": 0.5, "sigma": 2.0}),
                               [0.5, np.log(2.0)])
    result = lcsample.sample(target, draws=10, chains=2, seed=0, tune=10,
                             initial_positions={"mu": 0.5, "sigma": 2.0}, **QUIET)
    assert np.isfinite(result.posterior).all()
    with pytest.raises(ValueError, match="sigma.*outside the support"):
        lcsample.sample(target, draws=10, chains=2, initial_positions={"mu": 0.5, "sigma": -1.0},
                        **QUIET)
    _, bounded = compiled("bounded")
    with pytest.raises(ValueError, match="'u'.*outside the support"):
        bounded.structure.flatten({"p": 0.5, "u": np.array([0.0, 3.5])})


def test_other_transforms_constrain_but_refuse_named_starts():
    with pm.Model() as model:
        pm.Normal("o", 0.0, 3.0, shape=3, transform=pm.distributions.transforms.ordered,
                  initval=[-1.0, 0.0, 1.0])
        pm.Dirichlet("w", np.ones(3))
    target = from_pymc(model)
    assert [v.shape for v in target.structure.variables] == [(3,), (2,)]
    values = target.structure.constrained(target.initial_point)
    np.testing.assert_allclose(values["o"], [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(values["w"], np.full(3, 1 / 3))
    with pytest.raises(ValueError, match="'o'.*'ordered'.*flat unconstrained"):
        target.structure.flatten({"o": np.array([-1.0, 0.0, 1.0]), "w": np.zeros(2)})


# ---- errors -----------------------------------------------------------------------------------


def test_discrete_free_variable_is_refused():
    with pm.Model() as model:
        pm.Poisson("n", 3.0)
        pm.Normal("x")
    with pytest.raises(ValueError, match="'n' is discrete"):
        from_pymc(model)


class _Twice(pytensor.graph.op.Op):
    """An Op with no numba implementation: PyTensor would run it in object mode."""

    def make_node(self, x):
        x = pt.as_tensor(x)
        return pytensor.graph.basic.Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = 2.0 * inputs[0]

    def pullback(self, inputs, outputs, output_grads):
        return [2.0 * output_grads[0]]


def test_object_mode_is_refused():
    with pm.Model() as model:
        x = pm.Normal("x")
        pm.Potential("pot", -_Twice()(x) ** 2)
    with pytest.raises(ValueError, match="_Twice.*object mode"):
        from_pymc(model)


def test_missing_pymc_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymc", None)  # `import pymc` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'lcsample\[pymc\]'"):
        from_pymc(None)


def test_importing_lcsample_does_not_import_pymc():
    code = ("import sys, lcsample, lcsample.targets.pymc_model; "
            "print(sorted({'pymc', 'pytensor'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
