"""Acceptance 4: save_pretrained / from_pretrained / AutoFeatureExtractor / AutoTokenizer keep vocab, added genes,
outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from ..conftest import AUTO_FEATURE_EXTRACTOR_READS_THE_FOLDER


def _register():
    """The model package registers the tokenizer with AutoFeatureExtractor when imported."""
    from transformers import AutoFeatureExtractor

    import modeling_sctranslator  # noqa: F401

    return AutoFeatureExtractor


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = sp.random(20, 300, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    x.data = np.round(x.data * 20) + 1
    return x, rng


def test_round_trip(vocab_dir, tmp_path):
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    tok = SCTranslatorTokenizer.from_original_tables(vocab_dir, max_length=128, overrides={"foo": "CD4"})
    added = tok.add_genes(["SpikeProtein", "GFP"])
    import pandas as pd

    symbols = pd.read_csv(vocab_dir / "human_symbol_to_entrez.tsv", sep="\t", nrows=400)["symbol"].tolist()
    names = symbols[:298] + ["GFP", "foo"]
    x, _ = _data()
    before = tok(x, gene_names=names, proteins=["CD4", "SpikeProtein"], return_tensors="np")
    written = tok.save_pretrained(tmp_path / "tok")
    assert {p.split("/")[-1] for p in map(str, written)} == {"preprocessor_config.json", "gene_vocab.json",
                                                             "tokenizer_config.json"}
    config = json.loads((tmp_path / "tok" / "preprocessor_config.json").read_text())
    assert config["feature_extractor_type"] == "SCTranslatorTokenizer" and config["max_length"] == 128
    assert "symbol_to_entrez" not in config  # the big tables live in gene_vocab.json

    loaded = SCTranslatorTokenizer.from_pretrained(tmp_path / "tok")
    from transformers import AutoTokenizer

    # AutoTokenizer too: without tokenizer_config.json it guessed a text tokenizer (a sentencepiece error)
    auto_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
    others = [loaded, auto_tokenizer]
    if AUTO_FEATURE_EXTRACTOR_READS_THE_FOLDER:
        others.append(_register().from_pretrained(tmp_path / "tok"))
    else:  # the settings alone: an error that names the loaders that read the vocabulary, not a tokenizer without one
        with pytest.raises(OSError, match=r"gene_vocab.json\) was not read.*AutoTokenizer.from_pretrained"):
            _register().from_pretrained(tmp_path / "tok")
    for other in others:
        assert type(other) is SCTranslatorTokenizer
        assert other.vocab == tok.vocab
        assert other.added_genes == added
        assert other.max_length == 128 and other.overrides == {"foo": "CD4"}
        after = other(x, gene_names=names, proteins=["CD4", "SpikeProtein"], return_tensors="np")
        for key in before:
            np.testing.assert_array_equal(before[key], after[key])
        assert other.add_genes("NewOne") == {"NewOne": max(added.values()) + 1}


def test_remote_code_copy(vocab_dir, tmp_path):
    """register_for_auto_class copies the tokenizer's modules (relative imports only) into the folder."""
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    tok = SCTranslatorTokenizer.from_original_tables(vocab_dir)
    previous = SCTranslatorTokenizer._auto_class  # importing modeling_sctranslator registers it for good
    SCTranslatorTokenizer.register_for_auto_class("AutoFeatureExtractor")
    try:
        tok.save_pretrained(tmp_path / "remote")
    finally:
        SCTranslatorTokenizer._auto_class = previous
    files = {p.name for p in (tmp_path / "remote").iterdir()}
    assert {"tokenization_sctranslator.py", "gene_ids.py", "vocab.py"} <= files
    for name in ("tokenization_sctranslator.py", "gene_ids.py", "vocab.py"):
        text = (tmp_path / "remote" / name).read_text()
        assert "modeling_sctranslator" not in text.replace("never imports the model code", "")
        assert "from tokenization" not in text and "import tokenization" not in text
    config = json.loads((tmp_path / "remote" / "preprocessor_config.json").read_text())
    entry = config["auto_map"]["AutoFeatureExtractor"]
    entry = entry[0] if isinstance(entry, list) else entry
    assert entry == "tokenization_sctranslator.SCTranslatorTokenizer"


def test_missing_vocab_file(vocab_dir, tmp_path):
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    tok = SCTranslatorTokenizer.from_original_tables(vocab_dir)
    tok.save_pretrained(tmp_path / "t")
    (tmp_path / "t" / "gene_vocab.json").unlink()
    with pytest.raises(OSError, match="gene_vocab.json"):
        SCTranslatorTokenizer.from_pretrained(tmp_path / "t")


def test_a_damaged_vocab_file_is_named_with_the_fix(vocab_dir, tmp_path):
    """A cut-off gene_vocab.json gave a bare JSONDecodeError that named neither the file nor what to do."""
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    SCTranslatorTokenizer.from_original_tables(vocab_dir).save_pretrained(tmp_path / "t")
    vocab = tmp_path / "t" / "gene_vocab.json"
    vocab.write_bytes(vocab.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"gene_vocab.json is not valid JSON .*copy or download the tokenizer folder"):
        SCTranslatorTokenizer.from_pretrained(tmp_path / "t")


def test_a_saved_tokenizer_loads_with_another_vocabulary(vocab_dir, tmp_path):
    """pretrain's ship step: a run trained before a renaming keeps its settings and gets today's names."""
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
    from training.pretrain import names_resolving_differently

    original = SCTranslatorTokenizer.from_original_tables(vocab_dir, hgnc=False, max_length=128,
                                                          overrides={"foo": "CD4"})
    original.save_pretrained(tmp_path / "t")
    current = SCTranslatorTokenizer.from_original_tables(vocab_dir).vocab
    loaded = SCTranslatorTokenizer.from_pretrained(tmp_path / "t", vocab=current)
    assert loaded.vocab == current and loaded.max_length == 128 and loaded.overrides == {"foo": "CD4"}
    sept2 = [original.resolve(["SEPT2"]).token_ids[0], loaded.resolve(["SEPT2"]).token_ids[0]]
    assert sept2[0] != sept2[1] and sept2[1] == loaded.resolve(["SEPTIN2"]).token_ids[0]
    assert names_resolving_differently(original.vocab, current) > 1000
    assert names_resolving_differently(current, current) == 0
    with pytest.raises(TypeError, match="GeneVocab"):
        SCTranslatorTokenizer.from_pretrained(tmp_path / "t", vocab={"CD4": 1})
    # other token ids would pair the model's embedding rows with other genes: refused
    from tokenization.vocab import GeneVocab
    from training.pretrain import check_same_token_ids

    larger = GeneVocab.from_json_dict({**current.to_json_dict(), "vocab_size": current.vocab_size + 10})
    with pytest.raises(ValueError, match="token ids"):
        SCTranslatorTokenizer.from_pretrained(tmp_path / "t", vocab=larger)
    check_same_token_ids(original.vocab, current, current.vocab_size)  # same ids, other names: fine
    with pytest.raises(SystemExit, match="vocabulary sizes"):
        check_same_token_ids(original.vocab, larger, current.vocab_size)
    shifted = current.to_json_dict()
    (e1, t1), (e2, t2) = shifted["entrez_to_token"][:2]
    shifted["entrez_to_token"][:2] = [[e1, t2], [e2, t1]]  # two genes swap ids
    with pytest.raises(SystemExit, match="Entrez id -> token id"):
        check_same_token_ids(original.vocab, GeneVocab.from_json_dict(shifted), current.vocab_size)
