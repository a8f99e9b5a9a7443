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
plots from the JSON files (:func:`report.render`); sections whose JSON is absent are
left out.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
import accuracy  # noqa: E402
import diffusion  # noqa: E402
import first_draw  # noqa: E402
import overhead  # noqa: E402
import parallel  # noqa: E402
import peers  # noqa: E402  (imports JAX only when run)
from common import RESULTS, load_json, machine_info, write_json  # noqa: E402
from peers_adapters import missing_packages  # noqa: E402
from report import BENCHMARKS, render  # noqa: E402


def _steps(quick):
    """name -> (heading printed before it, the call that runs it and returns its JSON)."""
    return {
        "overhead": ("overhead (sampler minus gradient-only loop):",
                     lambda: overhead.run(quick=quick)),
        "first_draw": ("time to first draw (fresh processes):", first_draw.run),
        "accuracy": ("gradient evaluations to b² < 0.01 (accuracy):",
                     lambda: accuracy.run(quick=quick)),
        "diffusion": ("diffusion samplers: NFE to accuracy (diffusion):",
                      lambda: diffusion.run(quick=quick)),
        "peers": ("against BlackJAX and NumPyro (peers):",
                  lambda: peers.run(quick=quick)),
        "parallel": ("parallel samplers: rounds against d, evaluations, wall time (parallel):",
                     lambda: parallel.run(quick=quick)),
    }


def _parse(argv):
    parser = argparse.ArgumentParser(description="Run the lcsample benchmarks.")
    parser.add_argument("--quick", action="store_true",
                        help="shorter overhead timings, 2 accuracy seeds instead of 5, "
                             "quick diffusion benchmark, short peers run")
    parser.add_argument("--out", default=str(RESULTS), help="output directory")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: rewrite report.md and the plots from the "
                             "JSON files in --out")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS,
                        help="run only these benchmarks; the report takes the others "
                             "from the JSON files in --out")
    return parser.parse_args(argv)


def _n_plots(images):
    return sum(len(v) for v in images.values())


def main(argv=None):
    opts = _parse(argv)
    out_dir = Path(opts.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if opts.report_only:
        images = render(out_dir)
        print(f"rewrote {out_dir}/report.md" + (
            f" and {_n_plots(images)} plots" if images else ""))
        return

    t0 = time.perf_counter()
    machine = machine_info()
    print(f"machine: {machine['cpu_model']}, {machine['cpus_available']} CPUs, "
          f"Python {machine['python']}, numba {machine['numba']}, NumPy {machine['numpy']}")
    todo = opts.only or BENCHMARKS
    steps = _steps(opts.quick)
    written = []
    for name in (n for n in BENCHMARKS if n in todo):
        if name == "peers" and missing_packages():
            print(f"peers: skipped, {', '.join(missing_packages())} not installed "
                  "(pip install -e .[bench])")
            continue
        title, fn = steps[name]
        print(title)
        data = fn()
        data["machine"] = machine
        write_json(out_dir / f"{name}.json", data)
        written.append(f"{name}.json")
    if "overhead" not in todo and load_json(out_dir, "overhead") is not None:
        machine = None  # the report's machine is that of the overhead run it shows
    n_images = _n_plots(render(out_dir, machine))
    print(f"wrote {out_dir}/{', '.join(written + ['report.md'])}"
          f"{f' and {n_images} plots' if n_images else ''} in "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
