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
    "CLR_MARGINS", "LOG1P_KINDS", "LOG_SCALE_MAX", "PROTEIN_TRANSFORMS", "VALUE_KINDS", "clr_counts",
    "protein_transform_for", "to_log_scale", "value_kind",
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


CLR_MARGINS = {0: "per protein across cells", 1: "per cell across proteins"}
WHOLE_SHARE = 0.99  # of the non-zero values that must come back as whole counts (float32 storage keeps them so)


def clr_counts(values) -> tuple[np.ndarray, str] | None:
    """The counts behind CLR-normalised values, and how they were normalised, in words (``"log1p(x) - mean per cell
    across proteins"``); None when ``values`` are
    no such transform of whole counts (RPPA, mass-spec ratios, z-scores, log1p(CP10k), ...).

    Two forms, each along either margin (:data:`CLR_MARGINS`):

    * Seurat's ``NormalizeData(normalization.method="CLR")`` and muon's ``pt.pp.clr`` write ``log1p(x / g)``, with
      ``g = exp(mean(log1p(x)))`` over the cells of each protein (Seurat's ``margin=1``, muon's default) or over
      the proteins of each cell (``margin=2``): never negative, so such values look like log1p counts on another
      scale per protein or per cell. With ``y = expm1(values)``, each ``g`` is the one root of
      ``mean(log1p(g * y)) = log(g)`` (the left side minus the right falls with ``g``), and ``g * y`` gives the
      counts back.
    * The centred log ratio ``log1p(x) - mean(log1p(x))``: signed. Each line's lowest value is its smallest count
      (0 in nearly every line, else a few) less the mean, which gives the mean back.

    Accepted when at least :data:`WHOLE_SHARE` of the non-zero counts come back whole (float32 storage keeps them
    so; no other normalisation does)."""
    dense = np.asarray(values.toarray() if hasattr(values, "toarray") else values, dtype=np.float64)
    if dense.ndim != 2 or dense.size == 0 or not np.isfinite(dense).all():
        return None
    if dense.min() < 0:
        return _centred_log_counts(dense)
    unlogged = np.expm1(dense)
    nonzero = unlogged > 0
    if nonzero.sum() < 20:
        return None
    for axis, margin in CLR_MARGINS.items():
        log_means = _clr_log_means(unlogged, axis)
        # a geometric mean of log1p counts is at least 1 and far below e^20; a line without a root (values that are
        # no CLR: log1p(CP10k) rows without a zero) runs off to infinity
        if not (np.isfinite(log_means).all() and log_means.min() > -1e-9 and log_means.max() < 20):
            continue
        counts = unlogged * np.expand_dims(_whole_count_factors(unlogged, np.exp(log_means), axis), axis)
        if _mostly_whole(counts[nonzero]):
            return np.where(nonzero, np.round(counts), 0.0), f"log1p(x / geometric mean) {margin}: Seurat's, muon's"
    return None


def _mostly_whole(found: np.ndarray) -> bool:
    """At least :data:`WHOLE_SHARE` of ``found`` (counts, non-zero) whole, to float32 precision, and none below 1."""
    whole = np.abs(found - np.round(found)) <= np.maximum(0.02, 2e-6 * np.abs(found))
    return found.size >= 20 and whole.mean() >= WHOLE_SHARE and np.round(found).min() >= 1


CENTRED_LINE_MIN = 10  # values a centred line needs before its whole counts are evidence, not chance
LARGEST_SMALLEST_COUNT = 1000


def _centred_log_counts(dense: np.ndarray) -> tuple[np.ndarray, str] | None:
    """Counts behind ``log1p(x) - mean(log1p(x))`` along either margin (see :func:`clr_counts`). A line's values
    less its lowest are ``log((x + 1) / (k + 1))``, ``k`` its smallest count; the smallest ``k`` (0 in nearly
    every line) for which every ``(k + 1) * exp(value - lowest) - 1`` is whole gives the line's counts. Lines of
    fewer than :data:`CENTRED_LINE_MIN` values are not read: a few values can be whole by chance."""
    for axis, margin in CLR_MARGINS.items():
        if dense.shape[axis] < CENTRED_LINE_MIN:
            continue
        lines = np.moveaxis(dense, axis, -1)  # one line per row
        ratios = np.exp(lines - lines.min(axis=1, keepdims=True))
        smallest = np.full(lines.shape[0], -1)
        open_lines = np.arange(lines.shape[0])
        for count in range(LARGEST_SMALLEST_COUNT + 1):
            counts = (count + 1) * ratios[open_lines] - 1
            off = np.abs(counts - np.round(counts)) > np.maximum(0.02, 2e-6 * np.abs(counts))
            whole = off.mean(axis=1) <= 1 - WHOLE_SHARE
            smallest[open_lines[whole]] = count
            open_lines = open_lines[~whole]
            if count == 8 and open_lines.size > 0.5 * lines.shape[0]:
                break  # counts have zeros or small counts in most lines; other values (ratios, z-scores) none
            if open_lines.size == 0:
                counts = np.round((smallest[:, None] + 1) * ratios - 1)
                counts = np.moveaxis(counts, -1, axis)
                return ((counts, f"log1p(x) - mean {margin}") if _mostly_whole(counts[counts > 0])
                        else None)
    return None


def _whole_count_factors(unlogged: np.ndarray, factors: np.ndarray, axis: int, reach: int = 8) -> np.ndarray:
    """``factors`` (one per line along ``axis``) refined so that the line's counts are whole. A protein counted
    hundreds of times in every cell pins its geometric mean only loosely (the mean of log1p barely moves with it):
    from float32 values it comes up to 2e-3 off, a count of 2,450 read as 2,444.7. The line's smallest count is
    whole: of the whole numbers within ``reach`` of its estimate, the one that makes most of the line whole gives
    the factor to float32 precision."""
    lines = np.moveaxis(unlogged, axis, -1)
    positive = np.where(lines > 0, lines, np.inf)
    smallest = positive.min(axis=1)
    usable = np.isfinite(smallest)
    smallest = np.where(usable, smallest, 1.0)
    estimate = np.round(smallest * factors)
    best, best_whole = factors.copy(), np.full(factors.shape, -1.0)
    for offset in sorted(range(-reach, reach + 1), key=abs):
        count = estimate + offset
        candidate = count / smallest
        scaled = lines * candidate[:, None]
        whole = (np.abs(scaled - np.round(scaled)) <= np.maximum(0.02, 2e-6 * scaled)).mean(axis=1)
        better = usable & (count >= 1) & (whole > best_whole)
        best, best_whole = np.where(better, candidate, best), np.where(better, whole, best_whole)
    return best


def _clr_log_means(unlogged: np.ndarray, axis: int, steps: int = 100) -> np.ndarray:
    """``t = log(g)`` along ``axis`` solving ``mean(log1p(exp(t) * y)) - t = 0``: Newton from the left, where the
    function is convex and falling, so every step stays left of the root and none overshoots."""
    t = np.full(unlogged.shape[1 - axis], -30.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a line without a root: inf/NaN, refused
        for _ in range(steps):
            scaled = np.exp(np.expand_dims(t, axis)) * unlogged
            value = np.log1p(scaled).mean(axis=axis) - t
            slope = (scaled / (1 + scaled)).mean(axis=axis) - 1
            step = value / slope
            t = t - step
            if not np.isfinite(t).all() or np.abs(step).max() < 1e-13:
                break
    return t


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
