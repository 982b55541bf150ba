"""Knockout on files with gene columns the vocabulary does not know (every 10x file), read as the default model
reads RNA: raw counts -> log1p(CP10k), library sizes over every column. Baseline and knocked-out cells must be
encoded alike except for the knocked-out gene."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from interpretation import knockout_analysis
from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

from ..conftest import TINY_MODEL
from ._variant import mapped_gene_names

PROTEINS = ["CD4", "CD8A", "CD19", "PTPRC"]
N_MAPPED, N_UNMAPPED, N_CELLS = 30, 20, 24


def quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def tokenizer(vocab_dir):
    # the default model's RNA transform
    return SCTranslatorTokenizer.from_original_tables(vocab_dir, max_length=TINY_MODEL["max_genes"],
                                                      protein_max_length=4, rna_transform="log1p_cp10k")


@pytest.fixture(scope="module")
def gene_names(tokenizer, data_dir):
    return mapped_gene_names(tokenizer, data_dir, N_MAPPED)


@pytest.fixture(scope="module")
def files(gene_names):
    """The same cells twice: raw counts with unmapped columns between the mapped ones, and the mapped columns
    alone holding the log1p(CP10k) values the tokenizer makes of the first (library over every column)."""
    rng = np.random.default_rng(0)
    rate = rng.gamma(2.0, 2.0, size=(N_CELLS, N_MAPPED)) * (rng.random((N_CELLS, N_MAPPED)) < 0.6)
    mapped = rng.poisson(rate).astype(np.float64)
    mapped[:, 0] = 0  # expressed in no cell
    unmapped = rng.poisson(5.0, size=(N_CELLS, N_UNMAPPED)).astype(np.float64)  # most of each library
    order = np.argsort(np.r_[np.arange(N_MAPPED) * 2.0, np.arange(N_UNMAPPED) * 2.0 + 1], kind="stable")
    names = np.asarray(gene_names + [f"NOT_A_GENE_{i}" for i in range(N_UNMAPPED)])[order]
    with_unmapped = ad.AnnData(X=sp.csr_matrix(np.hstack([mapped, unmapped])[:, order]),
                               var=pd.DataFrame(index=names))
    library = mapped.sum(1) + unmapped.sum(1)
    logged = np.log1p(mapped * (1e4 / library)[:, None])
    mapped_only = ad.AnnData(X=sp.csr_matrix(logged), var=pd.DataFrame(index=gene_names))
    for rna in (with_unmapped, mapped_only):
        rna.obs_names = [f"cell{i}" for i in range(N_CELLS)]
    return with_unmapped, mapped_only, mapped


def model(variant: bool) -> SCTranslatorForProteinPrediction:
    torch.manual_seed(0)
    kind = {"translator_type": "cross_attention"} if variant else {}
    return SCTranslatorForProteinPrediction(SCTranslatorConfig(**{**TINY_MODEL, "max_proteins": 4}, **kind)).eval()


@pytest.mark.parametrize("variant", [True, False], ids=["variant", "compatible"])
def test_unmapped_columns_give_the_same_knockout_table_as_the_mapped_columns_alone(tokenizer, gene_names, files,
                                                                                  variant):
    with_unmapped, mapped_only, _ = files
    _, report = quiet(tokenizer, rna=mapped_only, max_length=8, return_report=True)
    assert report.rna_values == "log values, read as they are"  # the premise: both files give the same values
    genes = [gene_names[0], gene_names[3], gene_names[11]]
    tables = [quiet(knockout_analysis, model(variant), tokenizer, rna, PROTEINS, genes, chunk_size=10).effects
              for rna in (with_unmapped, mapped_only)]
    numbers = tables[0].select_dtypes("number").columns
    assert tables[0][numbers].abs().to_numpy().sum() > 0
    np.testing.assert_allclose(tables[0][numbers].to_numpy(), tables[1][numbers].to_numpy(), atol=1e-6)


def test_only_the_cells_expressing_a_gene_are_perturbed_and_a_gene_in_no_cell_has_no_effect(tokenizer, gene_names,
                                                                                           files):
    with_unmapped, _, counts = files
    genes = [gene_names[0], gene_names[3], gene_names[11]]
    with pytest.warns(UserWarning, match=rf"1 of 3 knocked-out genes are read in none of these cells "
                                         rf"\({gene_names[0]}\): .* exactly 0"):
        result = knockout_analysis(model(True), tokenizer, with_unmapped, PROTEINS, genes, chunk_size=10)
    effects = result.effects.set_index("gene")
    never = effects.loc[gene_names[0]]
    for column in ("mean_diff", "mean_abs_diff", "standardized_effect", "frac_changed", "frac_perturbed"):
        assert (never[column] == 0).all(), column
    assert (never["mean_knockout"] == never["mean_unperturbed"]).all()
    for rank in (3, 11):
        expressing = float((counts[:, rank] > 0).mean())
        assert 0 < expressing < 1
        assert (effects.loc[gene_names[rank], "frac_perturbed"] == expressing).all()
        assert (effects.loc[gene_names[rank], "frac_changed"] <= expressing).all()


def test_a_model_that_learnt_a_gene_set_knocks_out_within_it(tokenizer, gene_names, files):
    """The default model reads only the genes it learnt; its knock-out encodings re-added the others (every cell then
    looked changed, and a gene in no cell had an effect). A gene outside the set cannot be knocked out."""
    from modeling_sctranslator.gene_layout import GeneLayout

    with_unmapped, _, _ = files
    learnt = tokenizer.convert_genes_to_ids(gene_names[:20])  # the last 10 mapped genes: never learnt
    learner = model(True)
    learner.gene_layout = GeneLayout("set", sorted(learnt), "a test")
    genes = [gene_names[0], gene_names[3]]
    effects = quiet(knockout_analysis, learner, tokenizer, with_unmapped, PROTEINS, genes, chunk_size=10).effects
    never = effects.set_index("gene").loc[gene_names[0]]
    assert (never[["mean_abs_diff", "frac_changed"]] == 0).all().all()
    assert (effects.set_index("gene").loc[gene_names[3], "mean_abs_diff"] > 0).any()
    with pytest.raises(ValueError, match="not among the data's genes the model reads"):
        quiet(knockout_analysis, learner, tokenizer, with_unmapped, PROTEINS, [gene_names[25]], chunk_size=10)


def test_knock_outs_over_several_decoder_passes_say_their_scales_differ(tokenizer, gene_names, files):
    """Effects are differences of scaled predictions, and each pass is scaled within itself: said when there are
    several (max_proteins 4 here), not for one."""
    with_unmapped, _, _ = files
    many = ["CD4", "CD8A", "CD19", "PTPRC", "CD14", "MS4A1", "NCAM1"]
    with pytest.warns(UserWarning, match=r"7 proteins run in 2 decoder passes \(max_proteins=4\) and knock-out"):
        knockout_analysis(model(True), tokenizer, with_unmapped, many, gene_names[1:3], chunk_size=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        knockout_analysis(model(True), tokenizer, with_unmapped, PROTEINS, gene_names[1:3], chunk_size=10)
    assert not any("decoder passes" in str(w.message) for w in caught)


def test_a_gene_asked_for_under_two_names_is_knocked_out_once_and_the_table_names_the_gene_read(tokenizer,
                                                                                                 gene_names, files):
    """Knockout refused two names of one gene ("name the same gene twice") where attention merged them: both now
    analyse the gene once, under the name given first, and say so; the table's gene_read column gives the
    vocabulary's name of the gene each name reached (a mouse symbol, an alias: the gene whose column was zeroed)."""
    from interpretation.attention import locate_genes

    with_unmapped, _, _ = files
    other_name = gene_names[3].capitalize()  # NOC2L as a mouse symbol, Noc2l: one token
    assert other_name != gene_names[3]
    with pytest.warns(UserWarning, match=rf"1 of the genes asked for name a gene already asked for "
                                         rf"\('{other_name}' = '{gene_names[3]}'"):
        result = knockout_analysis(model(True), tokenizer, with_unmapped, PROTEINS,
                                   [gene_names[3], other_name, gene_names[11]], chunk_size=10)
    assert result.genes == [gene_names[3], gene_names[11]]
    effects = result.effects
    assert list(effects.columns[:3]) == ["gene", "gene_read", "protein"]
    assert set(effects["gene"]) == {gene_names[3], gene_names[11]}
    assert (effects.loc[effects["gene"] == gene_names[3], "gene_read"] == gene_names[3]).all()
    alone = quiet(knockout_analysis, model(True), tokenizer, with_unmapped, PROTEINS, [other_name], chunk_size=10)
    assert (alone.effects["gene_read"] == gene_names[3]).all() and (alone.effects["gene"] == other_name).all()
    numbers = ["mean_diff", "mean_abs_diff", "frac_perturbed"]
    np.testing.assert_allclose(alone.effects[numbers].to_numpy(),
                               effects.loc[effects["gene"] == gene_names[3], numbers].to_numpy(), atol=1e-6)
    with pytest.warns(UserWarning, match="name a gene already asked for"):  # attention: the same rule, one position
        assert locate_genes(tokenizer, [gene_names[3], other_name], gene_names, np.asarray(
            tokenizer.convert_genes_to_ids(gene_names))) == [3]
