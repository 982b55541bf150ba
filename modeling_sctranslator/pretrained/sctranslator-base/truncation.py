"""The truncation rule: which of a cell's mapped genes the encoder keeps when there are more than
``max_length``, and which zero genes the expressed-gene encoding adds (``expressed_zero_genes``)."""

from __future__ import annotations

import numpy as np

__all__ = ["TRUNCATIONS", "kept_genes", "zero_gene_order"]

TRUNCATIONS = ("first", "random")


def kept_genes(n_genes: int, max_length: int, truncation: str, rng: np.random.Generator | None = None,
               values: np.ndarray | None = None, tokens: np.ndarray | None = None) -> np.ndarray:
    """Positions (into a cell's ``n_genes`` candidate genes) that the encoder keeps, at most ``max_length``.

    Every mapped gene (``values is None``, the original encoding): ``"first"`` keeps the first
    ``max_length`` in the data's order (the original aligned mode), ``"random"`` a random ``max_length``
    of them in random order (``rng.permutation``, the original unaligned mode).

    Expressed genes (``values``: their scaled values, ``tokens``: their token ids, both in token-id
    order): ``"first"`` keeps the highest values (ties: lower token id), so the choice does not depend
    on the data's gene order; ``"random"`` a random subset (``rng.choice``); either way in token-id order.
    """
    if n_genes <= max_length:
        return np.arange(n_genes)
    if values is None:
        return np.arange(max_length) if truncation == "first" else rng.permutation(n_genes)[:max_length]
    if truncation == "first":
        keep = np.lexsort((tokens, -values))[:max_length]
    else:
        keep = rng.choice(n_genes, max_length, replace=False)
    keep.sort()
    return keep


def zero_gene_order(tokens: np.ndarray, seed: int | None) -> np.ndarray:
    """A fixed ranking of genes by a hash of (token id, ``seed``): the zero genes the expressed-gene encoding
    adds with ``truncation="first"`` come first in it, so the choice does not depend on gene order."""
    return np.argsort(_mix64(tokens.astype(np.uint64) ^ _mix64(np.uint64(seed or 0))), kind="stable")


def _mix64(x: np.ndarray | np.uint64) -> np.ndarray:
    """splitmix64 finaliser: a fixed, well-mixed hash of unsigned 64-bit integers (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
