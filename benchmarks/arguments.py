"""Argument types of the benchmark scripts: a bad value is one argparse error line, not a traceback after the
data has loaded (``--repeats 0`` divided by zero, ``--density 2`` drew impossible matrices, a missing model folder
was read as a Hub repo id)."""

from __future__ import annotations

import argparse
from pathlib import Path


def positive_int(text: str) -> int:
    """A whole number >= 1 (cells, genes, repeats, batch sizes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1] (a share of non-zero values)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be above 0 and at most 1")
    return value


def model_folder(text: str) -> Path:
    """A saved model folder that exists (these scripts read local folders; a missing one read as a Hub repo id)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder: give a saved model folder (config.json, "
                                         "model.safetensors)")
    return path
