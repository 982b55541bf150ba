"""A position-reading model knows its genes: any input is aligned to its recorded layout, or refused."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import torch

from interpretation.knockout import knockout_analysis
from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from modeling_sctranslator.gene_layout import LAYOUT_FILE, GeneLayout
from modeling_sctranslator.inference import predict_proteins
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

from ..conftest import TINY_MODEL

PROTEINS = ["CD4", "CD19", "CD14"]


@pytest.fixture(scope="module")
def cells(data_dir):
    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:12].copy()
    return rna[:, np.asarray(rna.X.sum(axis=0)).ravel() > 0].copy()  # genes expressed in these cells


@pytest.fixture(scope="module")
def tokenizer(vocab_dir):
    return SCTranslatorTokenizer.from_original_tables(vocab_dir, max_length=64, protein_max_length=6)


@pytest.fixture(scope="module")
def layout_model(tmp_path_factory, cells, tokenizer):
    """A compatible model that reads 40 genes of the file, in a shuffled order (as if trained on such a file)."""
    torch.manual_seed(0)
    model = SCTranslatorForProteinPrediction(SCTranslatorConfig(**TINY_MODEL))
    report = tokenizer.resolve(list(cells.var_names), kind="gene")
    chosen = np.random.default_rng(0).permutation(report.columns)[:40]
    model.gene_layout = GeneLayout("ordered", [int(report.token_ids[c]) for c in chosen], "40 test genes")
    folder = tmp_path_factory.mktemp("layout") / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    own = cells[:, chosen].copy()  # the model's own file: exactly its genes, in its order
    return folder, own


def _predict(folder, rna, **kwargs):
    model = SCTranslatorForProteinPrediction.from_pretrained(folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = predict_proteins(model, SCTranslatorTokenizer.from_pretrained(folder), rna, PROTEINS, **kwargs)
    return result, [str(w.message) for w in caught]


def test_the_layout_is_saved_and_any_gene_order_or_superset_gives_the_same_predictions(layout_model, cells):
    folder, own = layout_model
    assert (folder / LAYOUT_FILE).is_file()
    reference, _ = _predict(folder, own)
    full, _ = _predict(folder, cells)  # every gene of the file: the extra ones are left out
    shuffled = cells[:, np.random.default_rng(1).permutation(cells.n_vars)].copy()
    permuted, _ = _predict(folder, shuffled)
    np.testing.assert_allclose(full.X, reference.X, atol=1e-5)
    np.testing.assert_allclose(permuted.X, reference.X, atol=1e-5)
    info = full.uns["sctranslator"]["gene_layout"]
    assert info["kind"] == "ordered" and info["filled_with_zeros"] == 0 and info["left_out"] == cells.n_vars - 40 - (
        cells.n_vars - len(SCTranslatorTokenizer.from_pretrained(folder).resolve(list(cells.var_names)).columns))


def test_missing_genes_are_zeros_with_a_warning_and_too_few_are_refused(layout_model):
    folder, own = layout_model
    part, messages = _predict(folder, own[:, 5:].copy())  # 35 of 40
    assert part.uns["sctranslator"]["gene_layout"]["filled_with_zeros"] == 5
    assert any("5 of the 40 genes this model reads are not in the input" in m for m in messages)
    with pytest.raises(ValueError, match=r"holds 25% of the 40 genes this model reads .*at least 50%"):
        _predict(folder, own[:, :10].copy())


def test_knockout_reads_the_layout_genes(layout_model, cells):
    folder, own = layout_model
    model = SCTranslatorForProteinPrediction.from_pretrained(folder)
    tokenizer = SCTranslatorTokenizer.from_pretrained(folder)
    gene = str(own.var_names[3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_own = knockout_analysis(model, tokenizer, own, PROTEINS, [gene])
        on_full = knockout_analysis(model, tokenizer, cells, PROTEINS, [gene])
    numbers = [c for c in on_own.effects.columns if on_own.effects[c].dtype.kind == "f"]
    assert numbers and (on_own.effects[numbers].abs().to_numpy().sum() > 0)
    np.testing.assert_allclose(on_full.effects[numbers].to_numpy(), on_own.effects[numbers].to_numpy(), atol=1e-5)
    outside = next(str(g) for g in cells.var_names if g not in set(own.var_names)
                   and tokenizer.resolve([str(g)]).columns.size)
    with pytest.raises(ValueError, match="not among the data's genes the model reads"):
        knockout_analysis(model, tokenizer, cells, PROTEINS, [outside])


def test_folders_without_a_layout_read_file_order_after_one_notice(layout_model, cells, tmp_path):
    folder, own = layout_model
    import shutil

    old = tmp_path / "old"
    shutil.copytree(folder, old)
    (old / LAYOUT_FILE).unlink()  # as saved before layouts were recorded
    before, messages = _predict(old, own)
    assert any("does not record the gene layout" in m for m in messages)
    assert before.uns["sctranslator"]["gene_layout"]["kind"] == "unknown"
    reference, _ = _predict(folder, own)
    np.testing.assert_allclose(before.X, reference.X, atol=1e-6)  # its own file in its order: as before
    _, again = _predict(old, own)
    assert not any("does not record the gene layout" in m for m in again)  # once per model


def test_without_a_layout_a_cut_keeps_the_most_expressed_genes_in_file_order(layout_model, cells, tmp_path):
    """More mapped genes than positions and no recorded layout: the max_genes genes with the highest mean are read
    (in file order), not whatever columns come first, and the cut is warned about and reported."""
    import shutil

    folder, _ = layout_model
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    (old / LAYOUT_FILE).unlink()
    tokenizer = SCTranslatorTokenizer.from_pretrained(old)
    max_genes = SCTranslatorConfig.from_pretrained(old).max_genes
    mapped = tokenizer.resolve(list(cells.var_names), kind="gene").columns
    assert mapped.size > max_genes
    means = np.asarray(cells.X.mean(axis=0)).ravel()[mapped]
    top = np.sort(mapped[np.argsort(-means, kind="stable")[:max_genes]])
    assert set(top) != set(mapped[:max_genes])  # the rule is not file order here

    result, messages = _predict(old, cells)
    expected, _ = _predict(old, cells[:, top].copy())  # exactly those genes, in file order: no cut needed
    np.testing.assert_allclose(result.X, expected.X, atol=1e-6)
    info = result.uns["sctranslator"]["gene_layout"]
    assert info["kind"] == "unknown" and info["genes_cut"] == mapped.size - max_genes
    assert info["genes_read"] == max_genes and "most expressed" in info["rule"]
    assert any(f"{mapped.size - max_genes} of the {mapped.size} mapped genes were not read" in m
               and "most expressed" in m for m in messages)
