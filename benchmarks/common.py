"""What the benchmark scripts share: paths, the machine, JSON files, medians, table cells.

Every benchmark module that needs the repository or a sibling imports this module; it
puts the repository first on ``sys.path``, so the scripts run from a checkout without
lcsample installed. It imports no other benchmark module.
"""

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(REPO))

#: The cell of a value that is missing (not measured, not reached, not applicable).
DASH = "—"


# ---------------------------------------------------------------------------------------
# The machine


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
    """CPU, cores, versions, commit and load at the start: the ``machine`` of every JSON."""
    import numba

    import lcsample

    status = _git("status", "--porcelain", "--", "lcsample")
    return {
        **_cpuinfo(),
        "logical_cpus": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "llvmlite": __import__("llvmlite").__version__,
        "lcsample": lcsample.__version__,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "lcsample_modified_since_commit": bool(status) if status is not None else None,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
    }


# ---------------------------------------------------------------------------------------
# JSON files


def json_default(value):
    """NumPy scalars and arrays as JSON (``json.dumps(..., default=json_default)``)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json(path, data):
    """``data`` as indented JSON at ``path``, its folder created if need be."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=json_default))


def load_json(out_dir, name):
    """``out_dir/name.json`` loaded, or None when there is no such file."""
    path = Path(out_dir) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def finish(out, json_path):
    """End of a benchmark script: print the run time, write the results if asked to."""
    print(f"done in {out['elapsed_s']:.0f} s")
    if json_path:
        write_json(json_path, out)


# ---------------------------------------------------------------------------------------
# Statistics


def median_inf(values):
    """Median with None counted as +∞; None when that median is +∞ (or nothing is given).

    A seed that never reached the threshold counts as +∞, so the median is None when
    half or more of the seeds did not reach it.
    """
    vals = [np.inf if v is None else v for v in values]
    if not vals:
        return None
    m = float(np.median(vals))
    return m if np.isfinite(m) else None


def quotient(a, b):
    """a / b, or None when either is missing (or zero)."""
    return a / b if a and b else None


# ---------------------------------------------------------------------------------------
# Markdown table cells


def fmt(x, spec):
    """``format(x, spec)``, or a dash for a missing value (None)."""
    return DASH if x is None else format(x, spec)


def seconds(x):
    """Seconds: two decimals below 100, whole seconds above."""
    if x is None:
        return DASH
    return f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def compact(x):
    """3 significant digits (exponent from 1e4 on), ∞ for a run that diverged."""
    if x is None:
        return DASH
    if not np.isfinite(x):
        return "∞"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.1e}"


def image_lines(files):
    """Markdown lines showing the PNG ``files`` (none when there are none)."""
    return [""] + [f"![{f[:-4]}]({f})" for f in files] if files else []
