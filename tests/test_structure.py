"""Named, shaped, constrained variables (issue 14, item 1): transforms against calculus,
structures refused when malformed, draws reported on their supports with exact moments,
and warnings and errors that name the variable."""

import dataclasses

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lcsample
from lcsample import Structure, Variable
from lcsample.transforms import Identity, Interval, Log, Logit, LowerBound, UpperBound

QUIET = dict(progressbar=False, compute_convergence_checks=False)
TRANSFORMS = [Identity(), Log(), Logit(), LowerBound(-2.0), UpperBound(3.5), Interval(-1.0, 4.0)]


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, len(TRANSFORMS) - 1),
       y=st.floats(-12, 12, allow_nan=False, allow_infinity=False))
def test_transforms_invert_and_their_log_jacobian_is_the_derivative(index, y):
    t = TRANSFORMS[index]
    x = t.forward(y)
    assert t.contains(x)
    np.testing.assert_allclose(t.inverse(x), y, rtol=1e-7, atol=1e-7)
    # log|dx/dy| against a central difference of forward: truncation O(h²) relative,
    # rounding eps·|x|/h absolute (x near a bound, where the slope is tiny)
    h = 1e-5
    slope = (t.forward(y + h) - t.forward(y - h)) / (2 * h)
    np.testing.assert_allclose(np.exp(t.log_jacobian(y)), abs(slope), rtol=1e-6,
                               atol=1e-9 * max(1.0, abs(float(x))))


@pytest.mark.parametrize("make, argument", [
    (lambda: Interval(2.0, 1.0), "upper"),
    (lambda: Interval(0.0, np.inf), "upper"),
    (lambda: LowerBound("a"), "lower"),
    (lambda: Structure([Variable("a b")]), "identifier"),
    (lambda: Structure([Variable("a"), Variable("a")]), "repeated"),
    (lambda: Structure([Variable("a", (2, -1))]), "shape of 'a'"),
    (lambda: Structure([Variable("a", (2,), dims=("i", "j"))]), "dims of 'a'"),
    (lambda: Structure([Variable("a", (2,), dims=("i",))], coords={"i": [1, 2, 3]}), "coords"),
    (lambda: Structure([Variable("a", transform="exp")]), "transform of 'a'"),
    (lambda: lcsample.Target(lambda x, g: 0.0, 3, variables=[Variable("a", (2,))]), "dim=3"),
    (lambda: lcsample.Target(lambda x, g: 0.0, 1, name="a",
                             variables=[Variable("b")]), "either name"),
])
def test_malformed_structures_are_refused_by_name(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_named_values_flatten_and_constrain_back(seed):
    rng = np.random.default_rng(seed)
    structure = Structure([Variable("mu"), Variable("theta", (2, 3), Interval(-1.0, 2.0)),
                           Variable("sigma", (2,), "log")])
    values = {"mu": rng.normal(), "theta": rng.uniform(-0.99, 1.99, (2, 3)),
              "sigma": rng.uniform(0.01, 5.0, 2)}
    flat = structure.flatten(values)
    assert flat.shape == (structure.dim,) == (9,)
    back = structure.constrained(np.stack([flat, flat]))
    for name, value in values.items():
        np.testing.assert_allclose(back[name][1], value, rtol=1e-9, atol=1e-12)
    assert structure.labels()[1:4] == ["theta[0,0]", "theta[0,1]", "theta[0,2]"]


@numba.njit
def _lognormal_beta_normal(x, grad_out, a, b):
    # sigma ~ LogNormal(0, 0.5), p ~ Beta(a, b), theta ~ N(0, I_2), written on the
    # unconstrained scale with the log-Jacobians: log σ ~ N(0, 0.25); logit p has log
    # density a·log p + b·log(1 - p)
    y, z = x[0], x[1]
    p = 1.0 / (1.0 + np.exp(-z))
    grad_out[0] = -y / 0.25
    grad_out[1] = a * (1.0 - p) - b * p
    grad_out[2] = -x[2]
    grad_out[3] = -x[3]
    return (-0.5 * y * y / 0.25 + a * np.log(p) + b * np.log1p(-p)
            - 0.5 * (x[2] ** 2 + x[3] ** 2))


def _model():
    variables = [Variable("sigma", transform="log"), Variable("p", transform="logit"),
                 Variable("theta", (2,), dims=("school",))]
    return lcsample.Target(_lognormal_beta_normal, 4, args=(2.0, 3.0), variables=variables,
                           coords={"school": ["north", "south"]})


def test_constrained_draws_have_the_exact_moments():
    res = lcsample.sample(_model(), draws=4000, seed=4, **QUIET)
    values = res.constrained()
    assert values["sigma"].shape == values["p"].shape == (4, 4000)
    assert values["theta"].shape == (4, 4000, 2)
    assert (values["sigma"] > 0).all() and ((values["p"] > 0) & (values["p"] < 1)).all()
    # exact: E σ = e^{σ²/2} with σ² = 0.25; Beta(2, 3) mean 0.4, variance 0.04.
    # Standard errors by batch means (20 batches per chain) for the autocorrelation
    def batch_se(v):
        means = np.array([b.mean() for chain in v for b in np.array_split(chain, 20)])
        return means.std(ddof=1) / np.sqrt(means.size)

    for name, mean in {"sigma": np.exp(0.125), "p": 0.4}.items():
        assert abs(values[name].mean() - mean) < 4 * batch_se(values[name]), name
    p = values["p"]
    assert abs(p.var() - 0.04) < 4 * batch_se((p - p.mean()) ** 2)


def test_arviz_gets_named_constrained_variables_with_dims(tmp_path):
    az = pytest.importorskip("arviz")
    res = lcsample.sample(_model(), draws=200, seed=0, **QUIET)
    data = res.to_arviz()
    post = data["posterior"]
    assert set(post.data_vars) == {"sigma", "p", "theta"}
    assert post["theta"].dims == ("chain", "draw", "school")
    assert list(post["theta"].coords["school"].values) == ["north", "south"]
    np.testing.assert_allclose(post["sigma"].values, np.exp(res.posterior[:, :, 0]))
    unconstrained = data["unconstrained_posterior"]
    np.testing.assert_array_equal(unconstrained["sigma"].values, res.posterior[:, :, 0])
    assert set(az.summary(data).index) == {"sigma", "p", "theta[north]", "theta[south]"}


def test_named_starting_values_are_checked_against_the_support():
    target = _model()
    start = {"sigma": 2.0, "p": 0.5, "theta": np.zeros(2)}
    res = lcsample.sample(target, draws=5, tune=0, chains=2, seed=0, initial_positions=start,
                          **QUIET)
    assert res.attrs["init"] == "initial_positions"
    with pytest.raises(ValueError, match=r"initial_positions\['p'\] lies outside"):
        lcsample.sample(target, seed=0, initial_positions={**start, "p": 1.5}, **QUIET)
    with pytest.raises(ValueError, match=r"missing \['theta'\]"):
        lcsample.sample(target, seed=0, initial_positions={"sigma": 2.0, "p": 0.5}, **QUIET)


@numba.njit
def _wrong_in_sigma(x, grad_out):
    grad_out[0] = -x[0]
    grad_out[1] = -3.0 * x[1]  # the log density says -x[1]
    return -0.5 * (x[0] ** 2 + x[1] ** 2)


def test_errors_and_warnings_name_the_variable():
    target = lcsample.Target(_wrong_in_sigma, 2, variables=[Variable("mu"),
                                                            Variable("sigma", transform="log")])
    with pytest.raises(ValueError, match=r"Worst coordinates: sigma \(gradient"):
        lcsample.sample(target, seed=0, **QUIET)
    res = lcsample.sample(_model(), draws=200, seed=1, **QUIET)
    shifted = res.posterior.copy()
    shifted[0, :, 3] += 5.0  # chain 0 off in theta[1]
    found = dataclasses.replace(res, posterior=shifted).diagnostics()
    assert any("theta[1] = " in d.message for d in found if d.kind == "rhat")


def test_regressions_label_their_weights_by_the_columns():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 2)), columns=["age", "dose"])
    target = lcsample.targets.LogisticRegression(X, (X["age"] > 0).astype(float))
    assert target.structure.labels() == ["w[0]", "w[1]"]
    assert target.structure.coords == {"feature": ["age", "dose"]}
    assert target.structure.dims() == {"w": ["feature"]}
