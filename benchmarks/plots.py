"""PNG plots of the benchmark JSON files (matplotlib, Agg backend).

    python benchmarks/plots.py [--out DIR]

Each function takes the loaded JSON and the output directory and returns the file names
it wrote (relative to that directory), so ``run.py`` can link them from ``report.md``.
Nothing is measured here; ``run.py --report-only`` redraws every plot from the JSON.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules
from common import RESULTS, load_json  # noqa: E402

#: One colour and marker per sampler, stable across plots.
STYLE = {
    "rmd-lagged": ("C5", "*", "-"), "rmd": ("C0", "o", "-"), "ulmc": ("C9", "v", "-"),
    "rmd-tv": ("C4", "s", "-"),
    "rmd-picard": ("C6", "P", "-"), "blackjax_nuts": ("C3", "^", "--"),
    "numpyro_nuts": ("C1", "D", "--"), "mclmc small": ("C2", "<", ":"),
    "mclmc large": ("C8", ">", ":"),
}


def available():
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir, name):
    fig.savefig(Path(out_dir) / name, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return name


def _label(peers, sampler, target=None):
    label = peers.get("labels", {}).get(sampler, sampler)
    if sampler.startswith("mclmc") and target is not None:
        steps = peers["targets"][target]["mclmc_num_steps"][sampler]
        label = f"BlackJAX MCLMC (num_steps = {steps:,})"
    return label


def _ran(peers, name):
    return [s for s in peers["samplers"]
            if "median_grads" in peers["summary"][name].get(s, {})]


def peers_grads(peers, out_dir):
    """Grouped bars: median gradients per chain to b² < 0.01, per target and sampler."""
    plt = _plt()
    names = list(peers["summary"])
    samplers = [s for s in peers["samplers"] if any(s in _ran(peers, n) for n in names)]
    fig, ax = plt.subplots(figsize=(max(8, 1.25 * len(names) + 3), 4.8))
    width = 0.8 / max(len(samplers), 1)
    for k, sampler in enumerate(samplers):
        xs, ys, missing = [], [], []
        for i, name in enumerate(names):
            s = peers["summary"][name].get(sampler, {})
            if "median_grads" not in s:
                continue
            x = i - 0.4 + width * (k + 0.5)
            if s["median_grads"] is None:
                missing.append(x)
            else:
                xs.append(x)
                ys.append(s["median_grads"])
        color, _, _ = STYLE.get(sampler, ("k", "o", "-"))
        ax.bar(xs, ys, width, color=color, label=peers.get("labels", {}).get(sampler, sampler))
        for x in missing:
            ax.text(x, 1.2e2, "×", ha="center", va="bottom", color=color, fontsize=11)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e2)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n(d = {peers['targets'][n]['dim']:,})" for n in names],
                       rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"gradient evaluations per chain to b² < {peers['threshold']}")
    ax.set_title("Cost to accuracy, warmup included (median over seeds; × = not reached)")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return [_save(fig, out_dir, "peers_grads.png")]


def peers_curves(peers, out_dir, targets=("german_credit", "rotated_gaussian_100")):
    """b² (max of x and x²) against gradients per chain, seed 0 of each sampler."""
    plt = _plt()
    written = []
    for name in targets:
        if name not in peers["summary"]:
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for run in peers["runs"]:
            if run["target"] != name or not run["rows"]:
                continue
            curve = run["rows"][0]["curve"]
            color, marker, ls = STYLE.get(run["sampler"], ("k", "o", "-"))
            ax.plot(curve["grads"], curve["b2"], ls, color=color, lw=1.5,
                    label=_label(peers, run["sampler"], name))
            g = run["rows"][0]["grads"]
            if g is not None:
                ax.plot([g], [peers["threshold"]], marker, color=color, ms=7)
        ax.axhline(peers["threshold"], color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("gradient evaluations per chain (warmup included)")
        ax.set_ylabel("b² = max(b²_x, b²_x²), pooled over chains")
        d = peers["targets"][name]["dim"]
        ax.set_title(f"{name} (d = {d:,}), seed 0: the curve starts after warmup; "
                     "markers at the crossing", fontsize=9)
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=8)
        written.append(_save(fig, out_dir, f"peers_b2_{name}.png"))
    return written


def peers_scaling(peers, out_dir):
    """Gradients and run time to b² < 0.01 against d on the N(0, I_d) targets."""
    plt = _plt()
    names = sorted((n for n in peers["summary"] if n.startswith("gaussian_")),
                   key=lambda n: peers["targets"][n]["dim"])
    if len(names) < 2:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for sampler in peers["samplers"]:
        pts = [(peers["targets"][n]["dim"], peers["summary"][n][sampler])
               for n in names if "median_grads" in peers["summary"][n].get(sampler, {})]
        color, marker, ls = STYLE.get(sampler, ("k", "o", "-"))
        label = peers.get("labels", {}).get(sampler, sampler)
        for ax, key in zip(axes, ("median_grads", "median_time_to_accuracy_s"), strict=True):
            xy = [(d, s[key]) for d, s in pts if s[key] is not None]
            if xy:
                ax.plot(*zip(*xy, strict=True), ls, marker=marker, color=color, label=label)
    for ax, ylabel in zip(axes, ("gradient evaluations per chain to b² < 0.01",
                                 "seconds to b² < 0.01 (compile excluded)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("d")
        ax.set_ylabel(ylabel)
        ax.grid(which="both", alpha=0.3)
    axes[0].set_title("N(0, I_d): cost to accuracy against dimension", fontsize=10)
    axes[1].set_title("4 chains, same machine and run", fontsize=10)
    axes[0].legend(fontsize=8)
    return [_save(fig, out_dir, "peers_scaling.png")]


def overhead_plot(over, out_dir):
    """Overhead per step and dimension against d, single chain and (if present) chains."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for method, color in (("rmd", "C0"), ("ulmc", "C9")):
        rows = sorted((r for r in over["rows"] if r["method"] == method
                       and r["target"] == "diagonal_gaussian"), key=lambda r: r["d"])
        if rows:
            ax.plot([r["d"] for r in rows], [r["overhead_ns_per_dim_step"] for r in rows],
                    "o-", color=color, label=f"{method}, 1 chain: overhead")
            ax.plot([r["d"] for r in rows], [r["gradient_ns_per_step"] / r["d"] for r in rows],
                    "o:", color=color, alpha=0.6, label=f"{method}, 1 chain: gradients")
    for k, (chains, rows) in enumerate(sorted(_group_chains(over).items())):
        for method, color in (("rmd", "C0"), ("ulmc", "C9")):
            sel = sorted((r for r in rows if r["method"] == method), key=lambda r: r["d"])
            if sel:
                ax.plot([r["d"] for r in sel],
                        [r["overhead_ns_per_dim_step_per_chain"] for r in sel], "s--",
                        color=color, alpha=0.5 + 0.25 * k,
                        label=f"{method}, {chains} chains: overhead per chain")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("d")
    ax.set_ylabel("ns per dimension per step")
    ax.set_title("Sampler overhead beyond the gradient evaluations (diagonal Gaussian)",
                 fontsize=10)
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return [_save(fig, out_dir, "overhead.png")]


def _group_chains(over):
    groups = {}
    for r in over.get("many_chains", {}).get("rows", []):
        groups.setdefault(r["chains"], []).append(r)
    return groups


METRIC_LABELS = {"mode_tv": "mode-weight TV", "sliced_w2": "sliced W2",
                 "gaussian_w2": "Gaussian W2", "max_rel_var_error": "max rel. variance error"}


def diffusion_plots(diff, out_dir):
    """Error against NFE per predictor/corrector, one figure per target family."""
    plt = _plt()
    families = {}
    for name, t in diff["targets"].items():
        families.setdefault(t["family"], []).append(name)
    combos = list(diff["combos"])
    cmap = plt.get_cmap("tab10")
    colors = {c: cmap(i % 10) for i, c in enumerate(combos)}
    written = []
    for family, names in families.items():
        names = sorted(names, key=lambda n: diff["targets"][n]["dim"])
        metrics = list(diff["targets"][names[0]]["floors"])
        fig, axes = plt.subplots(len(metrics), len(names), squeeze=False,
                                 figsize=(3.6 * len(names) + 1, 3.0 * len(metrics) + 0.6))
        for j, name in enumerate(names):
            t = diff["targets"][name]
            for i, metric in enumerate(metrics):
                ax = axes[i][j]
                for combo, rows in t["runs"].items():
                    pts = sorted((r["nfe"], r["metrics"][metric]) for r in rows
                                 if r["metrics"].get(metric) is not None)
                    if pts:
                        ls = "-" if combo.startswith("rm") else "--"
                        ax.plot(*zip(*pts, strict=True), ls, marker=".", color=colors[combo],
                                lw=1.2,
                                label=combo)
                floor = t["floors"][metric]["mean"]
                ax.axhline(floor, color="k", lw=0.8, label="noise floor")
                ax.axhline(t["thresholds"]["loose"][metric], color="k", lw=0.8, ls=":",
                           label="loose accuracy")
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.grid(which="both", alpha=0.3)
                if i == 0:
                    ax.set_title(f"{name} (d = {t['dim']}, n = {t['n']:,})", fontsize=9)
                if i == len(metrics) - 1:
                    ax.set_xlabel("NFE per sample")
                if j == 0:
                    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8,
                   bbox_to_anchor=(0.5, -0.02 - 0.03 * (len(labels) // 6)))
        fig.suptitle(f"Diffusion samplers on {family}: error against score evaluations "
                     "(solid: randomized midpoint predictors)", fontsize=10)
        fig.tight_layout(rect=(0, 0.06, 1, 0.97))
        written.append(_save(fig, out_dir, f"diffusion_{family}.png"))
    return written


def parallel_plots(par, out_dir):
    """The figures of ``parallel.py``: rounds against d and tolerance, MCMC, call cost."""
    return [_parallel_rounds(par, out_dir), _parallel_tolerance(par, out_dir),
            _parallel_mcmc(par, out_dir), _parallel_batch_cost(par, out_dir)]


def _parallel_rounds(par, out_dir):
    """Rounds to the accuracy against d: log-log, and against ln d with the fits."""
    fig, axes = _plt().subplots(1, 2, figsize=(11, 4.2))
    _rounds_loglog(axes[0], par)
    _rounds_vs_ln_d(axes[1], par)
    fig.tight_layout()
    return _save(fig, out_dir, "parallel_rounds_vs_d.png")


def _rounds_loglog(ax, par):
    rows = par["dims"]
    dims = np.array([r["dim"] for r in rows])
    ax.loglog(dims, [r["sequential"]["rounds"] for r in rows], "o-", color="C0",
              label="sequential RM: rounds (= 2N)")
    ax.loglog(dims, [r["sequential"]["steps"] for r in rows], "o--", color="C0", alpha=0.6,
              label="sequential RM: steps N")
    for k, w in enumerate(rows[0]["parallel"]):
        ax.loglog(dims, [r["parallel"][w]["rounds"] for r in rows], "s-", color=f"C{k + 1}",
                  label=f"parallel, W = {w} windows: rounds")
    f = par["fits"].get("sequential_steps_loglog")
    title = f"error ≤ {par['eps']:g}"
    if f:
        title += f"; sequential N ∝ d^{f[0]:.2f}"
    ax.set(xlabel="d", ylabel="sequential score rounds", title=title)
    ax.legend(fontsize=8)


def _rounds_vs_ln_d(ax, par):
    rows = par["dims"]
    dims = np.array([r["dim"] for r in rows])
    ln = np.log(dims)
    for k, w in enumerate(rows[0]["parallel"]):
        r = [row["parallel"][w]["rounds"] for row in rows]
        ax.plot(ln, r, "s", color=f"C{k + 1}", label=f"W = {w}")
        fl = par["fits"].get(f"parallel_W{w}")
        if fl:
            grid = np.linspace(ln.min(), ln.max(), 50)
            b, a, r2 = fl["vs_ln_d"]
            ax.plot(grid, a + b * grid, "-", color=f"C{k + 1}", alpha=0.6,
                    label=f"{a:.1f} + {b:.2f} ln d (R² {r2:.2f})")
            b, a, r2 = fl["vs_ln2_d"]
            ax.plot(grid, a + b * grid**2, ":", color=f"C{k + 1}",
                    label=f"{a:.1f} + {b:.3f} ln² d (R² {r2:.2f})")
    ax.set_xticks(ln, [str(d) for d in dims])
    ax.set(xlabel="d (log axis)", ylabel="parallel rounds", ylim=(0, None),
           title="parallel rounds against ln d")
    ax.legend(fontsize=7)


def _parallel_tolerance(par, out_dir):
    """Parallel rounds and NFE per sample against the Picard tolerance."""
    sw = par["tolerance_sweep"]
    fig, ax = _plt().subplots(figsize=(6, 4))
    pos = [r for r in sw["rows"] if r["tolerance"] > 0]
    tols = [r["tolerance"] for r in pos]
    ax.loglog(tols, [r["rounds"] for r in pos], "s-", color="C1", label="parallel rounds")
    ax.loglog(tols, [r["nfe_per_sample"] for r in pos], "^-", color="C2",
              label="parallel NFE / sample")
    ax.axhline(sw["sequential"]["rounds"], color="C0", ls="--",
               label="sequential rounds = NFE / sample")
    exact = next((r for r in sw["rows"] if r["tolerance"] == 0), None)
    if exact:
        ax.axhline(exact["rounds"], color="C1", ls=":", label="rounds at tolerance 0")
    ax.invert_xaxis()
    ax.set(xlabel="tolerance", ylabel="count",
           title=f"d = {sw['dim']}, N = {sw['steps']}, W = {sw['windows']}")
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "parallel_tolerance.png")


def _parallel_mcmc(par, out_dir):
    """Rounds and gradients per chain of rmd and rmd-picard, one panel per target."""
    fig, axes = _plt().subplots(1, 2, figsize=(11, 4.2))
    for ax, (name, entry) in zip(axes, par["mcmc"].items(), strict=False):
        labels, rounds, grads = [], [], []
        for r in entry["rows"]:
            labels.append(f"{'rmd' if r['parallel'] is None else 'R=' + str(r['parallel'])}\n"
                          f"{r['target_accuracy']:g}")
            rounds.append(r["rounds"])
            grads.append(r["grads"])
        x = np.arange(len(labels))
        ax.bar(x - 0.2, rounds, 0.4, color="C6", label="sequential rounds / chain")
        ax.bar(x + 0.2, grads, 0.4, color="C7", label="gradient evaluations / chain")
        ax.set_xticks(x, labels, fontsize=8)
        ax.set(title=name, ylabel="per chain (init excluded)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_dir, "parallel_mcmc.png")


def _parallel_batch_cost(par, out_dir):
    """Time of one batched call against its rows, for every expensive score and target."""
    fig, ax = _plt().subplots(figsize=(6, 4))
    es = par["expensive_score"]
    for calls, label, c in ((es["per_call"], "score network", "C3"),
                            (es["per_call_analytic"], "analytic score", "C0"),
                            *((v["per_call"], f"logistic {k}", f"C{2 + j}") for j, (k, v)
                              in enumerate(par["expensive_target"]["variants"].items()))):
        ax.loglog([c_["rows"] for c_ in calls], [c_["call_s"] * 1e3 for c_ in calls], "o-",
                  color=c, label=label)
    ax.set(xlabel="rows in one call", ylabel="ms per call", title="cost of one batched call")
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "parallel_batch_cost.png")


def all_plots(out_dir, peers=None, diff=None, over=None, par=None, log=print):
    """Every plot whose JSON is given; returns {kind: [file names]}."""
    if not available():
        log("matplotlib is not installed: no plots (pip install -e .[bench])")
        return {}
    written = {}
    if peers is not None:
        written["peers"] = (peers_grads(peers, out_dir) + peers_curves(peers, out_dir)
                            + peers_scaling(peers, out_dir))
    if diff is not None:
        written["diffusion"] = diffusion_plots(diff, out_dir)
    if over is not None:
        written["overhead"] = overhead_plot(over, out_dir)
    if par is not None:
        written["parallel"] = parallel_plots(par, out_dir)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS))
    opts = parser.parse_args(argv)
    out = Path(opts.out)
    written = all_plots(out, *(load_json(out, name)
                               for name in ("peers", "diffusion", "overhead", "parallel")))
    for files in written.values():
        for f in files:
            print(out / f)


if __name__ == "__main__":
    main()
