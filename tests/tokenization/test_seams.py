"""The tokenizer's rules, each one function in its own module (issue #21): scaling, truncation."""

from __future__ import annotations

import numpy as np

from tokenization.scaling import SCALE_FLOOR, scale_between, scale_rows
from tokenization.truncation import kept_genes, zero_gene_order


def test_the_scaling_rule_maps_each_row_to_floor_one_and_constant_rows_to_the_floor():
    values = np.array([[0.0, 2.0, 4.0], [3.0, 3.0, 3.0], [1.0, np.nan, 5.0]])
    scaled, constant = scale_rows(values)
    np.testing.assert_allclose(scaled[0], [SCALE_FLOOR, 0.5 + SCALE_FLOOR / 2, 1.0])
    assert (scaled[1] == SCALE_FLOOR).all() and constant.tolist() == [False, True, False]
    assert np.isnan(scaled[2, 1]) and scaled[2, 2] == 1.0
    np.testing.assert_array_equal(scale_between(values[0], 0.0, 4.0), scaled[0])


def test_the_truncation_rule_for_every_mapped_gene():
    assert kept_genes(5, 8, "first").tolist() == list(range(5))  # short cells keep everything
    assert kept_genes(10, 4, "first").tolist() == [0, 1, 2, 3]  # the data's order
    a = kept_genes(10, 4, "random", np.random.default_rng(0))
    b = kept_genes(10, 4, "random", np.random.default_rng(0))
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 4  # seeded, no repeats, random order


def test_the_truncation_rule_for_expressed_genes_keeps_the_highest_values_ties_by_token():
    values = np.array([0.5, 0.9, 0.5, 0.1, 0.9])
    tokens = np.array([10, 40, 20, 30, 50])
    assert kept_genes(5, 3, "first", values=values, tokens=tokens).tolist() == [0, 1, 4]
    random = kept_genes(5, 3, "random", np.random.default_rng(1), values=values, tokens=tokens)
    assert random.tolist() == sorted(random.tolist()) and len(random) == 3


def test_zero_genes_are_ranked_by_token_and_seed_not_by_position():
    tokens = np.array([7, 3, 11, 5], dtype=np.int64)
    order = zero_gene_order(tokens, seed=0)
    shuffled = zero_gene_order(tokens[::-1], seed=0)
    assert tokens[order].tolist() == tokens[::-1][shuffled].tolist()
