"""Interpretation tests: one torch thread (2 shared cores: OpenMP spinning against other processes
makes tiny models ~100x slower with 2 threads); the variant's tiny tokenizer and gene names."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer(vocab_dir):
    from ._variant import variant_tokenizer

    return variant_tokenizer(vocab_dir)


@pytest.fixture(scope="module")
def gene_names(tokenizer, data_dir):
    from ._variant import mapped_gene_names

    return mapped_gene_names(tokenizer, data_dir)
