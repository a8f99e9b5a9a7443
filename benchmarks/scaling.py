"""Beyond one process (issue 15): a store's memory, a Dask cluster's wall time and overheads.

1. **Store.** 1,000 chains × d = 1,000 × 1,000 draws streamed to a float32 Zarr store,
   against the same run held in memory at a tenth of the chains: peak resident memory
   (each configuration in a fresh subprocess) and wall time per chain-draw.
2. **Cluster.** A 2-worker ``LocalCluster`` (processes, one thread each) against local
   threads (``cores=2``), same seed and draws, for a cheap target (N(0, I), d = 10) and an
   expensive one (logistic regression on 10⁵ rows): wall time of the sampling call.
3. **Overheads** that set what N machines would do: a task's round trip (a one-draw
   request on a worker), the time to ship the target, and the requests per chain.

Run: ``python benchmarks/scaling.py`` (about 10 minutes on 2 cores; ``--quick`` uses
smaller sizes). Writes ``results/scaling.json`` and ``results/scaling.md``.
"""

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np
from common import REPO, RESULTS, machine_info, write_json

_STORE_CHILD = """
import json, resource, sys, time, warnings, shutil
import numpy as np, lcsample
warnings.simplefilter("ignore")
chains, dim, draws, store = json.loads(sys.argv[1])
target = lcsample.targets.Gaussian(np.zeros(dim), cov=np.linspace(0.5, 2.0, dim))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
kw = dict(draws=draws, chains=chains, seed=1, tune=100, cores=2, progressbar=False)
if store:
    shutil.rmtree(store, ignore_errors=True)
    kw["store"] = lcsample.ZarrStore(store, dtype="float32")
result = lcsample.sample(target, **kw)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"chains": chains, "dim": dim, "draws": draws, "store": bool(store),
                  "wall": wall, "timing": result.timing, "peak_rss_mib": peak,
                  "rss_before_mib": before}))
"""


def store_memory(quick):
    """Peak RSS and wall time: a large run to a float32 store, a smaller one in memory."""
    big, small = ((200, 1000, 500), (20, 1000, 500)) if quick else ((1000, 1000, 1000),
                                                                   (100, 1000, 1000))
    rows = []
    for config, store in ((big, "/tmp/lcsample_scaling.zarr"), (small, None)):
        out = subprocess.run([sys.executable, "-c", _STORE_CHILD, json.dumps([*config, store])],
                             capture_output=True, text=True, cwd=REPO, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if store:
            du = subprocess.run(["du", "-sm", store], capture_output=True, text=True)
            rows[-1]["store_mib"] = int(du.stdout.split()[0])
            subprocess.run(["rm", "-rf", store], check=True)
    return rows


def _expensive_target(rows=100_000, dim=10):
    import lcsample

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, dim))
    y = (rng.random(rows) < 1 / (1 + np.exp(-X @ rng.standard_normal(dim) / 3))).astype(float)
    return lcsample.targets.LogisticRegression(X, y)


def cluster(quick):
    """Wall time on a 2-worker LocalCluster against local threads; per-task overheads."""
    from distributed import Client, LocalCluster

    import lcsample

    targets = {"N(0, I), d = 10": (lcsample.targets.Gaussian(np.zeros(10), cov=np.ones(10)),
                                   2000 if quick else 10_000),
               "logistic, 10^5 rows, d = 10": (_expensive_target(), 100 if quick else 500)}
    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cl, Client(cl) as client:
        startup = time.perf_counter() - t0
        results = {"cluster_startup_s": startup, "targets": []}
        for name, (target, draws) in targets.items():
            kw = dict(draws=draws, chains=4, seed=3, tune=100, progressbar=False,
                      compute_convergence_checks=False)
            entry = {"target": name, "draws": draws}
            for label, extra in (("threads", {"cores": 2}), ("cluster", {"executor": client}),
                                 ("cluster, second run", {"executor": client})):
                res = lcsample.sample(target, **kw, **extra)
                entry[label] = {"total": res.timing["total"], "warmup": res.timing["warmup"],
                                "sampling": res.timing["sampling"]}
            results["targets"].append(entry)
        results["overheads"] = _overheads(client, targets["N(0, I), d = 10"][0],
                                          targets["logistic, 10^5 rows, d = 10"][0])
    return results


def _overheads(client, cheap, expensive):
    """A request's round trip on a worker, and the cost of shipping a target."""
    import lcsample
    from lcsample.mcmc.remote import ship_target

    # one-draw requests: each a task; draws=1 per request is what tune=0, draws=n makes
    res = lcsample.sample(cheap, draws=400, chains=1, tune=0, step_size=0.5, friction=1.0,
                          inverse_mass_matrix=np.ones(10), seed=0, progressbar=False,
                          compute_convergence_checks=False, check_gradient=False,
                          init="uniform", executor=client)
    requests = len(range(0, 400, 32))  # lcsample.mcmc.chain.block_lengths(400)
    t0 = time.perf_counter()
    payload, _ = ship_target(expensive)
    pickled = time.perf_counter() - t0
    t0 = time.perf_counter()
    future = client.scatter(payload, broadcast=True, hash=False)
    client.wait_for_workers(2)
    future.result()
    scattered = time.perf_counter() - t0
    return {"sampling_s_400_draws_1_chain": res.timing["sampling"],
            "requests": requests, "round_trip_ms": 1e3 * res.timing["sampling"] / requests,
            "expensive_target_mib": len(payload) / 2**20, "pickle_s": pickled,
            "scatter_s": scattered}


def _markdown(data):
    m = data["machine"]
    lines = ["# Beyond one process: store memory and a Dask cluster", "",
             f"{m['cpu_model']}, {m['cpus_available']} cores; {m['date_utc']}; lcsample "
             f"commit {m['git_commit']} (modified since: "
             f"{m['lcsample_modified_since_commit']}); load {m['load_average_1min_at_start']} "
             "at the start.", "",
             f"Command: `python benchmarks/scaling.py{' --quick' if data['quick'] else ''}` "
             f"({data['seconds']:.0f} s).", "", "## A float32 store against memory", "",
             "| chains × d × draws | where | wall s | sampling s | checks s | µs per "
             "chain-draw, sampling | peak RSS MiB | RSS before MiB | store MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in data["store"]:
        per = 1e6 * r["timing"]["sampling"] / (r["chains"] * r["draws"])
        lines.append(f"| {r['chains']:,} × {r['dim']:,} × {r['draws']:,} | "
                     f"{'float32 store' if r['store'] else 'memory (float64)'} | "
                     f"{r['wall']:.1f} | {r['timing']['sampling']:.1f} | "
                     f"{r['timing']['checks']:.1f} | {per:.1f} | {r['peak_rss_mib']:,.0f} | "
                     f"{r['rss_before_mib']:,.0f} | {r.get('store_mib', '—')} |")
    c = data["cluster"]
    lines += ["", "Both runs: N(0, diag(0.5 … 2)), `tune=100`, 2 cores, default checks (the store's "
              "read at most 64 MiB of its draws; the run in memory checks all 1,000 "
              "coordinates).", "",
              "## A 2-worker LocalCluster against 2 local threads (4 chains)", "",
              f"Cluster start-up: {c['cluster_startup_s']:.1f} s (not in the times below).",
              "", "| target | draws | threads s | cluster s (first run) | cluster s "
              "(second run) |", "|---|---:|---:|---:|---:|"]
    for e in c["targets"]:
        lines.append(f"| {e['target']} | {e['draws']:,} | {e['threads']['total']:.2f} | "
                     f"{e['cluster']['total']:.2f} | {e['cluster, second run']['total']:.2f} |")
    o = c["overheads"]
    lines += ["", "## Overheads", "",
              f"- A request's round trip on a worker (a block of draws of a cheap target): "
              f"{o['round_trip_ms']:.1f} ms ({o['requests']} requests of one chain in "
              f"{o['sampling_s_400_draws_1_chain']:.2f} s).",
              f"- Shipping the expensive target ({o['expensive_target_mib']:.1f} MiB): "
              f"pickling {o['pickle_s']:.2f} s, scattering to both workers "
              f"{o['scatter_s']:.2f} s, once per run."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render scaling.md from scaling.json")
    args = parser.parse_args()
    if args.report_only:
        data = json.loads((RESULTS / "scaling.json").read_text())
        (RESULTS / "scaling.md").write_text(_markdown(data))
        return
    t0 = time.perf_counter()
    warnings.simplefilter("ignore")
    data = {"machine": machine_info(), "quick": args.quick, "store": store_memory(args.quick),
            "cluster": cluster(args.quick)}
    data["seconds"] = time.perf_counter() - t0
    write_json(RESULTS / "scaling.json", data)
    (RESULTS / "scaling.md").write_text(_markdown(data))
    print(_markdown(data))


if __name__ == "__main__":
    main()
