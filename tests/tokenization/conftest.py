"""Fixtures of the tokenizer tests (``shared``, ``vocab_dir`` come from ``tests/conftest.py``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def original_tokenizer(vocab_dir):
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    return SCTranslatorTokenizer.from_original_tables(vocab_dir)
