"""Metric maths against scipy/numpy references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from modeling_sctranslator.metrics import (
    cosine_similarity,
    pearson_per_cell,
    pearson_per_protein,
    protein_prediction_metrics,
)


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    targets = rng.random((50, 6))
    predictions = targets + rng.normal(0, 0.3, targets.shape)
    targets[3, 2] = np.nan
    mask = np.ones_like(targets, dtype=bool)
    mask[10:, 5] = False
    return predictions, targets, mask


def test_per_protein_pearson_matches_scipy_on_valid_cells(data):
    predictions, targets, mask = data
    r = pearson_per_protein(predictions, targets, mask)
    for j in range(6):
        keep = mask[:, j] & ~np.isnan(targets[:, j])
        assert r[j] == pytest.approx(pearsonr(predictions[keep, j], targets[keep, j])[0], abs=1e-12)


def test_per_cell_pearson_matches_scipy(data):
    predictions, targets, mask = data
    r = pearson_per_cell(predictions, targets, mask)
    keep = mask[20] & ~np.isnan(targets[20])
    assert r[20] == pytest.approx(pearsonr(predictions[20, keep], targets[20, keep])[0], abs=1e-12)


def test_cosine_is_over_flattened_valid_entries(data):
    predictions, targets, mask = data
    valid = mask & ~np.isnan(targets)
    p, t = predictions[valid], targets[valid]
    assert cosine_similarity(predictions, targets, mask) == pytest.approx(p @ t / np.linalg.norm(p) / np.linalg.norm(t))


def test_constant_protein_gives_nan_r_and_is_left_out_of_the_mean():
    targets = np.tile(np.arange(10.0)[:, None], (1, 3))
    targets[:, 1] = 5.0
    metrics = protein_prediction_metrics(targets + 0.1, targets)
    assert metrics["proteins_evaluated"] == 2
    assert metrics["pearson_per_protein_mean"] == pytest.approx(1.0)
    assert metrics["mse"] == pytest.approx(0.01)


def test_no_valid_target_is_an_error():
    with pytest.raises(ValueError, match="no valid"):
        protein_prediction_metrics(np.zeros((2, 2)), np.full((2, 2), np.nan))


def test_float_noise_is_no_variation_and_constant_predictions_score_zero():
    rng = np.random.default_rng(1)
    targets = rng.random((30, 3))
    targets[:, 1] = 1e-8 + rng.normal(0, 1e-24, 30)  # a never-detected protein after per-cell scaling
    predictions = targets + rng.normal(0, 0.1, targets.shape)
    predictions[:, 2] = 0.5  # a collapsed prediction of a varying protein
    r = pearson_per_protein(predictions, targets)
    assert np.isnan(r[1])
    assert r[2] == 0.0
    assert 0.5 < r[0] <= 1.0
