"""The progress bar shared by the samplers: tqdm, shown only on a terminal."""

import sys

__all__ = ["progress_bar"]


def progress_bar(total, enabled, unit="step"):
    """A tqdm bar of ``total`` units, disabled unless ``enabled`` and stderr is a TTY."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not (enabled and sys.stderr.isatty()), unit=unit,
                desc="Sampling", smoothing=0.1)
