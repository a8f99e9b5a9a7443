"""The numerical core: coefficients, the one step, the loops that drive it, the exact law.

* :mod:`~lcsample.kernels.coefficients` — scalar coefficients of a step (φ, ψ, the
  Brownian pairs' Cholesky factors), stable for any γh, and the map from the pairs to the
  step's three Brownian integrals.
* :mod:`~lcsample.kernels.step` — the step from state to state: the random-number
  contract, the randomized midpoint, the update, preconditioning and the commit.
* :mod:`~lcsample.kernels.compiled` — the compiled loop of one chain whose gradients come
  from a jitted target; :mod:`~lcsample.kernels.many` — many such chains in one call.
* :mod:`~lcsample.kernels.rows` — the same step on many rows in lockstep, its gradients
  from one call per round (batched targets, correctors).
* :mod:`~lcsample.kernels.exact` — the exact stationary law of the steps on a Gaussian.

Nothing here knows about chains, warmup or diffusion models.
"""
