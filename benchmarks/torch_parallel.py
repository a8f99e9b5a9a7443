"""Picard-parallel against sequential diffusion sampling of a trained network on torch.

Issue 17, item 4: a Picard window's rounds are one batched network call over every
(sample, grid point) still moving, so a run needs far fewer *sequential* calls than the
grid has points. Whether that buys wall time depends on what a call costs as the batch
grows: on a device with spare parallelism a call of 40·n rows costs about what a call of
n rows does, on a CPU it costs more. This script measures, in one process, for the
trained digits denoiser (``benchmarks/digits_model.py``, float32, EDM noise range
σ = 80 → 0.002 on a Karras grid, finished by a Tweedie step):

* wall time (median of ``--repeats``) of sequential and Picard runs of the same seed;
* sequential rounds (batched network calls) and network evaluations per sample;
* how far the Picard samples are from the sequential ones (max |Δx|, model scale).

    python benchmarks/torch_parallel.py [--device cuda] [--batches 1 16 256] [--quick]

writes ``benchmarks/results/torch_parallel_<device>.{json,md}``. On a GPU this is the short
prepared check of the parallel sampler (a few minutes at most).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
from common import RESULTS, machine_info, write_json  # noqa: E402

from lcsample.diffusion import sample, score_from_denoiser, t_from_sigma_ve  # noqa: E402

SIGMA_MAX, SIGMA_MIN = 80.0, 0.002
CONFIGS = [  # (label, sample() arguments)
    ("dpm-pc, sequential", {"predictor": "dpm-pc"}),
    ("dpm-pc, Picard 40", {"predictor": "dpm-pc", "picard_steps": 40}),
    ("ddim, sequential", {"predictor": "ddim"}),
    ("ddim, Picard 40", {"predictor": "ddim", "picard_steps": 40}),
    ("ddim, Picard 10", {"predictor": "ddim", "picard_steps": 10}),
    ("rm, sequential", {"predictor": "rm"}),
    ("rm, Picard 40", {"predictor": "rm", "picard_steps": 40}),
]


def run(model, device, n, steps, kwargs, repeats):
    """Median wall time and the info of ``repeats`` runs of one configuration."""
    import torch

    score = score_from_denoiser(model)
    args = dict(dim=64, num_samples=n, steps=steps, grid="karras", denoise=True, seed=0,
                t_max=float(t_from_sigma_ve(SIGMA_MAX)), t_min=float(t_from_sigma_ve(SIGMA_MIN)),
                device=device, progressbar=False, **kwargs)
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            if str(device).startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            x, info = sample(score, **args)
            if str(device).startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return x.double().cpu().numpy(), info, float(np.median(times))


def measure(device, batches, steps, repeats, log=print):
    """Every configuration at every batch size; rows of the report."""
    from digits_model import load_denoiser

    model = load_denoiser(device=device)
    run(model, device, 2, 4, {"predictor": "ddim"}, 1)  # warm-up: allocator, kernels
    rows = []
    for n in batches:
        reference = {}
        for label, kwargs in CONFIGS:
            x, info, wall = run(model, device, n, steps, kwargs, repeats)
            key = kwargs["predictor"]
            if "picard_steps" not in kwargs:
                reference[key] = (x, wall)
            x_ref, wall_ref = reference[key]
            row = {"n": n, "config": label, "wall_s": wall, "rounds": info["rounds"],
                   "nfe_per_sample": info["nfe_per_sample"],
                   "speedup": wall_ref / wall, "max_dx": float(np.abs(x - x_ref).max())}
            rows.append(row)
            log(f"n = {n:4d}  {label:18s} {wall:8.3f} s  rounds {row['rounds']:4d}  "
                f"NFE/sample {row['nfe_per_sample']:6.1f}  speed-up {row['speedup']:5.2f}  "
                f"max |dx| {row['max_dx']:.1e}")
    return rows


def markdown(out):
    """The report table."""
    lines = [f"# Picard against sequential on torch ({out['device']})", "",
             f"Digits denoiser, float32, {out['steps']} Karras steps σ = {SIGMA_MAX} → "
             f"{SIGMA_MIN} plus a Tweedie step, tolerance 1e-3, median of {out['repeats']} "
             f"runs. Command: `{out['command']}`.", "",
             "| samples | configuration | wall (s) | sequential rounds | NFE / sample | "
             "speed-up vs sequential | max \\|Δx\\| vs sequential |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for r in out["rows"]:
        lines.append(f"| {r['n']} | {r['config']} | {r['wall_s']:.3f} | {r['rounds']} | "
                     f"{r['nfe_per_sample']:.1f} | {r['speedup']:.2f} | {r['max_dx']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="batch 4, 1 repeat")
    a = parser.parse_args(argv)
    if a.quick:
        a.batches, a.repeats = [4], 1
    rows = measure(a.device, a.batches, a.steps, a.repeats)
    out = {"machine": machine_info(), "device": a.device, "steps": a.steps,
           "repeats": a.repeats, "rows": rows,
           "command": "python benchmarks/torch_parallel.py " + " ".join(argv or sys.argv[1:])}
    name = f"torch_parallel_{a.device.replace(':', '')}"
    write_json(RESULTS / f"{name}.json", out)
    (RESULTS / f"{name}.md").write_text(markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    main()
