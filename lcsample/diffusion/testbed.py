"""Analytic targets for testing diffusion samplers: Gaussian mixtures with exact scores.

Data p_0 = Σ_k w_k N(μ_k, Σ_k) stays a Gaussian mixture under the forward OU process of
:mod:`.process`: p_t = Σ_k w_k N(α_t μ_k, C_k(t)) with C_k(t) = α_t² Σ_k + σ_t² I. The
score, the Tweedie denoiser, the density and exact samples of every p_t are therefore
available in closed form (docs/theory.md §10). For Gaussian data the probability-flow ODE
is linear and its flow map is exact as well, which gives strong-error tests a coupled
reference.

A full covariance is stored by its eigendecomposition Σ_k = U_k diag(λ_k) U_kᵀ. C_k(t)
shares the eigenvectors U_k and has eigenvalues α_t² λ_k + σ_t², so one decomposition serves
every time: a per-row time vector costs no factorization and nothing is inverted at small t.
An isotropic component Σ_k = s_k² I costs O(d) per point instead of O(d²).

All times are OU times t ≥ 0 (α_t = e^{-t}, σ_t² = 1 - e^{-2t}).
"""

import functools

import numpy as np
from scipy.special import logsumexp

from .._jit import kernel
from .process import alpha, sigma2

__all__ = [
    "GaussianData",
    "GaussianMixture",
    "grid_mixture",
    "ill_conditioned_gaussian",
    "two_modes",
]

_LOG_2PI = np.log(2.0 * np.pi)


# ---------------------------------------------------------------------------------------
# Compiled scores. Responsibilities use a streaming log-sum-exp: ``top`` is the largest log
# term seen so far, ``total`` the sum of exp(term - top) and the output row the matching
# weighted sum of component scores; both are rescaled whenever ``top`` grows. One pass over
# the components, no (n, K) scratch, and no overflow however far x lies from every mode.


@kernel
def _absorb(row, top, total, term):
    """Rescale the running sums for a new log term; return (top, total, weight of term)."""
    if term > top:
        shrink = np.exp(top - term)  # 0 for the first component, where top = -inf
        total *= shrink
        for j in range(row.shape[0]):
            row[j] *= shrink
        top = term
    weight = np.exp(term - top)
    return top, total + weight, weight


@kernel
def _isotropic_score_kernel(x, t, out, log_weights, means, scales2):
    n, d = x.shape
    for i in range(n):
        a = np.exp(-t[i])
        s2 = -np.expm1(-2.0 * t[i])
        top, total = -np.inf, 0.0
        row = out[i]
        row[:] = 0.0
        for k in range(log_weights.shape[0]):
            c = a * a * scales2[k] + s2
            sq = 0.0
            for j in range(d):
                r = x[i, j] - a * means[k, j]
                sq += r * r
            term = log_weights[k] - 0.5 * (d * np.log(c) + sq / c)
            top, total, weight = _absorb(row, top, total, term)
            f = weight / c
            for j in range(d):
                row[j] -= f * (x[i, j] - a * means[k, j])
        for j in range(d):
            row[j] /= total


@kernel
def _full_score_kernel(x, t, out, log_weights, means, eigvecs, eigvals):
    n, d = x.shape
    # per-call scratch, so concurrent calls from several threads never share it
    resid = np.empty(d)
    y = np.empty(d)
    for i in range(n):
        a = np.exp(-t[i])
        s2 = -np.expm1(-2.0 * t[i])
        top, total = -np.inf, 0.0
        row = out[i]
        row[:] = 0.0
        for k in range(log_weights.shape[0]):
            for j in range(d):
                resid[j] = x[i, j] - a * means[k, j]
            # y = U_kᵀ resid, looping so that U_k is read along its rows
            y[:] = 0.0
            for m in range(d):
                rm = resid[m]
                for j in range(d):
                    y[j] += rm * eigvecs[k, m, j]
            term = log_weights[k]
            for j in range(d):
                v = a * a * eigvals[k, j] + s2
                term -= 0.5 * (np.log(v) + y[j] * y[j] / v)
                y[j] /= v  # C_k(t)^{-1} resid in the eigenbasis
            top, total, weight = _absorb(row, top, total, term)
            for m in range(d):
                acc = 0.0
                for j in range(d):
                    acc += eigvecs[k, m, j] * y[j]
                row[m] -= weight * acc
        for j in range(d):
            row[j] /= total


# ---------------------------------------------------------------------------------------
# Argument checks shared by the classes and presets.


def _check_weights(weights):
    w = np.array(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"weights must be a non-empty 1-D array, got shape {w.shape}")
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be finite and positive")
    total = w.sum()
    if abs(total - 1.0) > 1e-12:
        raise ValueError(f"weights must sum to 1 (within 1e-12), got a sum of {total!r}")
    return w / total


def _check_finite(values, name, shape, shape_text):
    values = np.array(values, dtype=np.float64)
    if values.shape != shape or 0 in shape:
        raise ValueError(f"{name} must have shape {shape_text}, got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite")
    return values


def _decompose(covs, names):
    """Symmetrized covariances and their eigendecompositions; ``names[k]`` for errors."""
    covs = covs.copy()
    eigvals = np.empty(covs.shape[:2])
    eigvecs = np.empty_like(covs)
    for k, name in enumerate(names):
        c = covs[k]
        if np.abs(c - c.T).max() > 1e-12 * np.abs(c).max():
            raise ValueError(f"{name} must be symmetric")
        covs[k] = c = 0.5 * (c + c.T)
        eigvals[k], eigvecs[k] = np.linalg.eigh(c)
        if eigvals[k].min() <= 0:
            raise ValueError(f"{name} must be positive definite "
                             f"(smallest eigenvalue {eigvals[k].min():.3g})")
    return covs, eigvals, eigvecs


def _check_count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_times(t, n, name):
    """OU times as an (n,) array: a scalar is shared by all rows."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim == 0:
        t = np.full(n, float(t))
    elif t.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {t.shape}")
    if not (np.isfinite(t).all() and (t >= 0).all()):
        raise ValueError(f"{name} must be finite and >= 0")
    return t


# ---------------------------------------------------------------------------------------


class GaussianMixture:
    """Data p_0 = Σ_k w_k N(μ_k, Σ_k) with exact scores, densities and samples of every p_t.

    Give exactly one of ``covs`` (full covariances) and ``scales`` (isotropic Σ_k = s_k² I,
    O(K·d) work per point instead of O(K·d²)).

    Parameters
    ----------
    weights : array_like, shape (K,)
        Positive, summing to 1 within 1e-12; renormalized to sum to 1 exactly.
    means : array_like, shape (K, d)
    covs : array_like, shape (K, d, d), optional
        Symmetric positive definite.
    scales : array_like, shape (K,), optional
        Positive standard deviations s_k.

    Attributes
    ----------
    weights : ndarray, shape (K,)
    means : ndarray, shape (K, d)
    covs : ndarray, shape (K, d, d), or None when isotropic
    scales : ndarray, shape (K,), or None when given full covariances
    isotropic : bool
    dim : int
        d.
    n_components : int
        K.
    score_kernel : numba dispatcher
        Compiled score: ``score_kernel(x, t, out, *score_args)`` writes ∇log p_t(x) into
        ``out``; ``x`` and ``out`` are C-contiguous float64 of shape (n, d), ``t`` float64 of
        shape (n,). It allocates its scratch itself, so threads may call it concurrently
        with their own ``out``.
    score_args : tuple of ndarray
        The arrays that follow ``out`` in a call to ``score_kernel``.

    Raises
    ------
    ValueError
        Naming the invalid argument.

    Notes
    -----
    Methods take points ``x`` of shape (n, d) and OU times ``t`` that are either a scalar
    or one time per row, shape (n,); every t ≥ 0 is allowed since p_0 has a density.
    """

    def __init__(self, weights, means, covs=None, scales=None):
        weights = _check_weights(weights)
        n_comp = weights.size
        means = np.array(means, dtype=np.float64)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, d), got {means.shape}")
        means = _check_finite(means, "means", (n_comp, means.shape[1]),
                              f"(K, d) with K = {n_comp} (the number of weights) and d >= 1")
        if (covs is None) == (scales is None):
            raise ValueError("give exactly one of covs and scales")
        d = means.shape[1]
        if scales is not None:
            scales = _check_finite(scales, "scales", (n_comp,), f"({n_comp},)")
            if (scales <= 0).any():
                raise ValueError("scales must be positive")
            self._setup(weights, means, scales=scales)
        else:
            covs = _check_finite(covs, "covs", (n_comp, d, d), f"({n_comp}, {d}, {d})")
            covs, eigvals, eigvecs = _decompose(covs, [f"covs[{k}]" for k in range(n_comp)])
            self._setup(weights, means, covs=covs, eigvals=eigvals, eigvecs=eigvecs)

    def _setup(self, weights, means, scales=None, covs=None, eigvals=None, eigvecs=None):
        """Store validated parameters and pick the compiled score."""
        self.weights = weights
        self.means = np.ascontiguousarray(means)
        self.scales = scales
        self.covs = covs
        self.isotropic = scales is not None
        self.n_components, self.dim = means.shape
        self._log_weights = np.log(weights)
        if self.isotropic:
            self._scales2 = scales**2
            self.score_kernel = _isotropic_score_kernel
            self.score_args = (self._log_weights, self.means, self._scales2)
        else:
            self._eigvals = np.ascontiguousarray(eigvals)
            self._eigvecs = np.ascontiguousarray(eigvecs)
            self.score_kernel = _full_score_kernel
            self.score_args = (self._log_weights, self.means, self._eigvecs, self._eigvals)

    # -- moments of p_0 -------------------------------------------------------------------

    @functools.cached_property
    def mean(self):
        """ndarray, shape (d,): exact mean of p_0, Σ_k w_k μ_k."""
        return self.weights @ self.means

    @functools.cached_property
    def cov(self):
        """ndarray, shape (d, d): exact covariance of p_0.

        Σ_k w_k (Σ_k + δ_k δ_kᵀ) with δ_k = μ_k - mean: centring each term first avoids the
        cancellation of E[XXᵀ] - mean meanᵀ, and a single component returns Σ_1 exactly.
        """
        delta = self.means - self.mean
        spread = (self.weights[:, None] * delta).T @ delta
        if self.isotropic:
            return spread + (self.weights @ self._scales2) * np.eye(self.dim)
        return spread + np.einsum("k,kij->ij", self.weights, self.covs)

    def marginal(self, t):
        """Exact mean and covariance of p_t.

        Parameters
        ----------
        t : float
            OU time, >= 0.

        Returns
        -------
        mean : ndarray, shape (d,)
            α_t · mean.
        cov : ndarray, shape (d, d)
            α_t² · cov + σ_t² I.
        """
        t = float(_check_times(t, 1, "t")[0])
        a = float(alpha(t))
        return a * self.mean, a * a * self.cov + float(sigma2(t)) * np.eye(self.dim)

    # -- closed forms ---------------------------------------------------------------------

    def _points(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {x.shape}")
        return x

    def _coefficients(self, x, t):
        """Checked points and their α_t, σ_t² as (n, 1) columns."""
        x = self._points(x)
        t = _check_times(t, x.shape[0], "t")
        return x, alpha(t)[:, None], sigma2(t)[:, None]

    def _component(self, k, x, a, s2, gradient=True):
        """log N(x; α μ_k, C_k(t)) per row and, if asked, C_k(t)^{-1} (x - α μ_k).

        ``a`` and ``s2`` are (n, 1) columns, one time per row.
        """
        resid = x - a * self.means[k]
        if self.isotropic:
            c = a * a * self._scales2[k] + s2
            quad = np.einsum("ij,ij->i", resid, resid) / c[:, 0]
            logdet = self.dim * np.log(c[:, 0])
            prec_resid = resid / c if gradient else None
        else:
            v = a * a * self._eigvals[k] + s2
            y = resid @ self._eigvecs[k]
            quad = np.einsum("ij,ij->i", y, y / v)
            logdet = np.log(v).sum(axis=1)
            prec_resid = (y / v) @ self._eigvecs[k].T if gradient else None
        return -0.5 * (quad + logdet + self.dim * _LOG_2PI), prec_resid

    def score(self, x, t):
        """∇log p_t(x) = -Σ_k r_k(x, t) C_k(t)^{-1} (x - α_t μ_k).

        The responsibilities r_k are a softmax of log w_k + log N(x; α_t μ_k, C_k(t)),
        accumulated by a streaming log-sum-exp so that no weight overflows or underflows
        to 0/0 far from the modes.

        Parameters
        ----------
        x : array_like, shape (n, d)
        t : float or array_like, shape (n,)
            OU times, >= 0.

        Returns
        -------
        ndarray, shape (n, d)
        """
        return self._score(*self._coefficients(x, t))

    def _score(self, x, a, s2):
        """The score at checked points, with α_t and σ_t² as (n, 1) columns."""
        n = x.shape[0]
        top = np.full(n, -np.inf)
        total = np.zeros(n)
        acc = np.zeros_like(x)
        for k in range(self.n_components):
            logpdf, prec_resid = self._component(k, x, a, s2)
            term = self._log_weights[k] + logpdf
            new_top = np.maximum(top, term)
            shrink = np.exp(top - new_top)
            weight = np.exp(term - new_top)
            total = total * shrink + weight
            acc = acc * shrink[:, None] - weight[:, None] * prec_resid
            top = new_top
        return acc / total[:, None]

    def denoise(self, x, t):
        """Tweedie's posterior mean E[X_0 | X_t = x] = (x + σ_t² ∇log p_t(x)) / α_t.

        Parameters
        ----------
        x : array_like, shape (n, d)
        t : float or array_like, shape (n,)
            OU times, >= 0.

        Returns
        -------
        ndarray, shape (n, d)
        """
        x, a, s2 = self._coefficients(x, t)
        return (x + s2 * self._score(x, a, s2)) / a

    def logpdf_t(self, x, t):
        """log p_t(x), normalized.

        Parameters
        ----------
        x : array_like, shape (n, d)
        t : float or array_like, shape (n,)
            OU times, >= 0.

        Returns
        -------
        ndarray, shape (n,)
        """
        x, a, s2 = self._coefficients(x, t)
        terms = [self._log_weights[k] + self._component(k, x, a, s2, gradient=False)[0]
                 for k in range(self.n_components)]
        return logsumexp(np.stack(terms, axis=1), axis=1)

    def mode_assign(self, x):
        """The component each point belongs to: argmax_k log N(x; μ_k, Σ_k).

        The weights are left out on purpose (docs/theory.md §10; as in the benchmark suite
        of Blessing et al. 2024, "Beyond ELBOs"): a light mode keeps its points, so the
        recovered weights count_k / n measure the sampler, not the assignment rule.

        Parameters
        ----------
        x : array_like, shape (n, d)

        Returns
        -------
        ndarray of int, shape (n,)
            Component indices in 0..K-1.
        """
        x = self._points(x)
        one, zero = np.ones((x.shape[0], 1)), np.zeros((x.shape[0], 1))
        terms = [self._component(k, x, one, zero, gradient=False)[0]
                 for k in range(self.n_components)]
        return np.argmax(np.stack(terms, axis=1), axis=1)

    # -- exact samples --------------------------------------------------------------------

    def sample(self, n, seed=None, *, return_components=False):
        """Exact draws from p_0.

        Parameters
        ----------
        n : int
            Number of draws, >= 0.
        seed : None, int, SeedSequence or numpy Generator
            Passed to ``numpy.random.default_rng`` (a Generator is used as is).
        return_components : bool
            Also return the component each draw came from.

        Returns
        -------
        x : ndarray, shape (n, d)
        components : ndarray of int, shape (n,)
            Only when ``return_components``.
        """
        n = _check_count(n, "n", 0)
        rng = np.random.default_rng(seed)
        components = rng.choice(self.n_components, size=n, p=self.weights)
        z = rng.standard_normal((n, self.dim))
        x = self.means[components]
        for k in range(self.n_components):
            rows = components == k
            if self.isotropic:
                x[rows] += self.scales[k] * z[rows]
            else:
                x[rows] += (z[rows] * np.sqrt(self._eigvals[k])) @ self._eigvecs[k].T
        return (x, components) if return_components else x

    def sample_t(self, n, t, seed=None):
        """Exact draws from p_t: α_t X_0 + σ_t Z with X_0 ~ p_0 and Z ~ N(0, I).

        Parameters
        ----------
        n : int
            Number of draws, >= 0.
        t : float or array_like, shape (n,)
            OU times, >= 0.
        seed : None, int, SeedSequence or numpy Generator
            Passed to ``numpy.random.default_rng``.

        Returns
        -------
        ndarray, shape (n, d)
        """
        n = _check_count(n, "n", 0)
        t = _check_times(t, n, "t")
        rng = np.random.default_rng(seed)
        x0 = self.sample(n, rng)
        z = rng.standard_normal((n, self.dim))
        return alpha(t)[:, None] * x0 + np.sqrt(sigma2(t))[:, None] * z


class GaussianData(GaussianMixture):
    """Gaussian data N(mean, cov): a one-component mixture with its exact flow map.

    Every quantity is linear in x. In each eigen-direction of Σ = U diag(λ) Uᵀ the
    variance of p_t is v_t = α_t² λ + σ_t², and the probability-flow ODE moves
    x_t - α_t m by the factor sqrt(v_t / v_s) (docs/theory.md §10).

    Parameters
    ----------
    mean : array_like, shape (d,)
    cov : array_like, shape (d, d)
        Symmetric positive definite.

    Attributes
    ----------
    mean : ndarray, shape (d,)
    cov : ndarray, shape (d, d)
        Symmetrized ``cov``.

    Raises
    ------
    ValueError
        Naming the invalid argument.

    Notes
    -----
    The other attributes and methods are those of :class:`GaussianMixture` with K = 1
    (full-covariance kind); :meth:`GaussianMixture.marginal` is then the exact law
    p_t = N(mean_t, cov_t).
    """

    def __init__(self, mean, cov):
        mean = np.array(mean, dtype=np.float64)
        if mean.ndim != 1:
            raise ValueError(f"mean must have shape (d,), got {mean.shape}")
        mean = _check_finite(mean, "mean", mean.shape, "(d,) with d >= 1")
        d = mean.size
        cov = _check_finite(cov, "cov", (d, d), f"({d}, {d})")
        covs, eigvals, eigvecs = _decompose(cov[None], ["cov"])
        self._setup(np.ones(1), mean[None], covs=covs, eigvals=eigvals, eigvecs=eigvecs)

    def flow(self, x, t_from, t_to):
        """Exact probability-flow ODE map from time ``t_from`` to time ``t_to``.

        x_t - α_t m = U diag(sqrt(v_t / v_s)) Uᵀ (x_s - α_s m), with v = α² λ + σ². It
        maps p_s onto p_t, works in both directions, and composes: flow(flow(x, r, s), s, t)
        = flow(x, r, t).

        Parameters
        ----------
        x : array_like, shape (n, d)
            Points at time ``t_from``.
        t_from, t_to : float or array_like, shape (n,)
            OU times, >= 0.

        Returns
        -------
        ndarray, shape (n, d)
            Points at time ``t_to``.
        """
        x = self._points(x)
        n = x.shape[0]
        s = _check_times(t_from, n, "t_from")
        t = _check_times(t_to, n, "t_to")
        a_s, a_t = alpha(s)[:, None], alpha(t)[:, None]
        lam, u, m = self._eigvals[0], self._eigvecs[0], self.means[0]
        v_s = a_s * a_s * lam + sigma2(s)[:, None]
        v_t = a_t * a_t * lam + sigma2(t)[:, None]
        return a_t * m + (((x - a_s * m) @ u) * np.sqrt(v_t / v_s)) @ u.T


# ---------------------------------------------------------------------------------------
# Presets: targets with known answers (docs/theory.md §10).


def grid_mixture(d):
    """The 25-mode grid mixture of the posterior-sampling benchmarks (MCGdiff, TMPD).

    From Cardoso et al. (2024) and Boys et al. (2024); references in docs/theory.md.

    Means (8i, 8j, 8i, 8j, …) for i, j ∈ {-2, …, 2}, the pair (i, j) repeated d/2 times,
    i major (``torch.cartesian_prod(arange(-2, 3) * 8).repeat(1, d // 2)``); unit
    covariance; uniform weights 1/25. Neighbouring modes are 8·sqrt(d/2) apart, so
    :meth:`GaussianMixture.mode_assign` misplaces a draw with probability below
    4 Φ(-4) ≈ 1.3e-4.

    Parameters
    ----------
    d : int
        Even dimension >= 2 (the benchmarks use 8, 80, 800).

    Returns
    -------
    GaussianMixture
        Isotropic, K = 25.
    """
    d = _check_count(d, "d", 2)
    if d % 2:
        raise ValueError(f"d must be even, got {d}")
    pairs = 8.0 * np.array([(i, j) for i in range(-2, 3) for j in range(-2, 3)])
    return GaussianMixture(np.full(25, 1.0 / 25.0), np.tile(pairs, (1, d // 2)),
                           scales=np.ones(25))


def two_modes(d, separation=8.0):
    """Two unequal modes, ⅔ N(-a·1, I) + ⅓ N(+a·1, I): the mode-weight recovery test.

    a = separation / (2 sqrt(d)), so the means lie ``separation`` apart (in units of the
    common standard deviation) whatever d. The default 8 leaves a density dip of about
    e^{-8} between the modes, which a probability-flow sampler with a poor score fails to
    cross in the right proportions, while :meth:`GaussianMixture.mode_assign` misplaces an
    exact draw with probability Φ(-separation/2) ≈ 3e-5 only.

    Parameters
    ----------
    d : int
        Dimension, >= 1.
    separation : float
        Distance ‖μ_2 - μ_1‖ between the means, > 0.

    Returns
    -------
    GaussianMixture
        Isotropic, weights (2/3, 1/3), the heavy mode at -a·1.
    """
    d = _check_count(d, "d", 1)
    if not (np.isfinite(separation) and separation > 0):
        raise ValueError(f"separation must be finite and positive, got {separation!r}")
    a = separation / (2.0 * np.sqrt(d))
    return GaussianMixture([2.0 / 3.0, 1.0 / 3.0], [np.full(d, -a), np.full(d, a)],
                           scales=np.ones(2))


def ill_conditioned_gaussian(d, condition=1e3, seed=0):
    """Centred Gaussian data with a rotated, geometrically spread spectrum.

    The covariance eigenvalues run geometrically from 1 down to 1/condition, so the data
    is nowhere wider than the stationary N(0, I) and the score's Lipschitz constant near
    t = 0 is ``condition`` (stiffness at the end of the reverse run). The eigenvectors are a
    Haar-random rotation drawn from ``seed``.

    Parameters
    ----------
    d : int
        Dimension, >= 2.
    condition : float
        Condition number of the covariance, >= 1.
    seed : int
        Seed of the rotation.

    Returns
    -------
    GaussianData
        Mean 0.
    """
    d = _check_count(d, "d", 2)
    if not (np.isfinite(condition) and condition >= 1):
        raise ValueError(f"condition must be finite and >= 1, got {condition!r}")
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    q *= np.sign(np.diag(r))  # makes the QR rotation Haar-distributed
    cov = (q * np.geomspace(1.0, 1.0 / condition, d)) @ q.T
    return GaussianData(np.zeros(d), 0.5 * (cov + cov.T))
