"""Scores from the parameterizations diffusion models are trained in.

Every sampler in :mod:`lcsample.diffusion` takes the score ∇log p_t in OU time
(α_t = e^{-t}, σ_t² = 1 - e^{-2t}). With x = α_t x₀ + σ_t ε, Tweedie's formula gives
(docs/theory.md §10):

* ε-prediction: score = -ε̂/σ_t;
* x₀-prediction ("sample"): score = (α_t x̂₀ - x)/σ_t²;
* v-prediction (v = α_t ε - σ_t x₀): ε̂ = α_t v̂ + σ_t x;
* a k-diffusion / EDM denoiser D(x̃, σ) in variance-exploding coordinates x̃ = x/α_t,
  σ = σ_t/α_t: score = (α_t D(x/α_t, σ_t/α_t) - x)/σ_t².

Models trained on a discrete schedule (diffusers' ``alphas_cumprod``) take a timestep
index; :class:`DiscreteSchedule` maps OU time to a fractional index by interpolating in
log σ_VE, as k-diffusion does, or to the nearest index.

Every adapter serves NumPy arrays (computed in float64) and torch tensors (in the
samples' dtype, on their device, no host copy), so a network on a GPU is wrapped as it is.
"""

import numpy as np

from .backend import is_tensor, namespace
from .process import alpha, sigma2, sigma_ve

__all__ = ["DiscreteSchedule", "PREDICTION_TYPES", "score_from_denoiser", "score_from_model",
           "score_from_unet"]

PREDICTION_TYPES = ("score", "epsilon", "sample", "v_prediction")


def _like(out, x):
    """A model's output as an array like the samples ``x``: float64 NumPy, or x's dtype."""
    if is_tensor(x):
        if not is_tensor(out):
            raise ValueError(f"the model returned {type(out).__name__} for torch samples; "
                             "it must return a torch.Tensor")
        return out.to(x.dtype)
    return np.asarray(out, dtype=np.float64)


def _shaped(model, sample_shape):
    """``model`` on (n, *sample_shape) inputs seen as a function of flat rows (n, d)."""
    if sample_shape is None:
        return model
    shape = tuple(sample_shape)

    def flat(x, t):
        out = model(x.reshape((x.shape[0], *shape)), t)
        return getattr(out, "sample", out).reshape(x.shape)  # diffusers returns .sample

    return flat


def score_from_model(model, prediction_type="epsilon", sample_shape=None):
    """Wrap ``model(x, t) -> (n, d)`` (OU time t, shape (n,)) as a score.

    Parameters
    ----------
    model : callable
        On NumPy arrays or torch tensors (then its output is cast to the samples' dtype:
        a bfloat16 network serves a float32 run).
    prediction_type : {"score", "epsilon", "sample", "v_prediction"}
        What the model predicts (diffusers' names; "sample" is x₀).
    sample_shape : tuple, optional
        The model's own shape of one sample, e.g. (C, H, W): rows (n, d) are reshaped to
        ``(n, *sample_shape)`` for it and its output (or its ``.sample``) flattened back.

    Returns
    -------
    callable
        ``score(x, t) -> (n, d)``.
    """
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {list(PREDICTION_TYPES)}, "
                         f"got {prediction_type!r}")
    model = _shaped(model, sample_shape)
    if prediction_type == "score":
        return lambda x, t: _like(model(x, t), x)

    def score(x, t):
        xp, t = namespace(t)
        out = _like(model(x, t), x)
        a, s2 = alpha(t)[:, None], sigma2(t)[:, None]
        if prediction_type == "epsilon":
            return -out / xp.sqrt(s2)
        if prediction_type == "sample":
            return (a * out - x) / s2
        eps = a * out + xp.sqrt(s2) * x
        return -eps / xp.sqrt(s2)

    return score


def score_from_denoiser(denoiser, sample_shape=None):
    """Wrap a k-diffusion / EDM denoiser ``D(x̃, sigma)`` (VE coordinates) as a score.

    ``sample_shape``: as in :func:`score_from_model`, for a denoiser of images.
    """
    denoiser = _shaped(denoiser, sample_shape)

    def score(x, t):
        _, t = namespace(t)
        a, s2 = alpha(t)[:, None], sigma2(t)[:, None]
        denoised = _like(denoiser(x / a, sigma_ve(t)), x)
        return (a * denoised - x) / s2

    return score


def score_from_unet(unet, scheduler, sample_shape, interpolate=True):
    """A diffusers-style ``UNet2DModel`` and its scheduler as a score.

    Parameters
    ----------
    unet : callable
        ``unet(sample (n, *sample_shape), timestep (n,))`` returning a tensor or an
        object with ``.sample`` (diffusers' output), as the scheduler's
        ``config.prediction_type`` says ("epsilon", "sample" or "v_prediction").
    scheduler : object
        With ``alphas_cumprod`` (the training schedule, (N,)) and
        ``config.prediction_type`` (diffusers' schedulers have both).
    sample_shape : tuple
        One sample's shape, e.g. (3, 32, 32); the sampler's ``dim`` is its product.
    interpolate : bool
        Fractional timesteps (k-diffusion's choice) or the nearest training timestep.
    """
    abar = scheduler.alphas_cumprod
    abar = abar.detach().cpu().numpy() if is_tensor(abar) else abar
    config = getattr(scheduler, "config", scheduler)
    prediction_type = getattr(config, "prediction_type", None) or "epsilon"
    schedule = DiscreteSchedule(abar, interpolate=interpolate)
    return schedule.score(_shaped(unet, sample_shape), prediction_type)


def _interp(x, grid, values, cache):
    """Piecewise-linear interpolation of (grid, values) at x, clamped at the ends.

    ``np.interp`` for NumPy; for tensors the same on x's device, with the tables moved
    there once (``cache``, by device and dtype).
    """
    if not is_tensor(x):
        return np.interp(x, grid, values)
    torch = namespace(x)[0]
    key = (x.device, x.dtype)
    if key not in cache:
        cache[key] = tuple(torch.as_tensor(a, device=x.device, dtype=x.dtype)
                           for a in (grid, values))
    g, v = cache[key]
    hi = torch.searchsorted(g, x.contiguous()).clamp(1, g.shape[0] - 1)
    w = ((x - g[hi - 1]) / (g[hi] - g[hi - 1])).clamp(0.0, 1.0)
    return v[hi - 1] + w * (v[hi] - v[hi - 1])


class DiscreteSchedule:
    """A discrete training schedule: timestep index ↔ OU time.

    Parameters
    ----------
    alphas_cumprod : array_like, shape (N,)
        ᾱ_i of the training schedule (diffusers), decreasing in i; OU time t_i = -½ log ᾱ_i.
    interpolate : bool
        Map a time to a fractional index (linear in log σ_VE, k-diffusion's
        ``sigma_to_t``) or round to the nearest index.
    """

    def __init__(self, alphas_cumprod, interpolate=True):
        abar = np.asarray(alphas_cumprod, dtype=np.float64)
        if abar.ndim != 1 or abar.shape[0] < 2 or not ((abar > 0) & (abar < 1)).all():
            raise ValueError("alphas_cumprod must be a 1-D array of values in (0, 1)")
        if not (np.diff(abar) < 0).all():
            raise ValueError("alphas_cumprod must be strictly decreasing")
        self.times = -0.5 * np.log(abar)
        self.log_sigmas = 0.5 * np.log((1.0 - abar) / abar)
        self.steps = np.arange(self.log_sigmas.shape[0], dtype=np.float64)
        self.interpolate = interpolate
        self._tables = {}, {}  # the interpolation tables on each device: index, time

    def index(self, t):
        """Timestep index (fractional when interpolating) of OU times ``t``."""
        xp, t = namespace(t)
        frac = _interp(xp.log(sigma_ve(t)), self.log_sigmas, self.steps, self._tables[0])
        return frac if self.interpolate else xp.round(frac)

    def time(self, index):
        """OU time of (fractional) indices, the inverse of :meth:`index`."""
        xp, index = namespace(index)
        log_sigma = _interp(index, self.steps, self.log_sigmas, self._tables[1])
        return 0.5 * xp.log1p(xp.exp(2.0 * log_sigma))

    def score(self, model, prediction_type="epsilon"):
        """Score from ``model(x, timestep_index)`` trained on this schedule.

        With ``interpolate=False`` the model is evaluated at the nearest training
        timestep, and the conversion uses that timestep's α and σ (the model's own noise
        level), so the score is that of a slightly different time.
        """
        wrapped = score_from_model(lambda x, t: model(x, self.index(t)), prediction_type)
        if self.interpolate:
            return wrapped
        return lambda x, t: wrapped(x, self.time(self.index(t)))
