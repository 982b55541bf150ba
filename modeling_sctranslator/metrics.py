"""Prediction-quality metrics: the one place their maths lives (Trainer, CLI and benchmarks use it).

All functions take ``predictions`` and ``targets`` of shape (cells, proteins); NaN targets and
positions where ``mask`` is False are left out.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cosine_similarity", "pearson_per_cell", "pearson_per_protein", "protein_prediction_metrics",
           "proteins_not_scored"]


def _valid(predictions: np.ndarray, targets: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {predictions.shape} and targets {targets.shape} differ in shape")
    valid = ~np.isnan(targets) & ~np.isnan(predictions)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool).reshape(targets.shape)
    return valid


def cosine_similarity(predictions: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Cosine similarity of the flattened valid entries (what the original reports as "ccc")."""
    valid = _valid(predictions, targets, mask)
    p = np.asarray(predictions, dtype=np.float64)[valid]
    t = np.asarray(targets, dtype=np.float64)[valid]
    denominator = max(np.linalg.norm(p) * np.linalg.norm(t), 1e-8)  # torch's CosineSimilarity eps
    return float(p @ t / denominator)


def _flat(centered: np.ndarray, values: np.ndarray, valid: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Columns without real variation: spread below 1e-9 of their magnitude (float noise counts as none)."""
    spread = np.sqrt((centered**2).sum(axis=0) / np.maximum(n, 1))
    magnitude = np.abs(np.where(valid, values, 0.0)).sum(axis=0) / np.maximum(n, 1)
    return spread <= 1e-9 * np.maximum(magnitude, 1e-12)


def _pearson_columns(predictions: np.ndarray, targets: np.ndarray, valid: np.ndarray, min_points: int = 3):
    """Pearson r of each column over its valid rows.

    NaN where the *target* does not vary (or has fewer than ``min_points`` values): there is nothing
    to predict, so the column is left out of summaries. A constant *prediction* of a varying target
    scores 0 (it carries no information), so a collapsed model is not flattered by dropped columns.
    """
    p = np.where(valid, predictions, 0.0)
    t = np.where(valid, targets, 0.0)
    n = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_centered = np.where(valid, p - p.sum(axis=0) / n, 0.0)
        t_centered = np.where(valid, t - t.sum(axis=0) / n, 0.0)
        covariance = (p_centered * t_centered).sum(axis=0)
        scale = np.sqrt((p_centered**2).sum(axis=0) * (t_centered**2).sum(axis=0))
        r = covariance / scale
    r[_flat(p_centered, p, valid, n)] = 0.0
    r[(n < min_points) | _flat(t_centered, t, valid, n)] = np.nan
    return r


def pearson_per_protein(predictions: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pearson r across cells, one value per protein (NaN where undefined)."""
    valid = _valid(predictions, targets, mask)
    return _pearson_columns(np.asarray(predictions, np.float64), np.asarray(targets, np.float64), valid)


def pearson_per_cell(predictions: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pearson r across proteins, one value per cell (NaN where undefined)."""
    valid = _valid(predictions, targets, mask)
    return _pearson_columns(np.asarray(predictions, np.float64).T, np.asarray(targets, np.float64).T, valid.T)


def proteins_not_scored(names: list[str], predictions: np.ndarray, targets: np.ndarray,
                        mask: np.ndarray | None = None) -> dict[str, str]:
    """The proteins that get no per-protein Pearson r, each with the reason (what summaries leave out)."""
    valid = _valid(predictions, targets, mask)
    scored = np.isfinite(pearson_per_protein(predictions, targets, mask))
    reasons = {}
    for j in np.flatnonzero(~scored):
        n = int(valid[:, j].sum())
        reasons[str(names[j])] = (f"measured on {n} cell{'s' if n != 1 else ''} (needs 3)" if n < 3
                                  else f"the same measured value on all {n} cells that measured it")
    return reasons


def _nan_stat(values: np.ndarray, stat) -> float:
    finite = values[np.isfinite(values)]
    return float(stat(finite)) if finite.size else float("nan")


def protein_prediction_metrics(
    predictions: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """MSE, cosine similarity, mean/median per-protein Pearson, mean per-cell Pearson."""
    valid = _valid(predictions, targets, mask)
    if not valid.any():
        raise ValueError("no valid (unmasked, non-NaN) target to evaluate against")
    diff = np.asarray(predictions, np.float64)[valid] - np.asarray(targets, np.float64)[valid]
    per_protein = pearson_per_protein(predictions, targets, mask)
    per_cell = pearson_per_cell(predictions, targets, mask)
    return {
        "mse": float(np.mean(diff**2)),
        "cosine_similarity": cosine_similarity(predictions, targets, mask),
        "pearson_per_protein_mean": _nan_stat(per_protein, np.mean),
        "pearson_per_protein_median": _nan_stat(per_protein, np.median),
        "pearson_per_cell_mean": _nan_stat(per_cell, np.mean),
        "proteins_evaluated": int(np.isfinite(per_protein).sum()),
        "cells_evaluated": int(valid.any(axis=1).sum()),
    }
