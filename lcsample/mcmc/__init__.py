"""MCMC on a log-concave target: ``lcsample.sample`` and everything around the step.

* :mod:`~lcsample.mcmc.sampler` — the entry point: validate, build the chains, run the
  warmup and the sampling, assemble the result; :mod:`~lcsample.mcmc.options` checks its
  arguments and holds the method table.
* :mod:`~lcsample.mcmc.chain` — one chain's state; :mod:`~lcsample.mcmc.execution` runs
  the chains in threads or in lockstep; :mod:`~lcsample.mcmc.lockstep` and
  :mod:`~lcsample.mcmc.picard` advance chains whose gradients come in batches;
  :mod:`~lcsample.mcmc.many_chains` advances many chains of a jitted target in compiled
  lockstep loops; :mod:`~lcsample.mcmc.advance` picks the advance,
  :mod:`~lcsample.mcmc.remote` runs it on an executor's workers.
* :mod:`~lcsample.mcmc.records` and :mod:`~lcsample.mcmc.persist` — where the draws go
  (memory or a store) and how a stored run is resumed.
* :mod:`~lcsample.mcmc.warmup` — the warmup loop, step size, curvature, inverse mass and
  starting points.
* :mod:`~lcsample.mcmc.results`, :mod:`~lcsample.mcmc.arviz` and
  :mod:`~lcsample.mcmc.diagnostics` — what a run returns and how it is checked.
"""
