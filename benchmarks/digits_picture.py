"""Draw samples of the trained digits denoiser with lcsample and save them as a picture.

    python benchmarks/digits_picture.py [--weights PATH] [--out PNG] [--seed S]

64 samples (seed 0) of ``tests/data/digits_denoiser.safetensors`` drawn by
``lcsample.diffusion.sample`` with :data:`digits_model.SAMPLER` (EDM's Heun on the Karras
grid, σ = 80 → 0.002, 81 score evaluations per sample), in an 8×8 grid, and below them
two rows of 8 held-out digits for comparison; pixels mapped back to 0..16, grey colormap
(white background, dark strokes, as scikit-learn's own pictures), no axes. Writes
``docs/images/digits_samples.png``.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # lcsample from the checkout
sys.path.insert(0, str(HERE))
from digits_model import (  # noqa: E402
    DEFAULT_WEIGHTS,
    REPO,
    digits_split,
    draw,
    load_denoiser,
    to_pixels,
)

OUT = REPO / "docs" / "images" / "digits_samples.png"


def _tile(images, cols, gap=1):
    """Images (n, 64) in pixels → one array of ``cols`` per row, ``gap`` pixels apart (NaN)."""
    rows = -(-len(images) // cols)
    canvas = np.full((rows * (8 + gap) - gap, cols * (8 + gap) - gap), np.nan)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        canvas[r * (8 + gap):r * (8 + gap) + 8, c * (8 + gap):c * (8 + gap) + 8] = img.reshape(8, 8)
    return canvas


def picture(samples, real, path):
    """Save the 8×8 grid of ``samples`` (64, 64) above two rows of ``real`` digits (16, 64).

    Parameters
    ----------
    samples, real : ndarray, model scale
    path : Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("gray_r").copy()
    cmap.set_bad("white")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.0, 5.6), dpi=100,
                                      gridspec_kw={"height_ratios": [71, 17]})
    for ax, images, cols, title in ((top, samples, 8, "64 samples (lcsample on torch float32, Heun, 81 NFE)"),
                                    (bottom, real, 8, "16 held-out digits")):
        ax.imshow(_tile(to_pixels(images), cols), cmap=cmap, vmin=0.0, vmax=16.0,
                  interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_denoiser(args.weights)  # float32, the network default
    samples, info = draw(model, 64, seed=args.seed)
    _, held_out = digits_split(0)
    picture(samples, held_out[:16], args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.1f} kB), "
          f"{info['nfe_per_sample']:.0f} evaluations per sample")


if __name__ == "__main__":
    main()
