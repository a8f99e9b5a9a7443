"""Picard-parallel diffusion sampling: windows of the sequential sampler in few rounds.

The grid is cut into windows of at most ``picard_steps`` predictor steps, ending where a
corrector runs; each corrector run is a window of its own (one block of Anari, Chewi &
Vuong's parallel ULMC, docs/theory.md §11). A window is solved by Picard iteration:

1. **Pass 0.** The window's sequential code (:func:`lcsample.diffusion.predictors.predict`,
   :func:`lcsample.diffusion.corrector.correct`) runs with every score call answered by a
   guess: the score of the window's start state for the first window (the exponential-
   integrator initialisation of the paper's parallel predictor, docs/theory.md §11), the
   last score evaluated before it for the others. The pass records where scores were
   asked (the anchors and the randomized midpoints of each step, at their stratified
   random times) and every random number drawn.
2. **Rounds.** All points whose answer is stale are scored in **one** batched call; the
   pass is re-run with those answers and the *same* random numbers (replayed, never
   re-drawn). Because each point depends only on earlier answers, the first k points are
   exact after k rounds: a window of Q score calls reaches the sequential result after at
   most Q rounds, and after far fewer when the Picard map contracts (window ≲ 1/(2L)).
3. **Stop.** A sample's window is accepted once no point moved by more than
   ``tolerance`` in a round, in units of the step's noise scale (ParaDiGMS's relative
   residual): RMS over coordinates of Δx divided by √(e^{2h} - 1), the standard deviation
   the reverse SDE adds over a predictor step h, or by the corrector step's position-noise
   standard deviation. Converged samples are not evaluated again; ``max_rounds`` caps the
   rounds per window, and a window that hits it is reported as not converged (a
   ``RuntimeWarning`` after the run; with ``strict`` a ``RuntimeError`` at once).

So the converged output is the sequential sampler's output for the same arguments and
seed (to ``tolerance``; with ``tolerance=0`` to round-off), which the tests check. The
difference from the paper's parallel algorithm (docs/theory.md §11) is deliberate: it
drops each step's anchor score and reuses the previous midpoint's, which halves the rows
per round but has a different fixed point; here the fixed point is paper Algorithm 1
itself (R = 1 and one round give exactly Algorithm 1 on the first window).

Each sample converges on its own, from its own stream, so a sample's output does not
depend on the batch it is drawn in.
"""

import numpy as np

from ..kernels.coefficients import pair_covariance
from . import multistep
from .backend import backend_of
from .corrector import correct, corrector_settings
from .predictors import predict

__all__ = ["plan_windows", "run", "unconverged_message"]


class _Tape:
    """The score oracle of one pass: records each query, answers from the last round."""

    def __init__(self, answers):
        self.answers = answers
        self.points, self.times = [], []

    def __call__(self, x, t):
        q = len(self.points)
        self.points.append(backend_of(x).copy(x))
        self.times.append(np.asarray(t, dtype=np.float64))
        return self.answers[min(q, len(self.answers) - 1)]


def plan_windows(steps, picard_steps, corrector_every=None):
    """Cut ``steps`` predictor steps into Picard windows.

    Parameters
    ----------
    steps, picard_steps : int
        Grid steps; at most ``picard_steps`` of them per window.
    corrector_every : int, optional
        A corrector runs after every ``corrector_every``-th step; windows end there and
        each corrector run is a window of its own.

    Returns
    -------
    list of tuple
        ``("predict", i, j)`` for steps i..j-1, ``("correct", j)`` for the corrector
        after step j-1.
    """
    windows = []
    i = 0
    while i < steps:
        j = min(i + picard_steps, steps)
        if corrector_every is not None:
            j = min(j, (i // corrector_every + 1) * corrector_every)
        windows.append(("predict", i, j))
        if corrector_every is not None and j % corrector_every == 0:
            windows.append(("correct", j))
        i = j
    return windows


def _solve(window, x0, oracle, streams, guess, scale, tolerance, max_rounds, exact_first):
    """Picard iteration of one window for every sample.

    Returns (x_end, the window's carry, report, the last query's answers, which samples
    converged (n,)).

    ``window(x0, oracle, rngs) -> (x_end, carry)`` is the window's sequential code (carry:
    what the next window starts from besides x, the multistep history, or None); ``scale(t)``
    the noise scale of a query at times ``t`` (n,); ``exact_first``: the guess is the
    exact score of the first query (it is then never re-evaluated). The points stay on
    the samples' device; which rows are stale and how far they moved come to the host
    once per round.
    """
    backend = backend_of(x0)
    n = x0.shape[0]
    window_start = streams.save()  # every pass replays the window's draws from here
    tape = _Tape([guess])
    x_end, carry = window(x0, tape, streams)
    points, times = tape.points, tape.times
    # per query: the score answered in the next pass, and where it was evaluated
    answers = [backend.copy(guess) for _ in points]
    scored_at = [backend.full_like(x0, np.nan) for _ in points]
    if exact_first:
        scored_at[0][:] = points[0]
    scales = np.array([scale(t) for t in times])  # (queries, n)
    done = np.zeros(n, dtype=bool)
    residuals = []
    rounds = 0
    while not done.all() and (max_rounds is None or rounds < max_rounds):
        stale = ~done & ~backend.rows_equal(points, scored_at)  # (queries, n)
        if not stale.any():
            done[:] = True  # every point already scored where it is: exact
            break
        _score_stale(oracle, backend, stale, points, times, answers, scored_at)
        rounds += 1
        streams.restore(window_start)
        tape = _Tape(answers)
        x_end, carry = window(x0, tape, streams)
        ratios = backend.row_rms(tape.points, points) / scales
        moved = np.where(np.isfinite(ratios), ratios, np.inf).max(axis=0)
        residuals.append(float(moved[~done].max()))
        done |= moved <= tolerance
        points = tape.points
    report = {"rounds": rounds, "converged": bool(done.all()),
              "unconverged_samples": int((~done).sum()), "residuals": residuals}
    return x_end, carry, report, answers[-1], done


def _score_stale(oracle, backend, stale, points, times, answers, scored_at):
    """Score every stale point (``stale``: (queries, n) host bool) in one batched call."""
    masks = [backend.rows(m) for m in stale]
    rows = backend.concat([p[m] for p, m in zip(points, masks, strict=True)])
    scores = oracle(rows, np.concatenate([t[m] for t, m in zip(times, stale, strict=True)]),
                    samples=np.concatenate([np.flatnonzero(m) for m in stale]))
    start = 0
    for q, m in enumerate(masks):
        k = int(stale[q].sum())
        answers[q][m] = scores[start:start + k]
        scored_at[q][m] = points[q][m]
        start += k


def _window(spec, ts, predictor, corrector_args, n, carry):
    """The sequential code of window ``spec`` (:func:`plan_windows`) for :func:`_solve`.

    Returns ``window(x0, tape, rngs) -> (x_end, carry)``, ``scale(t)`` (the noise scale of
    queries at times t (m,)) and the window's levels (t_start, t_end). ``carry``: the
    previous window's (a multistep predictor's history continues across windows).
    """
    corrector, _, n_corr, h_fixed, gamma_fixed = corrector_args
    if spec[0] == "predict":
        grid = ts[spec[1]:spec[2] + 1]
        noise = np.sqrt(np.expm1(2.0 * -np.diff(grid)))
        coefficients = multistep.coefficients(grid)

        def window(x0, tape, rngs):
            if predictor in multistep.MULTISTEP:
                hist = carry if carry is not None else multistep.start(tape, x0, grid[0])
                for k in range(len(grid) - 1):
                    x0, hist = multistep.step(tape, x0, hist, coefficients, k, grid[k + 1])
                return x0, hist
            for t, t_next in zip(grid[:-1], grid[1:], strict=False):
                x0 = predict(predictor, tape, x0, tape(x0, np.full(n, t)), t, t_next, rngs)
            return x0, None

        def scale(t):
            k = np.searchsorted(-grid, -t, side="right") - 1
            return noise[np.clip(k, 0, len(noise) - 1)]

        return window, scale, (grid[0], grid[-1])
    t = ts[spec[1]]
    h, gamma = corrector_settings(t, h_fixed, gamma_fixed)
    noise = np.sqrt(2.0 * gamma * pair_covariance(h, gamma)[2])

    def window(x0, tape, rngs):  # a multistep history restarts after a corrector run
        return correct(corrector, tape, x0, t, n_corr, h, gamma, rngs)[0], None

    def scale(t_query):
        return np.full(t_query.shape, noise)

    return window, scale, (t, t)


def unconverged_message(reports, n, tolerance, max_rounds):
    """What a run whose windows stopped at ``max_rounds`` says, and what to do about it.

    ``reports``: the windows that stopped unconverged; ``n``: the samples whose windows did.
    """
    worst = max(r["residuals"][-1] for r in reports if r["residuals"])
    return (f"Picard iteration stopped at max_rounds={max_rounds} before tolerance={tolerance} "
            f"in {len(reports)} window(s), for {n} sample(s) (largest last residual "
            f"{worst:.3g}): those samples are not the sequential sampler's. Raise max_rounds "
            "(None: no cap; a window of Q score calls is exact after Q rounds) or tolerance; "
            "info['windows'] has each window's residuals, and strict=True raises instead")


def run(oracle, ts, predictor, corrector_args, x, rngs, picard_steps, tolerance, max_rounds, bar,
        stop, strict=False):
    """The sampling loop in Picard windows.

    Arguments as :func:`lcsample.diffusion.sampler._run_sequential`, plus ``picard_steps`` (steps
    per window), ``tolerance`` and ``max_rounds`` (per window), ``stop`` (a
    ``threading.Event``; once set, no further window starts) and ``strict`` (raise a
    ``RuntimeError`` as soon as a window stops unconverged).

    Returns
    -------
    x : array, shape (n, d)
    denoised : array, shape (n, d), or None
        The multistep predictor's last D (the output of ``denoise=True``), when the
        last window is one of its predictor windows.
    reports : list of dict
        One per window run.
    unconverged : ndarray of bool, shape (n,)
        The samples of which some window stopped unconverged.
    """
    corrector, every = corrector_args[:2]
    n = x.shape[0]
    guess = oracle(x, np.full(n, ts[0]))
    carry = None
    reports = []
    unconverged = np.zeros(n, dtype=bool)
    for w, spec in enumerate(plan_windows(len(ts) - 1, picard_steps,
                                          every if corrector is not None else None)):
        if stop.is_set():  # Ctrl-C: the samples as they are after the last whole window
            break
        window, scale, level = _window(spec, ts, predictor, corrector_args, n, carry)
        x, carry, report, guess, done = _solve(window, x, oracle, rngs, guess, scale, tolerance,
                                               max_rounds, exact_first=w == 0)
        reports.append({"kind": spec[0], "steps": spec[1:], "t": level, **report})
        unconverged |= ~done
        if strict and not report["converged"]:
            raise RuntimeError(unconverged_message([reports[-1]], int((~done).sum()), tolerance,
                                                   max_rounds))
        if spec[0] == "predict":
            bar.update(spec[2] - spec[1])
    return x, None if carry is None else carry.D[-1], reports, unconverged
