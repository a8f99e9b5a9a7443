"""The warmup: how the step size, friction, inverse mass and starting points are chosen.

* :mod:`~lcsample.mcmc.warmup.loop` — the windows, the retunes and the warmup's length.
* :mod:`~lcsample.mcmc.warmup.step_size` — the step from the exact bias or the energy error.
* :mod:`~lcsample.mcmc.warmup.curvature` — Hessians and extreme curvatures.
* :mod:`~lcsample.mcmc.warmup.mass` — inverse mass matrices and streaming covariances.
* :mod:`~lcsample.mcmc.warmup.starts` — the mode and jittered starting points.
"""
