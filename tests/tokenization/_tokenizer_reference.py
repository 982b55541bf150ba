"""A deliberately plain per-cell tokenizer (the original's approach) to check the vectorised one against."""

from __future__ import annotations

import numpy as np


def reference_encode(dense, tokens, max_length, truncation="first", seed=None, padding="max_length"):
    """dense: cells x mapped genes (already column-selected), tokens: their ids. Returns ids, values, mask."""
    dense = np.asarray(dense, dtype=np.float64)
    n_cells, n = dense.shape
    width = max_length if padding == "max_length" else min(n, max_length)
    rng = np.random.default_rng(seed) if (truncation == "random" and n > max_length) else None
    ids = np.zeros((n_cells, width), np.int64)
    values = np.zeros((n_cells, width), np.float32)
    mask = np.zeros((n_cells, width), bool)
    for i in range(n_cells):
        row = dense[i]
        lo, hi = row.min(), row.max()
        if hi == lo:
            scaled = np.full(n, 1e-8)
        else:
            scaled = (row - lo) / (hi - lo) * (1 - 1e-8) + 1e-8
        if rng is not None:
            order = rng.permutation(n)[:max_length]
        else:
            order = np.arange(min(n, max_length))
        k = len(order)
        ids[i, :k] = np.asarray(tokens)[order]
        values[i, :k] = scaled[order]
        mask[i, :k] = True
    return ids, values, mask
