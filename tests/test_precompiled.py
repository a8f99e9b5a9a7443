"""The ahead-of-time build (lcsample._aot): used only where it matches, equal to the JIT.

The comparisons need the build of this checkout (``pip install -e .`` builds it; any edit
to the package's sources retires it until the next install). CI sets
LCSAMPLE_REQUIRE_PRECOMPILED=1, which turns a missing or stale build into a failure.
"""

import os

import numba
import numpy as np
import pytest

import lcsample
from lcsample import _aot, _jit
from lcsample._aot.exports import EXPORTS
from lcsample.kernels import compiled, exact
from lcsample.kernels.step import RMD, RMD_LAGGED, ULMC, fresh_velocity
from lcsample.mcmc import convergence
from lcsample.mcmc.warmup.mass import InverseMass

STATUS = _aot.status()
built = pytest.mark.skipif(STATUS != "in use", reason=f"ahead-of-time build {STATUS}")


def test_build_is_in_use_where_ci_requires_it():
    if os.environ.get("LCSAMPLE_REQUIRE_PRECOMPILED") != "1":
        pytest.skip("LCSAMPLE_REQUIRE_PRECOMPILED is not 1 (CI sets it)")
    assert STATUS == "in use"


@numba.njit
def _scaled_normal(x, grad_out, scales):
    lp = 0.0
    for i in range(x.shape[0]):
        grad_out[i] = -x[i] / scales[i] ** 2
        lp += 0.5 * x[i] * grad_out[i]
    return lp


def _targets():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 3))
    y = (X @ np.array([1.0, -0.5, 0.2]) + rng.standard_normal(40) > 0).astype(float)
    return {"logistic": lcsample.targets.LogisticRegression(X, y),
            "user, one vector": lcsample.Target(_scaled_normal, 3, args=(np.array([0.5, 1, 3.]),))}


TARGETS = _targets()


def _chain_loop(target, method, seed):
    """Arguments of one run of the chain loop: 40 draws of 2 steps, dense mass."""
    fn, args, d = target.logdensity_and_grad, target.args, target.dim
    x = np.full(d, 0.3)
    g = np.empty(d)
    lp = fn(x, g, *args)
    mass = InverseMass(np.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.1], [0.0, 0.1, 0.5]]))
    x_at = x.copy() if method == RMD_LAGGED else np.empty(0)
    return (fn, args, method, 0.4, 1.5, mass.kernel_args, None, 2, x, np.zeros(d), g, x_at, lp,
            np.random.default_rng(seed), np.empty((40, d)), np.empty(40), np.empty(40))


@built
@pytest.mark.parametrize("name", list(TARGETS))
def test_chain_loop_equals_the_jit_bit_for_bit(name):
    jit = None
    for method in (RMD_LAGGED, RMD, ULMC):
        values = _chain_loop(TARGETS[name], method, seed=method)
        signature = (_jit._function_type(values[0], values[1]),
                     *(numba.typeof(v) for v in values[1:]))
        built_loop = _aot.lookup(compiled._run_chain, signature)
        assert built_loop is not None
        if jit is None:
            jit = _jit.njit(signature, **_jit._OPTIONS)(compiled._run_chain)
            export = next(e for e in EXPORTS if e.args == signature)
            assert jit.overloads[signature].signature.return_type == export.returns
        copy = _chain_loop(TARGETS[name], method, seed=method)
        assert built_loop(*values) == jit(*copy)
        for a, b in zip(values[8:], copy[8:], strict=True):  # state, draws, lp, energy
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b)


def _function_free_cases():
    rho = np.exp(-np.arange(60.0) / 4.0)[None, :] * np.linspace(0.5, 1.0, 5)[:, None]
    rho[:, 0] = 1.0
    d = 4
    chol = np.linalg.cholesky(np.eye(d) + 0.2)
    return [
        (exact._rmd_averaged_maps, lambda: (2.0, 0.5, 1.0, 1.0, exact._ALPHAS, exact._WEIGHTS,
                                            True)),
        (convergence._geyer_ess, lambda: (np.ascontiguousarray(rho), 400)),
        (_jit.precompiled(fresh_velocity),
         lambda: (np.random.default_rng(2), np.ones(d), chol, np.empty((d, 1)),
                  np.empty((d, 1)), np.empty(d))),
    ]


@built
@pytest.mark.parametrize("entry, make", _function_free_cases(),
                         ids=["rmd_averaged_maps", "geyer_ess", "fresh_velocity"])
def test_function_free_kernels_equal_the_jit(entry, make):
    values, copy = make(), make()
    types = tuple(numba.typeof(v) for v in values)
    function = entry.kernel.py_func
    built_kernel = _aot.lookup(function, types)
    assert built_kernel is not None
    out, expected = built_kernel(*values), entry.kernel(*copy)
    export = next(e for e in EXPORTS if e.kernel == f"{function.__module__}.{function.__name__}")
    assert entry.kernel.overloads[types].signature.return_type == export.returns
    for a, b in zip(_results(out, values), _results(expected, copy), strict=True):
        np.testing.assert_array_equal(a, b)


def _results(out, values):
    """The arrays a kernel returned, or those it wrote into (it returned nothing)."""
    if out is None:
        return [v for v in values if isinstance(v, np.ndarray)]
    return list(out) if isinstance(out, tuple) else [out]


def test_guarded_refuses_other_argument_types():
    guarded = _aot.Guarded(lambda *values: "called", (np.empty(3), 1.0, np.empty((2, 2))))
    assert guarded(np.empty(5), 2.0, np.empty((3, 3))) == "called"
    for other in [(np.empty(6)[::2], 1.0, np.empty((2, 2))),   # not contiguous
                  (np.empty(3, np.float32), 1.0, np.empty((2, 2))),
                  (np.empty(3), 1, np.empty((2, 2))),             # an int for a float
                  (np.empty(3), 1.0, np.empty((2, 2), order="F")),
                  (np.empty(3), 1.0)]:
        with pytest.raises(TypeError, match="No matching definition"):
            guarded(*other)
    readonly = np.empty(3)
    readonly.flags.writeable = False
    with pytest.raises(TypeError):
        guarded(readonly, 1.0, np.empty((2, 2)))


@built
def test_a_call_with_other_types_falls_back_to_the_jit():
    """The same function with a strided array in ``args``: the built loop, chosen for the
    first call, refuses the second, which compiles instead and gives the same draws."""
    contiguous = TARGETS["user, one vector"]
    strided = lcsample.Target(_scaled_normal, 3, args=(np.array([0.5, 0, 1, 0, 3.0])[::2],))
    key = (compiled._run_chain, _scaled_normal)
    draws = []
    for target in (contiguous, strided):
        values = _chain_loop(target, RMD_LAGGED, seed=0)
        assert _jit.with_target(compiled._run_chain, *values)[0] == 40
        draws.append(values[-3])
        assert isinstance(_jit._LAST[key], _aot.Guarded) == (target is contiguous)
    np.testing.assert_array_equal(draws[0], draws[1])


@built
def test_a_stale_build_is_not_used(monkeypatch):
    monkeypatch.setattr(_aot, "_LOADED", {})
    monkeypatch.setattr(_aot, "build_tag", lambda: "0" * 16)
    assert _aot.status().startswith("not used: built for other sources")
    assert _aot.lookup(compiled._run_chain, EXPORTS[-1].args) is None


def test_a_disabled_build_is_not_used(monkeypatch):
    monkeypatch.setattr(_aot, "_LOADED", {})
    monkeypatch.setenv("LCSAMPLE_PRECOMPILED", "0")
    assert _aot.status() == "not used: LCSAMPLE_PRECOMPILED=0"
    assert _aot.lookup(compiled._run_chain, EXPORTS[-1].args) is None
    monkeypatch.setattr(_aot, "_LOADED", {})
    monkeypatch.delenv("LCSAMPLE_PRECOMPILED")
    monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    assert _aot.status() == "not used: NUMBA_DISABLE_JIT is set"


def test_build_tag_follows_the_sources(tmp_path, monkeypatch):
    tag = _aot.build_tag()
    package = tmp_path / "lcsample"
    package.mkdir()
    for path in _aot._PACKAGE.rglob("*.py"):
        target = package / path.relative_to(_aot._PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    monkeypatch.setattr(_aot, "_PACKAGE", package)
    assert _aot.build_tag() == tag
    step = package / "kernels" / "step.py"
    step.write_text(step.read_text().replace("RMD_LAGGED = 2", "RMD_LAGGED = 3"))
    assert _aot.build_tag() != tag
