"""Golden fixed-seed draws: every sampler path, recorded once, reproduced after refactors.

``python tests/golden.py`` writes ``tests/data/golden.npz``;
``tests/test_golden.py`` reruns every case and compares with it. The cases use the public
API only, so they survive any rearrangement of the internals: MCMC methods × inverse-mass
kinds × back-ends (compiled target, batched Python target, Picard blocks), and diffusion
predictors × correctors × loops (Python score, jitted score — once a compiled loop of
its own —, Picard windows). Record anew only for
a change that is meant to alter the draws, and say so in the commit.
"""

import itertools
import pathlib

import numba
import numpy as np

import lcsample
from lcsample import diffusion

PATH = pathlib.Path(__file__).parent / "data" / "golden.npz"
QUIET = dict(progressbar=False, compute_convergence_checks=False)

# A correlated 3-d Gaussian, so a dense mass differs from a diagonal one.
_PRECISION = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 4.0]])
_MEAN = np.array([0.5, -1.0, 0.25])


@numba.njit
def _logdensity_and_grad(x, grad_out, mean, precision):
    r = x - mean
    for i in range(x.shape[0]):
        acc = 0.0
        for j in range(x.shape[0]):
            acc += precision[i, j] * r[j]
        grad_out[i] = -acc
    lp = 0.0
    for i in range(x.shape[0]):
        lp += 0.5 * grad_out[i] * r[i]
    return lp


def _batch(X):
    R = X - _MEAN
    G = -(R @ _PRECISION.T)
    return 0.5 * np.einsum("ij,ij->i", G, R), G


def _target(backend):
    if backend == "batched":
        return lcsample.Target.from_batch(_batch, 3)
    return lcsample.Target(_logdensity_and_grad, 3, args=(_MEAN, _PRECISION))


MCMC_METHODS = ("rmd", "ulmc", "rmd-tv", "rmd-picard", "rmd-lagged")
MASSES = ("diag", "dense")
BACKENDS = ("jitted", "batched")
PREDICTORS = ("rm", "exp-euler", "ddpm", "heun", "ddim", "dpm-pc")
CORRECTORS = (None, "uld", "uld-rm")
LOOPS = ("python", "compiled", "picard")


def mcmc_case(method, mass, backend):
    """Draws, lp and last velocities of a short tuned run."""
    extra = {"picard_steps": 4, "tolerance": 0.0} if method == "rmd-picard" else {}
    res = lcsample.sample(_target(backend), draws=15, tune=40, chains=2, seed=11, method=method,
                          inverse_mass_matrix=mass, **extra, **QUIET)
    return {"posterior": res.posterior, "lp": res.sample_stats["lp"],
            "velocity": res.last_state.velocity, "step_size": res.attrs["step_size"]}


def diffusion_case(predictor, corrector, loop):
    """Samples of a short run on a 2-d, two-component mixture."""
    mixture = diffusion.GaussianMixture([0.3, 0.7], [[1.0, -0.5], [-1.0, 0.5]],
                                        scales=[0.5, 0.8])
    # t_min: the default when the cases were recorded (the default is σ_VE = 0.002 since)
    kwargs = dict(dim=2, num_samples=5, steps=6, predictor=predictor, corrector=corrector,
                  corrector_every=2, corrector_steps=2, seed=3, t_min=1e-3, progressbar=False)
    if loop == "compiled":
        x, _ = diffusion.sample(mixture.score_kernel, score_args=mixture.score_args, **kwargs)
    else:
        extra = {"picard_steps": 3, "tolerance": 0.0} if loop == "picard" else {}
        x, _ = diffusion.sample(mixture.score, **kwargs, **extra)
    return {"samples": x}


def cases():
    """Every case as (name, function, arguments)."""
    for method, mass, backend in itertools.product(MCMC_METHODS, MASSES, BACKENDS):
        yield f"mcmc/{method}/{mass}/{backend}", mcmc_case, (method, mass, backend)
    for predictor, corrector, loop in itertools.product(PREDICTORS, CORRECTORS, LOOPS):
        yield f"diffusion/{predictor}/{corrector}/{loop}", diffusion_case, (predictor, corrector,
                                                                             loop)


def record():
    arrays = {}
    for name, fn, args in cases():
        for key, value in fn(*args).items():
            arrays[f"{name}/{key}"] = np.asarray(value)
    PATH.parent.mkdir(exist_ok=True)
    np.savez_compressed(PATH, **arrays)
    print(f"wrote {len(arrays)} arrays to {PATH}")


if __name__ == "__main__":
    record()
