"""The scaling rule: per-cell max-min scaling to ``[1e-8, 1]``, as the original (:func:`scale_between` holds
the formula, :func:`scale_rows` applies it to the rows of a matrix)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

__all__ = ["CONSTANT_CELLS", "SCALE_FLOOR", "ConstantCellWarning", "constant_cells_counted_apart", "scale_between",
           "scale_rows", "warn_constant_cells"]

SCALE_FLOOR = 1e-8


class ConstantCellWarning(UserWarning):
    """Some cells have max == min over their genes/proteins; see :func:`scale_rows`."""


CONSTANT_CELLS = r"\d+ of \d+ cells have constant "  # the start of every such warning (to filter them by)


@contextmanager
def constant_cells_counted_apart() -> Iterator[None]:
    """Hold back the constant-cell warnings of the tokenizer calls inside: a caller that encodes its cells in chunks
    counts them itself and says it once, in total (:func:`warn_constant_cells`), where each chunk would say its own
    ("10 of 256 cells", then "20 of 244"). Filtered by message: a saved folder's tokenizer has its own warning class.
    Like any ``catch_warnings`` it sets the process's filters (threads of one process share them)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CONSTANT_CELLS)
        yield


def warn_constant_cells(n_constant: int, n_cells: int, side: str, over: str = "", stacklevel: int = 3) -> None:
    """Warn that ``n_constant`` of ``n_cells`` cells have constant ``side`` values ("RNA", "protein"; ``over``: over
    what, e.g. "the 8 mapped genes"), which :func:`scale_rows` sets to the floor; nothing when there are none."""
    if not n_constant:
        return
    advice = " Consider removing empty cells (QC) first." if side == "RNA" else ""
    warnings.warn(
        f"{n_constant} of {n_cells} cells have constant {side} values{' over ' + over if over else ''} (e.g. all "
        f"zero): max-min scaling is undefined there (the original gives NaN); their values are set to "
        f"{SCALE_FLOOR}.{advice}",
        ConstantCellWarning, stacklevel=stacklevel,
    )


def scale_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row max-min scaling to [1e-8, 1], as the original: ``1e-8 + (v - min) / (max - min) * (1 - 1e-8)``.

    Computed in float64 over every column of the row (NaN ignored for min/max and kept as NaN).
    A constant row (max == min, e.g. all zero) has no scale: the original divides 0 by 0 and gets
    NaN; we give every non-NaN value of such a row ``1e-8`` (the bottom of the range: the row carries
    no information) and return a mask of those rows so callers can warn. Returns (scaled float64,
    constant-row mask).
    """
    v = np.asarray(values, dtype=np.float64)
    if not v.shape[1]:
        lo = hi = np.zeros((v.shape[0], 1))
    else:
        # all-NaN rows get NaN bounds without numpy's warning; not through warnings.catch_warnings, which clears
        # Python's record of warnings already shown, so every chunk's tokenizer warnings would be shown again
        all_nan = np.isnan(v).all(axis=1, keepdims=True)
        filled = np.where(all_nan, 0.0, v)
        lo = np.where(all_nan, np.nan, np.nanmin(filled, axis=1, keepdims=True))
        hi = np.where(all_nan, np.nan, np.nanmax(filled, axis=1, keepdims=True))
    return scale_between(v, lo, hi), (hi - lo)[:, 0] == 0


def scale_between(values: np.ndarray | float, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """The max-min formula with given bounds (broadcast): ``1e-8 + (v - lo) / (hi - lo) * (1 - 1e-8)``.

    The one place the formula lives (:func:`scale_rows` and the expressed-gene encoding, whose bounds
    include genes it does not store, both call it). Where ``hi == lo`` every non-NaN value gets ``1e-8``.
    """
    v = np.asarray(values, dtype=np.float64)
    span = np.asarray(hi, dtype=np.float64) - lo
    constant = span == 0
    out = (v - lo) / np.where(constant, 1.0, span) * (1 - SCALE_FLOOR) + SCALE_FLOOR
    return np.where(constant & ~np.isnan(v), SCALE_FLOOR, out)
