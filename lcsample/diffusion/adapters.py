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
"""

import numpy as np

from .process import sigma2, sigma_ve

__all__ = ["DiscreteSchedule", "PREDICTION_TYPES", "score_from_model", "score_from_denoiser"]

PREDICTION_TYPES = ("score", "epsilon", "sample", "v_prediction")


def score_from_model(model, prediction_type="epsilon"):
    """Wrap ``model(x, t) -> (n, d)`` (OU time t, shape (n,)) as a score.

    Parameters
    ----------
    model : callable
    prediction_type : {"score", "epsilon", "sample", "v_prediction"}
        What the model predicts (diffusers' names; "sample" is x₀).

    Returns
    -------
    callable
        ``score(x, t) -> (n, d)``.
    """
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {list(PREDICTION_TYPES)}, "
                         f"got {prediction_type!r}")
    if prediction_type == "score":
        return model

    def score(x, t):
        t = np.asarray(t, dtype=np.float64)
        out = np.asarray(model(x, t), dtype=np.float64)
        a, s2 = np.exp(-t)[:, None], sigma2(t)[:, None]
        if prediction_type == "epsilon":
            return -out / np.sqrt(s2)
        if prediction_type == "sample":
            return (a * out - x) / s2
        eps = a * out + np.sqrt(s2) * x
        return -eps / np.sqrt(s2)

    return score


def score_from_denoiser(denoiser):
    """Wrap a k-diffusion / EDM denoiser ``D(x̃, sigma)`` (VE coordinates) as a score."""

    def score(x, t):
        t = np.asarray(t, dtype=np.float64)
        a, s2 = np.exp(-t)[:, None], sigma2(t)[:, None]
        denoised = np.asarray(denoiser(x / a, sigma_ve(t)), dtype=np.float64)
        return (a * denoised - x) / s2

    return score


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
        self.interpolate = interpolate

    def index(self, t):
        """Timestep index (fractional when interpolating) of OU times ``t``."""
        log_sigma = np.log(sigma_ve(t))
        frac = np.interp(log_sigma, self.log_sigmas, np.arange(self.log_sigmas.shape[0]))
        return frac if self.interpolate else np.rint(frac)

    def time(self, index):
        """OU time of (fractional) indices, the inverse of :meth:`index`."""
        log_sigma = np.interp(index, np.arange(self.log_sigmas.shape[0]), self.log_sigmas)
        return 0.5 * np.log1p(np.exp(2.0 * log_sigma))

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
