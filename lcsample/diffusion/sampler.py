"""``lcsample.diffusion.sample``: predictor steps along a decreasing time grid, correctors between.

Reverse-time probability-flow ODE in OU time (docs/theory.md §10): from noise level t to
t - h, x_{t-h} = e^h x_t + ∫_0^h e^{h-r} ∇log p_{t-r}(x_{t-r}) dr. Predictors:

* ``"dpm-pc"`` (the default): a multistep predictor–corrector on the data prediction,
  DPM-Solver++ multistep with a UniPC-style correction, order 2–3
  (:mod:`lcsample.diffusion.multistep`); 1 score evaluation per step plus 1. The best of
  the predictors, and ahead of k-diffusion's solvers, at 10–80 evaluations
  (docs/diffusion.md, "Against k-diffusion").
* ``"rm"``: the paper's randomized midpoint (Gupta, Cai & Chen 2025, Algorithm 1): with
  α ~ U(0, 1) per sample, x_mid = e^{αh} x + (e^{αh} - 1) s_t(x), then
  x' = e^h x + h e^{(1-α)h} s_{t-αh}(x_mid) — an unbiased estimate of the integral;
  2 score evaluations per step.
* ``"ddim"``: DDIM (η = 0), the data-prediction exponential integrator (DPM-Solver++(1),
  k-diffusion's Euler): the denoiser x̂₀ = (x + σ_t² s_t(x))/α_t frozen over the step,
  x' = (σ_{t-h}/σ_t) x + α_{t-h}(1 - e^{-h_λ}) x̂₀, with h_λ the step in log(α/σ).
* ``"exp-euler"``: the exponential integrator with the *score* frozen,
  x' = e^h x + (e^h - 1) s_t(x) (not DDIM: it overshoots stiff directions).
* ``"ddpm"``: the exponential integrator of the reverse SDE,
  x' = e^h x + 2(e^h - 1) s_t(x) + √(e^{2h} - 1) z.
* ``"heun"``: EDM's second-order Heun step in variance-exploding coordinates
  (x/α_t, σ = √(e^{2t} - 1)); 2 evaluations per step.

Correctors (the paper's Algorithm 2, after Chen et al. 2023) run underdamped Langevin
dynamics on s_t at the fixed level reached, from a fresh velocity, with the MCMC sampler's
step kernels (:mod:`lcsample.diffusion.corrector`): ``"uld"`` (exponential Euler, the
paper's corrector, 1 evaluation per step) or ``"uld-rm"`` (randomized midpoint, 2).

Randomness: sample i has its own stream, ``SeedSequence(seed)``'s child i, so it is the
same whether drawn alone (``first_sample=i``), in a batch of any size, or in chunks.
"""

import threading
import time
import warnings

import numpy as np
from numba.core.registry import CPUDispatcher

from .._executors import check_executor
from .._interrupt import ctrl_c_stops
from .._memory import GIB, available_memory
from .._progress import progress_bar
from .._validate import non_negative_float, positive_float, positive_int
from . import multistep
from .backend import choose_backend, is_tensor
from .corrector import CORRECTORS, Streams, correct, corrector_settings
from .distributed import sample_in_chunks
from .multistep import MULTISTEP
from .picard import run as picard_run
from .picard import unconverged_message
from .predictors import predict, tweedie, unit_variance
from .process import T_MIN, check_grid, time_grid

__all__ = ["CORRECTORS", "METHODS", "PREDICTORS", "sample"]

#: Evaluations per step ("dpm-pc": plus one at the start).
PREDICTORS = {"dpm-pc": 1, "rm": 2, "ddim": 1, "exp-euler": 1, "ddpm": 1, "heun": 2}
#: A grid on which the predictor's variance on N(0, I) data is off by more than this factor
#: gets a RuntimeWarning (``_check_steps``); the default grid keeps every predictor
#: within 10 %, and a factor 2 is where the first-order ones visibly fail (docs/diffusion.md).
_ACCURATE = 2.0
_PRESET = object()  # an argument left to the method's preset
#: Named combinations; None holds the defaults of every argument a method may set.
#: "rm-uld" (the paper's Algorithm 3: a corrector of 2 steps after every step) was the best
#: of six window/length choices at 56-120 evaluations per sample on the κ = 100 Gaussian and
#: the 25-mode grid (d = 8).
METHODS = {
    None: {"predictor": "dpm-pc", "corrector": None, "corrector_every": 1, "corrector_steps": 4},
    "rm-uld": {"predictor": "rm", "corrector": "uld", "corrector_every": 1, "corrector_steps": 2},
}
_RENAMED_METHODS = {"gcc": "rm-uld"}


class _Oracle:
    """Batched score calls on the run's backend, with exact counts and clear errors."""

    def __init__(self, score, dim, args, first_sample, backend):
        if not callable(score):
            raise TypeError("score must be callable")
        self.jitted = isinstance(score, CPUDispatcher)
        if self.jitted and backend.name != "numpy":
            raise ValueError("device/dtype are for a score on torch tensors; a numba-jitted "
                             "score runs on NumPy arrays (leave device and dtype unset)")
        self.score, self.dim, self.args = score, dim, args
        self.first_sample, self.backend = first_sample, backend
        self.nfe = 0
        self.rounds = 0

    def __call__(self, x, t, samples=None):
        """Scores at rows ``x`` (n, d), times ``t`` (n,); ``samples``: each row's sample (n,).

        ``t`` comes as host float64 and goes to the score on the samples' backend. One
        finiteness check covers the points and the scores (one synchronisation on a
        device); a bad row is blamed on the step before when its point is non-finite.
        """
        if self.jitted:
            out = np.empty_like(x)
            self.score(x, t, out, *self.args)
        else:
            out = self._convert(self.score(x, self.backend.put(t), *self.args))
        if out.shape != x.shape:
            raise ValueError(f"score returned shape {tuple(out.shape)} at t = {t[0]:.6g}; "
                             f"expected {tuple(x.shape)}")
        self.nfe += x.shape[0]
        self.rounds += 1
        bad = ~self.backend.finite_rows(x, out)
        if bad.any():
            self._raise_non_finite(x, t, bad, samples)
        return out

    def _convert(self, out):
        """The score's output as a working array; a tensor elsewhere is refused, not copied."""
        if self.backend.name == "numpy":
            return np.asarray(out, dtype=np.float64)
        if not is_tensor(out):
            raise ValueError(f"score returned {type(out).__name__}; with device/dtype set it must "
                             f"return a torch.Tensor on {self.backend.device}")
        if out.device != self.backend.device:
            raise ValueError(f"score returned a tensor on {out.device}; the samples are on "
                             f"{self.backend.device} (device=)")
        return out.to(self.backend.dtype)

    def _raise_non_finite(self, x, t, bad, samples):
        """The error for non-finite rows ``bad``: the step's fault or the score's."""
        x_bad = ~self.backend.finite_rows(x)
        if x_bad.any():  # the step before made the point so, not the score
            r = int(np.flatnonzero(x_bad)[0])
            raise ValueError(f"sample {self._sample(r, samples)} became non-finite before the "
                             f"score call at t = {t[r]:.6g}: the grid's steps are too long for "
                             "the predictor (more steps, or a smaller t_max)")
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"score returned non-finite values at t = {t[i]:.6g} for sample "
                         f"{self._sample(i, samples)} (and {int(bad.sum()) - 1} more)")

    def _sample(self, row, samples):
        """The global index of the sample of batch row ``row``."""
        return self.first_sample + int(row if samples is None else samples[row])


def _streams(seed, first_sample, n):
    """Per-sample generators: child ``first_sample + j`` of ``SeedSequence(seed)``."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.default_rng(np.random.SeedSequence(
        root.entropy, spawn_key=root.spawn_key + (first_sample + j,), pool_size=root.pool_size))
        for j in range(n)]


def sample(score, *, dim, num_samples, method=None, predictor=_PRESET, corrector=_PRESET,
           steps=50, grid="logsnr", t_max=5.0, t_min=T_MIN, ts=None, corrector_every=_PRESET,
           corrector_steps=_PRESET, corrector_step_size=None, friction=None, denoise=False,
           seed=None, first_sample=0, x_init=None, score_args=(), callback=None,
           progressbar=True, picard_steps=None, tolerance=1e-3, max_rounds=None, strict=False,
           executor=None, device=None, dtype=None):
    """Sample a diffusion model by integrating its reverse process.

    Parameters
    ----------
    score : callable
        ∇log p_t in OU time: a numba-jitted ``score(x, t, out, *score_args)``, or a callable
        ``score(x, t, *score_args) -> (n, d)`` on NumPy arrays, or on torch tensors when
        ``device``/``dtype`` is set; x (n, d), t (n,). One call per round, whole batch.
    dim, num_samples : int
    method : {None, "rm-uld"}
        A named combination. ``"rm-uld"``: the paper's Algorithm 3, randomized-midpoint
        predictor steps each followed by a short exponential-Euler underdamped-Langevin
        corrector (2 steps at the stiffness-scaled defaults). Arguments given explicitly
        override it. None: ``predictor="dpm-pc"`` and no corrector.
    predictor : {"dpm-pc", "rm", "ddim", "exp-euler", "ddpm", "heun"}
        See the module docstring; ``"rm"`` is the paper's randomized midpoint.
    corrector : {None, "uld", "uld-rm"}
    steps : int
        Predictor steps when ``ts`` is not given. A grid too short for the predictor is
        refused, or warned about, naming the fewest steps that work.
    grid : {"logsnr", "uniform", "karras", "windows"}
        Built-in grid (:func:`lcsample.diffusion.time_grid`); uniform in log-SNR by
        default, which resolves the stiff last levels (docs/diffusion.md).
    t_max, t_min : float
        Grid end points: start noise level (at most 354.8, where e^{2t} overflows) and end
        time δ > 0, by default σ_VE = 0.002 (``process.T_MIN``, EDM's σ_min).
    ts : array_like, optional
        An explicit strictly decreasing grid of OU times, ending at t > 0.
    corrector_every : int or "end"
        Run the corrector after every ``corrector_every``-th predictor step (the paper's
        windows); ``"end"``: once, after the last step (the paper's parallel algorithm).
    corrector_steps : int
        Langevin steps per corrector run (default 4; 2 for ``"rm-uld"``).
    corrector_step_size, friction : float, optional
        Step and friction γ of the corrector (unit inverse mass). Default at level t:
        h = σ_t/4, γ = 2/σ_t, from the bound -∇²log p_t ≼ I/σ_t² (docs/theory.md §10).
    denoise : bool
        Finish with the Tweedie step x ← (x + σ²s)/α at the last time (1 evaluation;
        none for ``"dpm-pc"``, whose last evaluation gives it).
    seed : int or numpy.random.SeedSequence, optional
    first_sample : int
        Index of the first sample in the seed's streams (to draw in chunks).
    x_init : array_like, shape (num_samples, dim), optional
        Start at the first grid time; default N(0, I) from each sample's stream.
    score_args : tuple
    callback : callable, optional
        ``callback(i, t, x, denoised)`` before predictor step i, with the clean-sample
        estimate (``"dpm-pc"``: the one its step uses); False stops the run there.
    progressbar : bool
        A tqdm bar over the grid's steps, when stderr is a terminal.
    picard_steps : int, optional
        Picard-parallel sampling in windows of up to ``picard_steps`` predictor steps
        (:mod:`lcsample.diffusion.picard`, docs/parallel.md); converged, it is the
        sequential result for the same seed. None (default): sequential.
    tolerance : float
        Picard stopping rule: no point moved by more than ``tolerance`` times its step's
        noise scale in the last round (docs/parallel.md); 0 runs to the exact result.
    max_rounds : int, optional
        Picard rounds per window at most; a window stopped unconverged is warned about.
    strict : bool
        Raise a ``RuntimeError`` for such a window instead.
    executor : dask.distributed.Client or concurrent.futures.Executor, optional
        Draw the samples in chunks on its workers: a local call's samples, bit for bit.
    device, dtype : optional
        Run on torch tensors (a device name or ``torch.device``; ``torch.float32``, the
        default, or ``torch.float64``): every step on the device, the random numbers from
        the samples' streams (docs/diffusion.md, "PyTorch"). A tensor ``x_init`` implies it.

    Returns
    -------
    samples : ndarray or torch.Tensor, shape (num_samples, dim)
    info : dict
        ``nfe`` (score evaluations, rows), ``nfe_per_sample``, ``rounds`` (sequential
        batched score calls), ``ts``, ``time`` (seconds), ``interrupted`` (Ctrl-C
        stops a run); with ``picard_steps`` also ``windows``, ``window_rounds``, ``converged``
        (docs/parallel.md).
    """
    opts = _validate(locals())  # the arguments as given, checked before any work
    if opts["executor"] is not None:
        return sample_in_chunks(sample, opts["executor"], opts)
    oracle = _Oracle(score, opts["dim"], score_args, opts["first_sample"], opts["backend"])
    rngs = Streams(_streams(seed, opts["first_sample"], opts["num_samples"]))
    x = _start(x_init, rngs, opts["num_samples"], opts["dim"], opts["backend"])
    t0 = time.perf_counter()
    stop = threading.Event()
    with ctrl_c_stops(stop), progress_bar(len(opts["ts"]) - 1, progressbar) as bar:
        x, interrupted, extra = _run(oracle, opts, x, rngs, callback, bar, stop)
    info = {"method": method, "nfe": oracle.nfe, "nfe_per_sample": oracle.nfe / len(x),
            "rounds": oracle.rounds, "ts": opts["ts"], "time": time.perf_counter() - t0,
            "interrupted": interrupted, "predictor": opts["predictor"],
            "corrector": opts["corrector"], **extra}
    return x, info


def _validate(args):
    """The arguments of :func:`sample` checked, with the method's preset filled in."""
    a = dict(args)
    if a["method"] in _RENAMED_METHODS:
        raise ValueError(f"method={a['method']!r} is now {_RENAMED_METHODS[a['method']]!r}")
    if a["method"] not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {a['method']!r}")
    preset = {**METHODS[None], **METHODS[a["method"]]}
    for name in preset:
        a[name] = preset[name] if a[name] is _PRESET else a[name]
    if a["predictor"] not in PREDICTORS:
        raise ValueError(f"predictor must be one of {list(PREDICTORS)}, got {a['predictor']!r}")
    if a["corrector"] is not None and a["corrector"] not in CORRECTORS:
        raise ValueError(f"corrector must be one of {[None, *CORRECTORS]}, got {a['corrector']!r}")
    a.update(_validate_picard(a))
    a["executor"] = check_executor(a["executor"])
    if a["executor"] is not None and a["callback"] is not None:
        raise ValueError("callback is not supported with executor: the steps run on workers")
    if not isinstance(a["strict"], (bool, np.bool_)):
        raise ValueError(f"strict must be True or False, got {a['strict']!r}")
    for name in ("dim", "num_samples", "corrector_steps"):
        a[name] = positive_int(a[name], name)
    a["first_sample"] = positive_int(a["first_sample"], "first_sample", minimum=0)
    a["backend"] = choose_backend(a["device"], a["dtype"], a["x_init"])
    if a["executor"] is not None and a["backend"].name != "numpy":
        raise ValueError("executor runs NumPy scores on workers; with device/dtype (torch), "
                         "batch on the device instead")
    _check_size(a["num_samples"], a["dim"], a["backend"])
    a["ts"] = check_grid(a["ts"]) if a["ts"] is not None else time_grid(
        a["steps"], a["grid"], a["t_max"], a["t_min"])
    if a["corrector_every"] == "end":
        a["corrector_every"] = len(a["ts"]) - 1
    a["corrector_every"] = positive_int(a["corrector_every"], "corrector_every")
    a["friction"] = positive_float(a["friction"], "friction")
    a["corrector_step_size"] = positive_float(a["corrector_step_size"], "corrector_step_size")
    if not isinstance(a["score_args"], tuple):
        raise ValueError(f"score_args must be a tuple, got {type(a['score_args']).__name__}")
    _check_steps(a["predictor"], a["ts"], None if args["ts"] is not None else args)
    return a


def _check_steps(predictor, ts, built):
    """Refuse a grid on which the predictor is unstable; warn where it is inaccurate.

    The measure is exact (:func:`lcsample.diffusion.predictors.unit_variance`): the
    predictor's variance on N(0, I) data, whose exact value is 1. Unstable: more than
    e^{2(t_max - t_min)}, the most the exact flow stretches Gaussian data of any width
    (variance λ: (α_δ²λ + σ_δ²)/(α_T²λ + σ_T²) → e^{2(T - δ)} as λ → ∞), so no data could
    give it. Inaccurate: off by more than a factor ``_ACCURATE``. ``built``: the arguments
    :func:`lcsample.diffusion.time_grid` built ``ts`` from (then ``steps`` is named with the
    fewest that keep it accurate), or None for a user ``ts``.
    """
    ratio = unit_variance(predictor, ts)
    if 1.0 / _ACCURATE <= ratio <= _ACCURATE:
        return
    stretch = np.exp(2.0 * (ts[0] - ts[-1]))
    if built is None:
        k = int(np.argmax(-np.diff(ts)))
        what, fix = "ts", f"split its long steps (the longest: t = {ts[k]:.4g} to {ts[k + 1]:.4g})"
    else:
        fewest = _fewest_steps(predictor, built)
        what = f"steps={built['steps']} (grid={built['grid']!r}, t_max={built['t_max']})"
        fix = (f"steps={fewest} is the fewest within a factor {_ACCURATE:g}" if fewest else
               f"no steps up to {_MOST_STEPS:,} are within a factor {_ACCURATE:g}: lower t_max")
    text = (f"{what} is too coarse for predictor={predictor!r}: on N(0, I) data, the law every "
            f"data approaches at high noise, it gives {ratio:.3g} times the exact variance")
    if not ratio <= stretch:
        raise ValueError(f"{text}, more than the exact flow can stretch any Gaussian data "
                         f"(e^(2(t_max - t_min)) = {stretch:.3g}): unstable; {fix}")
    warnings.warn(f"{text}; {fix}", RuntimeWarning, stacklevel=4)


_MOST_STEPS = 2**20  # where the search for the fewest steps gives up (a 1 M-point grid)


def _fewest_steps(predictor, built):
    """The fewest grid steps keeping the predictor within ``_ACCURATE`` on N(0, I) data.

    Doubling, then bisection (the ratio tends to 1 as steps grow, not always monotonically
    at the first few); None if not even ``_MOST_STEPS`` do.
    """
    def accurate(k):
        ratio = unit_variance(predictor, time_grid(k, built["grid"], built["t_max"],
                                                   built["t_min"]))
        return 1.0 / _ACCURATE <= ratio <= _ACCURATE

    low, high = built["steps"], 2 * built["steps"]
    while not accurate(high):
        if high >= _MOST_STEPS:
            return None
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if accurate(mid) else (mid, high)
    return high


def _check_size(n, dim, backend):
    """Refuse a batch whose working arrays (about 16 of shape (n, d)) cannot fit in RAM.

    A device's memory is the device's to report (torch raises its own out-of-memory error).
    """
    if str(backend.device) != "cpu":
        return
    need, have = 16.0 * backend.itemsize * n * dim, available_memory()
    if have is not None and need > have:
        raise ValueError(
            f"num_samples={n} with dim={dim} needs about {need / GIB:,.1f} GiB of working "
            f"arrays and {have / GIB:,.1f} GiB is available: draw the samples in chunks "
            "(first_sample= gives each chunk its own streams)")


def _validate_picard(a):
    """``picard_steps``, ``tolerance`` and ``max_rounds``, checked when Picard is on."""
    if a["picard_steps"] is None:
        return {}
    if a["callback"] is not None:
        raise ValueError("callback is not supported with picard_steps; it needs the score at "
                         "every step, which a Picard window does not compute")
    rounds = a["max_rounds"]
    return {"picard_steps": positive_int(a["picard_steps"], "picard_steps"),
            "tolerance": non_negative_float(a["tolerance"], "tolerance"),
            "max_rounds": None if rounds is None else positive_int(rounds, "max_rounds")}


def _start(x_init, rngs, n, dim, backend):
    """The starting points on the backend: N(0, I) from each sample's stream, or ``x_init``."""
    if x_init is None:
        return backend.put([rng.standard_normal(dim) for rng in rngs])
    x = backend.put(x_init) if not is_tensor(x_init) else x_init.to(backend.device,
                                                                     backend.dtype)
    if tuple(x.shape) != (n, dim) or not backend.finite_rows(x).all():
        raise ValueError(f"x_init must be finite with shape ({n}, {dim}), got {tuple(x.shape)}")
    return backend.copy(x)


def _run(oracle, opts, x, rngs, callback, bar, stop):
    """Sequential or Picard windows; returns (x, interrupted, Picard info).

    ``stop`` (set by Ctrl-C) ends the run at the next step or window, with the samples
    where they are.
    """
    ts = opts["ts"]
    corrector_args = tuple(opts[k] for k in ("corrector", "corrector_every", "corrector_steps",
                                             "corrector_step_size", "friction"))
    if opts["picard_steps"] is None:
        def go_on(i, t, x, denoised):  # denoised(): the Tweedie estimate, made on demand
            if stop.is_set():
                return False
            return callback is None or callback(i, t, x, denoised()) is not False

        x, interrupted = _run_sequential(oracle, ts, opts["predictor"], corrector_args, x, rngs,
                                         opts["denoise"], go_on, bar)
        return x, interrupted, {}
    x, last_denoised, windows, unconverged = picard_run(
        oracle, ts, opts["predictor"], corrector_args, x, rngs, opts["picard_steps"],
        opts["tolerance"], opts["max_rounds"], bar, stop, opts["strict"])
    if unconverged.any():
        warnings.warn(unconverged_message([w for w in windows if not w["converged"]],
                                          int(unconverged.sum()), opts["tolerance"],
                                          opts["max_rounds"]), RuntimeWarning, stacklevel=3)
    if opts["denoise"] and not stop.is_set():
        x = last_denoised if last_denoised is not None else tweedie(oracle, x, ts[-1])
    return x, stop.is_set(), {"picard_steps": opts["picard_steps"], "tolerance": opts["tolerance"],
                      "windows": windows,
                      "window_rounds": np.array([w["rounds"] for w in windows]),
                      "converged": all(w["converged"] for w in windows)}


def _run_sequential(oracle, ts, predictor, corrector_args, x, streams, denoise, go_on, bar):
    """The sampling loop: one batched score call per round, the steps vectorized.

    ``go_on(i, t, x, denoised)`` before step i (``denoised()`` makes the Tweedie estimate):
    False stops the run there.
    """
    corrector, every, n_corr, h_fixed, gamma_fixed = corrector_args

    def after_step(i, x):  # the corrector run after step i, if one is due
        if corrector is None or (i + 1) % every:
            return None
        return correct(corrector, oracle, x, ts[i + 1], n_corr,
                       *corrector_settings(ts[i + 1], h_fixed, gamma_fixed), streams)

    if predictor in MULTISTEP:
        x, last, interrupted = multistep.run(oracle, ts, x, go_on, after_step, bar)
        return (last if denoise and not interrupted else x), interrupted
    n = x.shape[0]
    s = None  # the scores at x, when a corrector run ended there
    for i in range(len(ts) - 1):
        t, t_next = ts[i], ts[i + 1]
        if s is None:
            s = oracle(x, np.full(n, t))
        if not go_on(i, t, x, lambda: multistep.denoised(x, s, t)):  # noqa: B023
            return x, True
        x = predict(predictor, oracle, x, s, t, t_next, streams)
        x, s = after_step(i, x) or (x, None)
        bar.update(1)
    if denoise:
        x = tweedie(oracle, x, ts[-1], s)
    return x, False
