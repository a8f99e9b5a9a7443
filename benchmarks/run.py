"""Run the lcsample benchmarks and write JSON results plus a Markdown report.

    python benchmarks/run.py [--quick] [--out DIR] [--report-only] [--only NAME ...]

Writes ``DIR/overhead.json``, ``DIR/first_draw.json``, ``DIR/accuracy.json``,
``DIR/diffusion.json``, ``DIR/peers.json``, ``DIR/parallel.json``, PNG plots and
``DIR/report.md`` (default
``benchmarks/results``). ``--quick`` shortens the overhead timings, runs the accuracy
benchmark with 2 seeds instead of 5, the diffusion benchmark in its quick mode and the
peers benchmark on 4 targets with 1 seed, the parallel benchmark on 3 dimensions; the
time-to-first-draw runs are the same in
both modes. The peers benchmark (BlackJAX, NumPyro) runs only when jax, blackjax and
numpyro are installed (``pip install -e .[bench]``); otherwise it is skipped with a
message. ``--only`` runs the named benchmarks and re-renders the report with the JSON
files already in DIR for the others. ``--report-only`` re-renders the report and the
plots from the JSON files; sections whose JSON is absent are left out.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import accuracy  # noqa: E402
import diffusion  # noqa: E402
import first_draw  # noqa: E402
import overhead  # noqa: E402
import parallel  # noqa: E402
import peers  # noqa: E402  (imports JAX only when run)
import plots  # noqa: E402

BENCHMARKS = ("overhead", "first_draw", "accuracy", "diffusion", "peers", "parallel")


def _cpuinfo():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cache size", "flags") and key not in info:
                    info[key] = value.strip()
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    return {
        "cpu_model": info.get("model name", platform.processor() or "unknown"),
        "cpu_cache": info.get("cache size"),
        "simd": [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f") if f in flags],
    }


def _git(*args):
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info():
    import numba
    import numpy

    import lcsample

    status = _git("status", "--porcelain", "--", "lcsample")
    return {
        **_cpuinfo(),
        "logical_cpus": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": numpy.__version__,
        "llvmlite": __import__("llvmlite").__version__,
        "lcsample": lcsample.__version__,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "lcsample_modified_since_commit": bool(status) if status is not None else None,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
    }


def _fmt(x, digits=1):
    return f"{x:,.{digits}f}"


def _many_chains_lines(over):
    many = over.get("many_chains")
    if not many or not many.get("rows"):
        return []
    lines = [
        "",
        "**Many chains.** `lcsample.sample(target, chains=C, tune=0, step_size, friction, "
        "inverse_mass_matrix=ones, initial_positions=...)` on the same diagonal Gaussians "
        f"(no warmup, draws thinned), {many['cores']} cores: the chains run on "
        "min(cores, C) threads, so a chain-step costs threads × sampling time / (C × "
        "steps) thread-seconds; baseline: the same gradient-only loop (one thread). "
        "Minimum over repeats; *1 chain* = the sampler/gradient ratio of the table above "
        "(driver alone), for comparison.",
        "",
        "| d | method | chains | threads | wall ns per chain-step | thread-ns per "
        "chain-step | gradient ns/step | overhead ns per chain-step | sampler / gradient "
        "| 1 chain: sampler / gradient |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    single = {(r["d"], r["method"]): r for r in over["rows"]
              if r["target"] == "diagonal_gaussian"}
    for r in many["rows"]:
        one = single.get((r["d"], r["method"]))
        one_cell = "—" if one is None else f"{one['sampler_over_gradient']:.2f}"
        lines.append(
            f"| {r['d']:,} | {r['method']} | {r['chains']} | {r['threads']} "
            f"| {_fmt(r['wall_ns_per_chain_step'], 0)} "
            f"| {_fmt(r['thread_ns_per_chain_step'], 0)} "
            f"| {_fmt(r['gradient_ns_per_step'], 0)} "
            f"| {_fmt(r['overhead_ns_per_chain_step'], 0)} "
            f"| {r['sampler_over_gradient']:.2f} | {one_cell} |")
    return lines


def _images(files):
    return [""] + [f"![{f[:-4]}]({f})" for f in files] if files else []


def report(machine, over, first, acc, diff=None, peer=None, images=None, peers_note=None,
           par=None):
    images = images or {}
    lines = ["# lcsample benchmark report", ""]
    lines += [
        f"Generated by `python benchmarks/run.py{' --quick' if over['mode'] == 'quick' else ''}` "
        f"on {machine['date_utc']} UTC. These are measurements, not pass/fail tests.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {machine['cpu_model']} (cache {machine['cpu_cache']}; "
        f"{', '.join(machine['simd'])}) |",
        f"| cores | {machine['cpus_available']} available of {machine['logical_cpus']} logical "
        f"(1-min load average {machine['load_average_1min_at_start']} at start) |",
        f"| Python | {machine['python']} ({machine['platform']}) |",
        f"| numba / llvmlite | {machine['numba']} / {machine['llvmlite']} |",
        f"| NumPy | {machine['numpy']} |",
        f"| lcsample | {machine['lcsample']} at commit {machine['git_commit']}"
        f"{' (lcsample/ modified)' if machine['lcsample_modified_since_commit'] else ''} |",
        "",
        "## 1. Sampler overhead beyond the gradient evaluations",
        "",
        "Single chain, `lcsample.kernels.compiled.run_chain` after a compile call, step "
        f"h = {over['step_size']}, friction γ = {over['friction']}, unit inverse mass. "
        "Baselines timed in the same run, interleaved with the sampler: **gradient**, a "
        "jitted loop making the same number of calls to the same gradient function "
        "(2 per step for RMD, 1 for ULMC); **rng**, a jitted loop drawing what the sampler "
        "draws per step (α and 4 normals per coordinate for RMD; 2 normals per coordinate "
        "for ULMC). Overhead = (sampler − gradient)/steps, from the minimum over "
        f"{over['rows'][0]['repeats']} repeats of each. "
        "Reference floor: a plain numba step measured on a 2-core machine "
        "(architecture.md A.2): RMD 13.4 ns/dim + 140 ns/step, ULMC 7.3 ns/dim + 45 ns/step.",
        "",
        "| target | d | method | steps | grad evals | sampler ns/step | gradient ns/step "
        "| **overhead ns/step** | **overhead ns/dim/step** | rng ns/dim/step "
        "| sampler / gradient | overhead / rng | overhead / ref. floor |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in over["rows"]:
        ref_dim, ref_step = overhead.REFERENCE_FLOOR[r["method"]]
        ref = ref_step + ref_dim * r["d"]
        lines.append(
            f"| {r['target']} | {r['d']} | {r['method']} | {r['steps']:,} | {r['grad_evals']:,} "
            f"| {_fmt(r['sampler_ns_per_step'])} | {_fmt(r['gradient_ns_per_step'])} "
            f"| **{_fmt(r['overhead_ns_per_step'])}** | **{r['overhead_ns_per_dim_step']:.2f}** "
            f"| {r['rng_ns_per_dim_step']:.2f} | {r['sampler_over_gradient']:.2f} "
            f"| {r['overhead_over_rng']:.2f} | {r['overhead_ns_per_step'] / ref:.2f} |"
        )
    lines += ["", "Linear fit of the diagonal-Gaussian overhead, a + b·d "
              "(relative least squares):", ""]
    for method, fit in over["linear_fit"].items():
        lines.append(
            f"- **{method}**: {fit['ns_per_dim']:.2f} ns/dim + {fit['ns_per_step']:.0f} ns/step "
            f"(reference floor {fit['reference_ns_per_dim']} ns/dim + "
            f"{fit['reference_ns_per_step']:.0f} ns/step)"
        )
    big = {r["method"]: r for r in over["rows"]
           if r["target"] == "diagonal_gaussian" and r["d"] == max(x["d"] for x in over["rows"])}
    if "rmd" in big and "ulmc" in big:
        rmd, ulmc = big["rmd"], big["ulmc"]
        lines += [
            "",
            f"Reading the numbers at d = {rmd['d']}: a standard normal costs "
            f"{rmd['rng_ns_per_dim_step'] / 4:.2f} ns here (rng column / 4; "
            f"{overhead.REFERENCE_NS_PER_NORMAL} ns on the reference-floor machine), so "
            "drawing the noise is "
            f"{rmd['rng_ns_per_dim_step'] / rmd['overhead_ns_per_dim_step']:.0%} of "
            f"the RMD overhead and "
            f"{ulmc['rng_ns_per_dim_step'] / ulmc['overhead_ns_per_dim_step']:.0%} "
            "of the ULMC overhead; the rest, "
            f"{rmd['overhead_ns_per_dim_step'] - rmd['rng_ns_per_dim_step']:.1f} ns/dim (RMD) and "
            f"{ulmc['overhead_ns_per_dim_step'] - ulmc['rng_ns_per_dim_step']:.1f} ns/dim (ULMC), "
            "is the step arithmetic and memory traffic. An RMD step costs "
            f"{rmd['overhead_ns_per_step'] / ulmc['overhead_ns_per_step']:.2f}× a ULMC step "
            "beyond the gradients (twice the normals).",
        ]
    lines += _many_chains_lines(over)
    lines += _images(images.get("overhead"))
    lines += [
        "",
        "## 2. Time to first draw in a fresh process",
        "",
        "`lcsample.sample(target, draws=1, tune=0, chains=1, progressbar=False, "
        "step_size=0.1, friction=1.0)` in a new `python -c` process. Run 1 starts with an "
        "empty numba cache directory (`NUMBA_CACHE_DIR`), as after installation; run 2 "
        "reuses it. *process* is the wall time of the whole process seen from outside, "
        "interpreter start-up and exit included, less the baseline compile below "
        f"(`python -c pass` alone takes {first['python_startup_s']:.2f} s here); "
        "*to first draw* is measured inside, from before `import lcsample` to the return "
        "of `sample`. *minimal driver* is a baseline compiled in the same process after "
        "the draw: a jitted loop that only calls the target's function.",
        "",
        "| case | run | numba cache | process s | import s | target s | sample() s "
        "| timing['compile'] s | to first draw s | minimal driver s | compile / minimal "
        "| grad evals |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in first["rows"]:
        t = r["timing"]
        lines.append(
            f"| {r['label']} | {r['run']} | {r['cache']} "
            f"| {r['process_wall_s'] - r['minimal_driver_compile_s']:.2f} "
            f"| {r['import_s']:.2f} | {r['target_s']:.2f} | {r['sample_s']:.2f} "
            f"| {t['compile']:.2f} | {r['to_first_draw_s']:.2f} "
            f"| {r['minimal_driver_compile_s']:.2f} "
            f"| {t['compile'] / r['minimal_driver_compile_s']:.1f} | {r['n_grad_evals'][0]} |"
        )
    lines += [
        "",
        "`sample() − timing['compile']` is mostly the check of the target at the initial "
        "point, which compiles the target's own function on first use (for the built-in "
        "target, from the cache in run 2). The gradient count is 1 (the check) + 2 (one "
        "RM-ULMC step).",
        "",
    ]
    lines += accuracy.report_section(acc, number=3)
    number = 4
    if diff is not None:
        lines += [""] + diffusion.report_section(diff, number=number)
        if images.get("diffusion"):
            lines += ["", "Error against NFE, every run (the plots of the table above; "
                      "solid lines: randomized-midpoint predictors, horizontal lines: "
                      "noise floor and loose accuracy):"]
            lines += _images(images["diffusion"])
        number += 1
    if peer is not None:
        lines += [""] + peers.report_section(peer, peer.get("machine", machine),
                                             images.get("peers", ()),
                                             number=number)
    elif peers_note:
        lines += ["", f"## {number}. Against the samplers users would pick instead", "",
                  peers_note]
    number += 1
    if par is not None:
        lines += ["", parallel.report_section(par, number=number)]
    raw = ["`overhead.json`", "`first_draw.json`", "`accuracy.json`"]
    raw += ["`diffusion.json`"] if diff is not None else []
    raw += ["`peers.json`"] if peer is not None else []
    raw += ["`parallel.json`"] if par is not None else []
    lines += [
        "",
        "Raw numbers, including every repeat and seed: " + ", ".join(raw) + ".",
        "",
    ]
    return "\n".join(lines)


def _load(out_dir, name):
    path = out_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _render(out_dir, machine=None):
    """report.md and the plots from the JSON files in ``out_dir``."""
    data = {name: _load(out_dir, name) for name in BENCHMARKS}
    missing = [n for n in ("overhead", "first_draw", "accuracy") if data[n] is None]
    if missing:
        raise SystemExit(f"{out_dir} lacks {', '.join(f'{n}.json' for n in missing)}: "
                         "run the benchmarks first")
    machine = machine or data["overhead"]["machine"]
    images = plots.all_plots(out_dir, peers=data["peers"], diff=data["diffusion"],
                             over=data["overhead"])
    note = None
    if data["peers"] is None:
        absent = peers.missing_packages()
        note = ("Not run: " + (f"{', '.join(absent)} not installed (`pip install -e "
                               ".[bench]`)." if absent else "no `peers.json` yet "
                               "(`python benchmarks/run.py --only peers`)."))
    if data["parallel"] is not None:
        images["parallel"] = parallel.plots(data["parallel"], out_dir)
    text = report(machine, data["overhead"], data["first_draw"], data["accuracy"],
                  data["diffusion"], data["peers"], images, note, data["parallel"])
    (out_dir / "report.md").write_text(text)
    return images


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the lcsample benchmarks.")
    parser.add_argument("--quick", action="store_true",
                        help="shorter overhead timings, 2 accuracy seeds instead of 5, "
                             "quick diffusion benchmark, short peers run")
    parser.add_argument("--out", default=str(HERE / "results"), help="output directory")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: rewrite report.md and the plots from the "
                             "JSON files in --out")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS,
                        help="run only these benchmarks; the report takes the others "
                             "from the JSON files in --out")
    opts = parser.parse_args(argv)
    out_dir = Path(opts.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if opts.report_only:
        images = _render(out_dir)
        print(f"rewrote {out_dir}/report.md" + (
            f" and {sum(len(v) for v in images.values())} plots" if images else ""))
        return

    t0 = time.perf_counter()
    machine = machine_info()
    print(f"machine: {machine['cpu_model']}, {machine['cpus_available']} CPUs, "
          f"Python {machine['python']}, numba {machine['numba']}, NumPy {machine['numpy']}")
    todo = opts.only or BENCHMARKS
    steps = {
        "overhead": ("overhead (sampler minus gradient-only loop):",
                     lambda: overhead.run(quick=opts.quick)),
        "first_draw": ("time to first draw (fresh processes):", first_draw.run),
        "accuracy": ("gradient evaluations to b² < 0.01 (accuracy):",
                     lambda: accuracy.run(quick=opts.quick)),
        "diffusion": ("diffusion samplers: NFE to accuracy (diffusion):",
                      lambda: diffusion.run(quick=opts.quick)),
        "peers": ("against BlackJAX and NumPyro (peers):",
                  lambda: peers.run(quick=opts.quick)),
        "parallel": ("parallel samplers: rounds against d, evaluations, wall time (parallel):",
                     lambda: parallel.run(quick=opts.quick)),
    }
    written = []
    for name in BENCHMARKS:
        if name not in todo:
            continue
        if name == "peers" and peers.missing_packages():
            print(f"peers: skipped, {', '.join(peers.missing_packages())} not installed "
                  "(pip install -e .[bench])")
            continue
        title, fn = steps[name]
        print(title)
        data = fn()
        data["machine"] = machine
        with open(out_dir / f"{name}.json", "w") as f:
            json.dump(data, f, indent=1, default=parallel.json_default)
        written.append(f"{name}.json")
    if "overhead" not in todo and _load(out_dir, "overhead") is not None:
        machine = None  # the report's machine is that of the overhead run it shows
    images = _render(out_dir, machine)
    n_images = sum(len(v) for v in images.values())
    print(f"wrote {out_dir}/{', '.join(written + ['report.md'])}"
          f"{f' and {n_images} plots' if n_images else ''} in "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
