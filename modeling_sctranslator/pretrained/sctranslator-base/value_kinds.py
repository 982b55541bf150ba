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
    "is_whole", "protein_transform_for", "to_log_scale", "value_kind",
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
CLR_LINES_MIN = 3  # rows that must agree before CLR values are read as counts (one row fits by chance, 1 in 500)


def clr_counts(values) -> tuple[np.ndarray, str] | None:
    """The counts behind CLR-normalised values as Seurat's ``NormalizeData(normalization.method="CLR")`` and
    muon's ``pt.pp.clr`` write them, and the margin, in words; None for anything else, and wherever the counts
    cannot be told for certain: never a guess.

    They write ``log1p(x / g)``, ``g = exp(mean(log1p(x)))`` over the cells of each protein (Seurat's ``margin=1``,
    muon's default) or over the proteins of each cell (``margin=2``): never negative, so such values looked like
    log1p counts. With ``y = expm1(values)``, each line's ``g`` is the one root of ``mean(log1p(g * y)) = log(g)``
    (the left side minus the right falls with ``g``). Read as counts only when, for every line (at least
    :data:`CLR_LINES_MIN`), that root makes the smallest count whole to 1e-3 and, that count rounded, every value
    whole: true for the matrix the CLR was computed over, by chance 1 in 500 per line otherwise; and when the
    counts share no factor (a geometric mean of log(x + 0.5) is exactly that of 2x, halved: counts x2). A subset
    of those cells (another geometric mean) or another pseudocount gives None, as do log1p counts (whole already) and
    centred, signed CLR (any offset fits it: the checks warn about signed values instead)."""
    dense = np.asarray(values.toarray() if hasattr(values, "toarray") else values, dtype=np.float64)
    if dense.ndim != 2 or dense.size == 0 or not np.isfinite(dense).all() or dense.min() < 0:
        return None
    unlogged = np.expm1(dense)
    nonzero = unlogged > 0
    if nonzero.sum() < 20 or is_whole(unlogged[nonzero]).mean() >= 0.99:  # too few values, or log1p counts
        return None
    for axis, margin in CLR_MARGINS.items():
        lines = np.moveaxis(unlogged, axis, -1)
        if lines.shape[0] < CLR_LINES_MIN:
            continue
        factors = _clr_factors(lines)
        if factors is None:
            continue
        counts = np.round(lines * factors[:, None])
        if np.gcd.reduce(counts[counts > 0].astype(np.int64)) > 1:
            # every count shares a factor: no real panel's do, while log(x + 0.5) means are exactly those of 2x
            return None
        return (np.moveaxis(counts, -1, axis),
                f"{margin}: log1p(counts / geometric mean), as Seurat's and muon's CLR write it")
    return None


def is_whole(values: np.ndarray) -> np.ndarray:
    """Which ``values`` are whole numbers, to float32 precision: the tolerance grows with the value (a count of
    10,000 read back from float32 log values is 0.01 off). The one rule for recovering counts from normalised
    values (CLR here, per-cell totals in ``matrix``)."""
    return np.abs(values - np.round(values)) <= 1e-3 + 2e-6 * np.abs(values)


def _clr_factors(lines: np.ndarray) -> np.ndarray | None:
    """Per row of ``lines`` (expm1 of CLR values) the factor that gives its counts back -- its geometric mean, with
    its smallest count rounded pinning it to float32 precision -- or None unless every row comes back whole (see
    :func:`clr_counts`)."""
    positive = np.where(lines > 0, lines, np.inf)
    smallest = positive.min(axis=1)
    empty = ~np.isfinite(smallest)
    smallest = np.where(empty, 1.0, smallest)
    with np.errstate(invalid="ignore", over="ignore"):
        estimate = smallest * np.exp(_clr_log_means(lines))  # the smallest count, for a true CLR row
        pinned = np.where(empty, 1.0, np.round(estimate) / smallest)
        near = empty | (np.isfinite(pinned) & (pinned > 0) & (np.abs(estimate - np.round(estimate)) <= 1e-3))
    loose = ~near & np.isfinite(estimate) & (estimate >= 50) & (estimate <= 20_000)
    if loose.sum() > max(3, 0.1 * lines.shape[0]):
        return None  # a few loose rows are CLR's; most rows off is no CLR at all
    for row in np.flatnonzero(loose):
        # a protein counted hundreds of times in every cell pins its mean only loosely (the smallest count 457
        # read as 457.05): of the whole numbers within 0.5 %, the one (and only one) that makes the row whole
        reach = int(np.ceil(5e-3 * estimate[row])) + 1
        values = lines[row][lines[row] > 0]
        fits = [n for n in range(int(round(estimate[row])) - reach, int(round(estimate[row])) + reach + 1)
                if n >= 1 and is_whole(values * (n / smallest[row])).all()]
        if len(fits) == 1:
            pinned[row], near[row] = fits[0] / smallest[row], True
    if not near.all():
        return None
    counts = lines * pinned[:, None]
    return pinned if is_whole(counts[lines > 0]).all() else None


def _clr_log_means(lines: np.ndarray, steps: int = 100) -> np.ndarray:
    """``t = log(g)`` per row solving ``mean(log1p(exp(t) * y)) - t = 0``: Newton from the left, where the
    function is convex and falling, so every step stays left of the root and none overshoots (a row without a
    root, as log1p(CP10k) rows without a zero, runs off: NaN)."""
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
