"""Fixtures for the training tests: a tokenizer on the original tables, small built corpora."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(scope="session")
def tokenizer(vocab_dir):
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    return SCTranslatorTokenizer.from_original_tables(vocab_dir)


@pytest.fixture(scope="session")
def corpora(tmp_path_factory, data_dir, tokenizer):
    """Built corpora (4 train shards, 80/20 split with seed 0) of the shared data sets the tests use."""
    from training.corpus import build_corpus, find_source

    root = tmp_path_factory.mktemp("corpora")
    out = {}
    for name in ("tcga_brca_bulk", "tenx_pbmc10k_s200", "eccite_ctcl", "eccite"):
        build_corpus(find_source(data_dir / name), root / name, tokenizer, num_shards=4)
        out[name] = root / name
    return out


@pytest.fixture()
def python():
    return sys.executable
