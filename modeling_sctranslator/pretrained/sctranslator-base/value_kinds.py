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
    "protein_transform_for", "is_whole", "smallest_counts", "to_log_scale", "value_kind",
    "whole_share",
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
WHOLE_SHARE = 1.0  # of the non-zero values that must come back as whole counts (float32 storage keeps them so)


def clr_counts(values) -> tuple[np.ndarray, str] | None:
    """The counts behind CLR-normalised values, and how they were normalised, in words (``"per cell across proteins:
    log1p(counts) - mean"``); None when ``values`` are
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

    Either way a line whose smallest non-zero value stands for a count ``k`` (up to :data:`LARGEST_SMALLEST_COUNT`)
    gives its counts back as its values over that value times ``k``, for the smallest ``k`` that makes them whole:
    so values CLR-normalised over more cells than given (a file subset to some cells) are read too. Accepted when
    every value comes back whole, to float32 precision (no other normalisation does), and no line of
    :data:`LINE_MIN` counts or more shares a factor (another pseudocount); log1p counts, already whole, are left to
    the other rules (None). Ambiguous inputs give None, never guessed counts."""
    dense = np.asarray(values.toarray() if hasattr(values, "toarray") else values, dtype=np.float64)
    if dense.ndim != 2 or dense.size == 0 or not np.isfinite(dense).all():
        return None
    if dense.min() < 0:
        return _centred_log_counts(dense)
    unlogged = np.expm1(dense)
    nonzero = unlogged > 0
    if nonzero.sum() < 20 or whole_share(unlogged[nonzero]) >= 0.99:  # too few values, or log1p counts
        return None
    for axis, margin in CLR_MARGINS.items():
        lines = np.moveaxis(unlogged, axis, -1)
        factors = _clr_factors(lines)
        if np.isfinite(factors).all():
            counts = np.round(lines * factors[:, None])
            if not _coprime_lines(counts):
                return None
            described = f"{margin}: log1p(counts / factor), as Seurat's and muon's CLR write it"
            return np.moveaxis(counts, -1, axis), described
    return None


def is_whole(values: np.ndarray) -> np.ndarray:
    """Which ``values`` are whole numbers, to float32 precision: the tolerance grows with the value (a count of
    10,000 read back from float32 log values is 0.01 off). The one rule for recovering counts from normalised
    values (CLR here, per-cell totals in ``matrix``)."""
    return np.abs(values - np.round(values)) <= 1e-3 + 2e-6 * np.abs(values)


def whole_share(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """The share of ``values`` (along ``axis``) that are whole (:func:`is_whole`)."""
    return is_whole(values).mean(axis=axis)


LARGEST_SMALLEST_COUNT = 1000  # the largest count a line's smallest non-zero value is taken to stand for
LINE_MIN = 10  # non-zero values a line needs before its whole counts are evidence, not chance


def smallest_counts(lines: np.ndarray, largest: int = LARGEST_SMALLEST_COUNT, share: float = 1.0,
                    line_min: int = 1) -> np.ndarray:
    """Per row of ``lines`` (dense, non-negative): the count ``k`` (1 .. ``largest``) its smallest non-zero value
    stands for if the row is counts times one factor -- the smallest ``k`` for which at least ``share`` of its
    non-zero values over that value, times ``k``, are whole -- else 0; -1 for a row of fewer than ``line_min``
    non-zero values (none: always -1)."""
    positive = np.where(lines > 0, lines, np.nan)
    n_values = (lines > 0).sum(axis=1)
    found = np.where(n_values >= max(line_min, 1), 0, -1)
    undecided = np.flatnonzero(found == 0)
    if undecided.size == 0:
        return found
    ratios = positive[undecided] / np.nanmin(positive[undecided], axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        for count in range(1, largest + 1):
            whole = np.nanmean(np.where(np.isnan(ratios), np.nan, is_whole(ratios * count)), axis=1) >= share
            found[undecided[whole]] = count
            undecided, ratios = undecided[~whole], ratios[~whole]
            if undecided.size == 0 or (count == 8 and undecided.size > 0.5 * found.size):
                break  # counts have small counts in most rows; other values (TPM, ratios) none: do not search on
    return found


def _clr_factors(lines: np.ndarray) -> np.ndarray:
    """Per row of ``lines`` (expm1 of CLR values): the factor that gives its counts back, NaN where none does.
    One rule for all rows, never a mix:

    * the rows' geometric means, each the one root of ``mean(log1p(g * y)) = log(g)``: exact for the cells the
      CLR was computed over, so taken when, for every row, it makes the smallest count whole to 1e-3 and, that
      count rounded, the whole row (a row whose smallest count is 1 is whole under any factor, so only all rows
      together are evidence);
    * else each row's smallest non-zero value over the smallest count ``k`` (up to
      :data:`LARGEST_SMALLEST_COUNT`) that makes the row whole -- the smallest, as every multiple of the counts
      is whole too (a subset of the cells the CLR was computed over has another geometric mean) -- for rows of
      :data:`LINE_MIN` values or more that are not one value repeated; other rows: their geometric mean as above,
      where nine in ten of the rows read both ways agree (the means are the CLR's own), else NaN."""
    positive = np.where(lines > 0, lines, np.inf)
    smallest = positive.min(axis=1)
    empty = ~np.isfinite(smallest)
    smallest = np.where(empty, 1.0, smallest)
    with np.errstate(invalid="ignore", over="ignore"):
        estimate = smallest * np.exp(_clr_log_means(lines))  # the smallest count, for a true CLR row
        pinned = np.where(empty, 1.0, np.round(estimate) / smallest)
        near = empty | (np.isfinite(pinned) & (pinned > 0) & (np.abs(estimate - np.round(estimate)) <= 1e-3))
    if near.all() and (_line_whole(lines * pinned[:, None]) >= WHOLE_SHARE).all():
        return pinned
    factors = np.where(empty, 1.0, np.nan)
    counts = smallest_counts(lines, share=WHOLE_SHARE, line_min=LINE_MIN)
    informative = np.where(lines > 0, lines, 0.0).max(axis=1) > smallest * (1 + 1e-6)
    found = (counts > 0) & informative  # a row of one value repeated says nothing of its count
    factors[found] = counts[found] / smallest[found]
    # the rows the search cannot read (few values) take their geometric mean only where the others show the means
    # are the CLR's own: nearly every row read both ways agrees (a high-count row's mean is loose: the few others)
    agree = found & near & (np.abs(pinned / np.where(found, factors, 1.0) - 1) <= 1e-6)
    if found.sum() >= 5 and agree.sum() >= 0.9 * found.sum():
        rest = np.isnan(factors) & near
        rest_whole = _line_whole(lines[rest] * pinned[rest, None]) >= WHOLE_SHARE
        factors[np.flatnonzero(rest)[rest_whole]] = pinned[rest][rest_whole]
    return factors


def _coprime_lines(counts: np.ndarray) -> bool:
    """Whether no row of :data:`LINE_MIN` non-zero counts or more has a factor common to all of them. Counts of a
    real panel never do (none of a cell's or a protein's in the 9 shared sets); log(x + 1/m) - mean is exactly the
    centred log1p of m * x, which does (a pseudocount of 0.5 read as counts x2)."""
    rows = counts[(counts > 0).sum(axis=1) >= LINE_MIN].astype(np.int64)
    return rows.size == 0 or bool((np.gcd.reduce(rows, axis=1) == 1).all())


def _line_whole(scaled: np.ndarray) -> np.ndarray:
    """Per row: the share of its non-zero values that are whole (rows of ``scaled`` counts)."""
    nonzero = scaled > 0
    whole = is_whole(scaled) & nonzero
    return whole.sum(axis=1) / np.maximum(nonzero.sum(axis=1), 1)


def _centred_log_counts(dense: np.ndarray) -> tuple[np.ndarray, str] | None:
    """Counts behind ``log1p(x) - mean(log1p(x))`` along either margin (see :func:`clr_counts`). A line's values
    less its lowest are ``log((x + 1) / (k + 1))``, ``k`` its smallest count; the smallest ``k`` (0 in nearly
    every line) for which every ``(k + 1) * exp(value - lowest) - 1`` is whole gives the line's counts. Lines of
    fewer than :data:`LINE_MIN` values are not read: a few values can be whole by chance."""
    for axis, margin in CLR_MARGINS.items():
        if dense.shape[axis] < LINE_MIN:
            continue
        lines = np.moveaxis(dense, axis, -1)  # one line per row
        ratios = np.exp(lines - lines.min(axis=1, keepdims=True))
        smallest = np.full(lines.shape[0], -1)
        open_lines = np.arange(lines.shape[0])
        for count in range(1000 + 1):
            counts = (count + 1) * ratios[open_lines] - 1
            whole = whole_share(counts, axis=1) >= WHOLE_SHARE
            smallest[open_lines[whole]] = count
            open_lines = open_lines[~whole]
            if count == 8 and open_lines.size > 0.5 * lines.shape[0]:
                break  # counts have zeros or small counts in most lines; other values (ratios, z-scores) none
            if open_lines.size == 0:
                counts = np.round((smallest[:, None] + 1) * ratios - 1)
                if not _coprime_lines(counts):  # a shared factor: another pseudocount (x + 0.5: counts x2)
                    return None
                # a constant line reads as zeros: nearly always what it holds (a protein no cell of a subset has)
                return np.moveaxis(counts, -1, axis), f"{margin}: log1p(counts) - mean"
    return None


def _clr_log_means(lines: np.ndarray, steps: int = 100) -> np.ndarray:
    """``t = log(g)`` per row solving ``mean(log1p(exp(t) * y)) - t = 0``: Newton from the left, where the
    function is convex and falling, so every step stays left of the root and none overshoots (a row without a
    root, as log1p(CP10k) rows without a zero, runs off: inf or NaN)."""
    t = np.full(lines.shape[0], -30.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(steps):
            scaled = np.exp(t)[:, None] * lines
            step = (np.log1p(scaled).mean(axis=1) - t) / ((scaled / (1 + scaled)).mean(axis=1) - 1)
            t = np.where(np.isfinite(t - step), t - step, np.nan)  # a row off to infinity stops there, alone
            moving = np.abs(step[np.isfinite(t)])
            if moving.size == 0 or moving.max() < 1e-13:
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
