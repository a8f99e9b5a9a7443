"""Many chains of a jitted target: one thread per chain against CompiledLockstep.

For each chain count, fresh processes (so that each peak resident memory is its own) run
the same chains, seeds and requests on a diagonal Gaussian target:

* ``threads``: today's path for a jitted target, :func:`lcsample.mcmc.execution.run_tasks`
  without ``advance_batch`` (``cores`` worker threads, each request one
  :meth:`~lcsample.mcmc.chain.Chain.advance`, i.e. one call of the compiled loop per chain
  and block);
* ``lockstep``: the same ``run_tasks`` with
  :class:`lcsample.mcmc.many_chains.CompiledLockstep` as ``advance_batch`` (the chains'
  requests of a round in one compiled call per thread).

Each process compiles and warms up on two chains first (untimed), then times
``repeats`` runs (the chains continue from run to run). A run makes ``draws`` draws per
chain in requests as ``block_lengths`` cuts them (32 draws, as ``lcsample.sample`` does
for 1,600 draws), into records of shape (chains, draws, d) as in ``sample``: memory grows
with chains × draws × d × 8 bytes. Fewer than 10,000 chains sweep their records
``sweeps`` times over in a run, so every run is long enough to time. Chain-steps per
second = chains × draws × sweeps × thin / seconds of the fastest run. Both paths' last
draws are hashed: they must be identical.

Run ``python benchmarks/many_chains.py [--quick] [--json PATH] [--md PATH]``.
"""

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
from common import RESULTS, machine_info, write_json  # noqa: E402

from lcsample.mcmc.many_chains import _BUFFER_BYTES  # noqa: E402

CHAINS = (4, 8, 16, 32, 100, 1_000, 10_000)  # 8 to 32: where the paths cross
DIM = 100
# draws per chain in the records, requested 32 at a time (as sample does up to 1,600 draws)
DRAWS = {"quick": 32, "full": 64}
# chain-draws per timed run at least: fewer chains sweep their records several times
WORK = {"quick": 160_000, "full": 480_000}
REPEATS = {"quick": 2, "full": 2}  # timed runs per process
ROUNDS = {"quick": 1, "full": 3}  # processes per path and chain count
PATHS = ("threads", "lockstep")
CORES = 2
STEP, FRICTION = 0.5, 1.0


def _status_mib(field):
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process from /proc, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _setup(n_chains, d, seed):
    """The target and ``n_chains`` chains at random starts (as ``sample`` makes them)."""
    import lcsample
    from lcsample.kernels.step import RMD
    from lcsample.mcmc.chain import Chain
    from lcsample.mcmc.warmup.mass import InverseMass

    variances = np.linspace(0.5, 2.0, d)
    target = lcsample.targets.Gaussian(np.zeros(d), cov=variances)
    target.compile()
    mass = InverseMass(variances)  # preconditioned: N(0, I)
    chains = []
    for child in np.random.SeedSequence(seed).spawn(n_chains):
        rng = np.random.default_rng(child)
        x = rng.standard_normal(d) * np.sqrt(variances)
        lp, g = target.check(x)
        chain = Chain(target, RMD, rng, x, np.zeros(d), np.array(g), lp, STEP, FRICTION, mass)
        chain.refresh_velocity()
        chains.append(chain)
    return target, chains


def _task(chain, c, out, thin, sweeps):
    """One chain's requests over ``out``, ``sweeps`` times (a generator for ``run_tasks``)."""
    from lcsample.mcmc.chain import Request, block_lengths

    for _ in range(sweeps):
        done = 0
        for n in block_lengths(out["lp"].shape[1], thin):
            rows = slice(done, done + n)
            n_done, _ = yield Request(out["posterior"][c, rows], out["lp"][c, rows],
                                      out["energy"][c, rows], thin, False)
            done += n_done
            if n_done < n:
                return


class _NoBar:
    def update(self, n):
        pass


def _run(chains, advance, draws, thin, sweeps):
    """``sweeps`` × ``draws`` draws per chain through run_tasks.

    Returns (wall seconds, CPU seconds of all threads, SHA-1 of the last draws).
    """
    from lcsample.mcmc.execution import Monitor, run_tasks
    from lcsample.mcmc.warmup.loop import allocate_records

    out = allocate_records(len(chains), draws, chains[0].x.shape[0], keep_draws=True)
    tasks = [_task(ch, c, out, thin, sweeps) for c, ch in enumerate(chains)]
    t0, cpu0 = time.perf_counter(), time.process_time()
    run_tasks(chains, tasks, CORES, Monitor(), _NoBar(), advance)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return seconds, cpu, hashlib.sha1(out["posterior"]).hexdigest()  # no copy of the draws


def measure(path, n_chains, d, draws, repeats, work, thin=1):
    """In this process: timings and memory of ``path`` with ``n_chains`` chains.

    The records hold ``draws`` draws per chain; small chain counts sweep them several
    times, so that every timed run makes about ``work`` chain-draws.
    """
    from lcsample.mcmc.many_chains import CompiledLockstep

    target, warm = _setup(2, d, seed=1)
    make = (lambda: None) if path == "threads" else (lambda: CompiledLockstep(target, CORES))
    _run(warm, make(), 2, thin, 1)  # compiles (or loads from numba's cache), untimed
    rss_before = _status_mib("VmRSS")
    _, chains = _setup(n_chains, d, seed=0)
    sweeps = max(1, work // (n_chains * draws))
    seconds, cpu = [], []
    for _ in range(repeats):
        s, c, sha1 = _run(chains, make(), draws, thin, sweeps)
        seconds.append(s)
        cpu.append(c)
    return {"path": path, "chains": n_chains, "d": d, "draws": draws, "sweeps": sweeps,
            "thin": thin, "repeats": repeats, "seconds": seconds, "cpu_seconds": cpu,
            "rss_before_mib": rss_before, "peak_rss_mib": _status_mib("VmHWM"),
            "records_mib": n_chains * draws * (d + 7) * 8 / 2**20, "draws_sha1": sha1}


def _child(path, n_chains, mode):
    """Run :func:`measure` in a fresh interpreter; returns its result."""
    cmd = [sys.executable, __file__, "--child", path, str(n_chains), "--mode", mode]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def benchmark(quick=False, chains=CHAINS, log=print):
    """Both paths for every chain count, each in fresh processes; returns the rows.

    The processes of the two paths alternate, ``ROUNDS`` times over, so a machine busy
    for a while slows both; each row keeps every timing and reports the fastest.
    """
    mode = "quick" if quick else "full"
    runs = {}
    for _ in range(ROUNDS[mode]):
        for n in chains:
            for path in PATHS:
                run = _child(path, n, mode)
                log(f"  {n:>6} chains {path:>8}: {min(run['seconds']):8.3f} s, peak RSS "
                    f"{run['peak_rss_mib']:7.0f} MiB")
                runs.setdefault((n, path), []).append(run)
    rows = []
    for (n, _), done in runs.items():
        row = {**done[0], "processes": len(done),
               "peak_rss_mib": max(run["peak_rss_mib"] for run in done)}
        for key in ("seconds", "cpu_seconds"):
            row[key] = [s for run in done for s in run[key]]
        steps = n * row["draws"] * row["sweeps"] * row["thin"]
        row["chain_steps_per_s"] = steps / min(row["seconds"])
        row["chain_steps_per_cpu_s"] = steps / min(row["cpu_seconds"])
        assert len({run["draws_sha1"] for run in done}) == 1, "a path's draws changed"
        rows.append(row)
    for threads, lockstep in zip(rows[::2], rows[1::2], strict=True):
        lockstep["speedup"] = lockstep["chain_steps_per_s"] / threads["chain_steps_per_s"]
        lockstep["cpu_speedup"] = (lockstep["chain_steps_per_cpu_s"]
                                   / threads["chain_steps_per_cpu_s"])
        lockstep["same_draws"] = lockstep["draws_sha1"] == threads["draws_sha1"]
    return rows


def _setting(out):
    """The paragraph saying what was run and how memory is counted."""
    first = out["rows"][0]
    return (
        f"Diagonal Gaussian target, d = {DIM}, `method=\"rmd\"` (2 gradients a step), "
        f"h = {STEP}, γ = {FRICTION}, cores = {CORES}. Records of {first['draws']} draws "
        "per chain, asked for in requests of 32 draws and swept over as often as it takes "
        f"to make ≥ {out['work']:,} chain-draws a run; the fastest of {first['repeats']} "
        f"runs in each of {first['processes']} fresh processes per configuration, the two "
        "paths' processes alternating. Peak RSS is the process's high-water mark (Python, "
        "numba and the compiled code included); 'before' is its resident memory after "
        "compiling, before the chains exist, so the growth is what the chains, their "
        "records and the path's own buffers took. The records (draws, lp, energy and the "
        "other per-draw fields, as `sample` keeps them) take chains × draws × (d + 7) × 8 "
        f"bytes; CompiledLockstep adds buffers of about {out['buffer_kib']:,} KiB per thread "
        "(a chain's block of draws is written there, then copied into its request) and a "
        "numba list of the chains' generators. CPU seconds are those of all the process's "
        "threads during the run (less sensitive than wall time to other work on the "
        "machine).")


def markdown(out):
    """The results as a Markdown page (machine, command, setting, table)."""
    m = out["machine"]
    lines = [
        "# Many chains in one process: thread per chain against CompiledLockstep", "",
        f"{m['cpu_model']}, {m['cpus_available']} cores; {m['date_utc']} UTC; lcsample "
        f"commit {m['git_commit']} (modified since: {m['lcsample_modified_since_commit']}); "
        f"numba {m['numba']}, numpy {m['numpy']}, Python {m['python']}; load average "
        f"{m['load_average_1min_at_start']} at the start.", "",
        f"Command: `{out['command']}` ({out['elapsed_s']:.0f} s).", "", _setting(out), "",
        "| chains | path | chain-steps a run | seconds | chain-steps/s | speed-up | "
        "chain-steps/CPU-s | CPU speed-up | peak RSS (MiB) | RSS before (MiB) | "
        "growth (MiB) | records (MiB) | same draws |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in out["rows"]:
        lockstep = r["path"] == "lockstep"
        steps = r["chains"] * r["draws"] * r["sweeps"] * r["thin"]
        lines.append(
            f"| {r['chains']:,} | {r['path']} | {steps:,} | {min(r['seconds']):.3f} | "
            f"{r['chain_steps_per_s']:,.0f} | "
            f"{format(r['speedup'], '.2f') + '×' if lockstep else '1'} | "
            f"{r['chain_steps_per_cpu_s']:,.0f} | "
            f"{format(r['cpu_speedup'], '.2f') + '×' if lockstep else '1'} | "
            f"{r['peak_rss_mib']:,.0f} | {r['rss_before_mib']:,.0f} | "
            f"{r['peak_rss_mib'] - r['rss_before_mib']:,.0f} | {r['records_mib']:,.1f} | "
            f"{('yes' if r['same_draws'] else 'NO') if lockstep else ''} |")
    return "\n".join([*lines, "", _crossover(out["rows"])]) + "\n"


def _crossover(rows):
    """The sentence saying from how many chains on the lockstep path was the faster."""
    faster = [r["speedup"] > 1 for r in rows if r["path"] == "lockstep"]
    counts = [r["chains"] for r in rows if r["path"] == "lockstep"]
    wins = [n for i, n in enumerate(counts) if all(faster[i:])]
    if not wins:
        return "CompiledLockstep was not the faster path at the largest chain count measured."
    return (f"CompiledLockstep was the faster path (wall time) from {wins[0]:,} chains on "
            f"({wins[0] / CORES:g} per core); with fewer, one thread per chain was.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=str(RESULTS / "many_chains.json"))
    parser.add_argument("--md", default=str(RESULTS / "many_chains.md"))
    parser.add_argument("--child", nargs=2, metavar=("PATH", "CHAINS"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, n = args.child[0], int(args.child[1])
        print(json.dumps(measure(path, n, DIM, DRAWS[args.mode], REPEATS[args.mode],
                                 WORK[args.mode])))
        return
    t0 = time.perf_counter()
    machine = machine_info()
    rows = benchmark(args.quick)
    out = {"machine": machine, "cores": CORES, "work": WORK["quick" if args.quick else "full"],
           "buffer_kib": _BUFFER_BYTES // 1024, "rows": rows,
           "command": "python benchmarks/many_chains.py" + (" --quick" if args.quick else ""),
           "elapsed_s": time.perf_counter() - t0}
    print(f"done in {out['elapsed_s']:.0f} s")
    write_json(args.json, out)
    Path(args.md).write_text(markdown(out))


if __name__ == "__main__":
    main()
