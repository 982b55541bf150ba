"""What kind of numbers a matrix holds, and how each kind is brought to the log scale models compare on.

Paired data arrive as raw counts (single-cell RNA and ADT), log values (bulk RNA-seq as log2(x+1) or
RSEM log, log1p-normalised single-cell data), linear normalised values (counts per 10,000, TPM) or
signed values (RPPA's normalised log ratios, TMT mass-spec log2 ratios, z-scores). One rule, here,
tells them apart for the corpus builder, the tokenizer's input checks, evaluation and the baselines:

* ``counts``: every finite value is a non-negative whole number;
* ``log``: non-negative, not all whole, at most :data:`LOG_SCALE_MAX` (no log-scale expression value
  comes near it: log1p of 1e13);
* ``linear``: non-negative, not all whole, larger than that (CP10k, TPM, FPKM);
* ``signed``: some values are negative (already normalised around zero).

:func:`to_log_scale` maps each kind to the scale the per-protein correlations are computed on:
``log1p`` for counts and linear values, as it is for log and signed values.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LOG1P_KINDS", "LOG_SCALE_MAX", "PROTEIN_TRANSFORMS", "VALUE_KINDS", "protein_transform_for", "to_log_scale",
    "value_kind",
]

LOG_SCALE_MAX = 30.0
VALUE_KINDS = ("counts", "log", "linear", "signed")
LOG1P_KINDS = ("counts", "linear")  # the kinds that log1p brings to the log scale
PROTEIN_TRANSFORMS = ("auto", "log1p", "none")


def value_kind(values) -> str:
    """The kind (see the module docstring) of the finite values in ``values`` (array or sparse matrix;
    sparse: its stored values). An input without a finite value counts as ``counts``."""
    data = values.data if hasattr(values, "tocsr") else values
    data = np.asarray(data, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        return "counts"
    if (data < 0).any():
        return "signed"
    if np.array_equal(data, np.round(data)):
        return "counts"
    return "log" if data.max() <= LOG_SCALE_MAX else "linear"


def to_log_scale(values: np.ndarray, kind: str | None = None) -> np.ndarray:
    """``values`` (dense) on the log scale: ``log1p`` for counts and linear values, unchanged for log and
    signed ones. NaN (not measured) stays NaN. ``kind`` defaults to :func:`value_kind` of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    kind = kind or value_kind(values)
    if kind not in VALUE_KINDS:
        raise ValueError(f"value kind must be one of {VALUE_KINDS}, not {kind!r}")
    return np.log1p(values) if kind in LOG1P_KINDS else values


def protein_transform_for(transform: str, kind: str) -> str:
    """``"log1p"`` or ``"none"``: ``transform`` as asked, or with ``"auto"`` what values of ``kind`` need to
    reach the log scale (the one rule for training corpora and for evaluation)."""
    if transform not in PROTEIN_TRANSFORMS:
        raise ValueError(f"protein_transform must be one of {PROTEIN_TRANSFORMS}, not {transform!r}")
    if transform != "auto":
        return transform
    return "log1p" if kind in LOG1P_KINDS else "none"
