"""Command line: ``python -m lcsample demo``."""

import argparse
import sys
import time
import warnings


def demo(seed=0, draws=2000, chains=4):
    """Sample German credit logistic regression (d = 25) and print ArviZ diagnostics."""
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    t_start = time.perf_counter()
    import arviz as az

    import lcsample

    X, y = lcsample.datasets.load_german_credit()
    target = lcsample.targets.LogisticRegression(X, y)
    print(f"German credit logistic regression: {X.shape[0]} observations, d = {target.dim}")
    print(f"RM-ULMC with default settings, {chains} chains, {draws} draws, seed {seed}\n")
    result = lcsample.sample(target, draws=draws, chains=chains, seed=seed)
    data = result.to_arviz()
    summary = az.summary(data)
    with_pd_options(lambda: print(summary))
    ess = summary["ess_bulk"]
    wall = time.perf_counter() - t_start
    print("\nDiagnostics")
    print(f"  R-hat (max)               {summary['r_hat'].max():.3f}")
    print(f"  ESS bulk (min / median)   {ess.min():.0f} / {ess.median():.0f}")
    print(f"  ESS tail (min)            {summary['ess_tail'].min():.0f}")
    print(f"  divergent chains          {result.n_divergences}")
    init = result.attrs["init_grad_evals"]
    print(f"  gradient evaluations      {int(result.n_grad_evals.sum()) + init} "
          f"({int(result.n_grad_evals[0])} per chain with its {result.attrs['tune']} warmup "
          f"steps, plus {init} for the shared mode search)")
    print(f"  inverse mass              {result.attrs['inverse_mass_matrix']} "
          f"(from the curvature at the mode)")
    print(f"  step size / friction      {result.attrs['step_size'][0]:.4g} / "
          f"{result.attrs['friction'][0]:.4g} (preconditioned units)")
    t = result.timing
    print(f"  wall time                 {wall:.2f} s: lcsample.sample {t['total']:.2f} s "
          f"(compile {t['compile']:.2f}, initialization {t['initialization']:.2f}, warmup "
          f"{t['warmup']:.2f}, sampling {t['sampling']:.2f}, checks {t['checks']:.2f}); "
          f"imports, data, ArviZ conversion and summary {wall - t['total']:.2f}")
    print("\nRM-ULMC is unadjusted (no Metropolis step): its draws carry a small, controlled "
          "bias, about 1% of the variance along the stiffest direction with these settings.")


def with_pd_options(fn):
    """Run ``fn`` with pandas showing the whole summary table."""
    import pandas as pd

    with pd.option_context("display.max_rows", 200, "display.max_columns", 20,
                           "display.width", 140):
        fn()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lcsample")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="sample German credit logistic regression with 4 chains")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--chains", type=int, default=4)
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(seed=args.seed, draws=args.draws, chains=args.chains)
    return 0


if __name__ == "__main__":
    sys.exit(main())
