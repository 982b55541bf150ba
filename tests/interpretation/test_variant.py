"""Attention maps and knockout for the cross-attention variant (expressed genes, order-invariant)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from interpretation import (
    attention_analysis,
    attention_maps,
    knockout_analysis,
    knockout_encoding,
)
from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from modeling_sctranslator.inference import predict_proteins
from sctranslator.cli import main as cli_main

from ..conftest import TINY_MODEL
from ._variant import N_GENES, PROTEINS, counts_matrix, variant

TOLERANCE = 1e-5



@pytest.fixture(scope="module")
def cells(gene_names):
    rna = ad.AnnData(X=sp.csr_matrix(counts_matrix(24)), var=pd.DataFrame(index=gene_names))
    rna.obs_names = [f"cell{i}" for i in range(rna.n_obs)]
    rna.obs["half"] = np.where(np.arange(rna.n_obs) < 12, "a", "b")
    return rna


def permuted(rna: ad.AnnData, seed: int = 3) -> ad.AnnData:
    order = np.random.default_rng(seed).permutation(rna.n_vars)
    return rna[:, order].copy()


def quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


# --------------------------------------------------------------------------- knockout
@pytest.mark.parametrize("zero_genes", [0, 3])
def test_knockout_encoding_equals_tokenizing_without_the_gene(cells, tokenizer, gene_names, zero_genes):
    dense = cells.X.toarray()
    cell_max = gene_names[int(np.bincount(dense.argmax(1)).argmax())]
    some_zeros = gene_names[int(np.argmax((dense == 0).sum(0) * (dense.sum(0) > 0)))]
    for max_length in (TINY_MODEL["max_genes"], 12):  # 12 < expressed genes: the tokenizer's cap applies
        for gene in (cell_max, some_zeros, gene_names[0], gene_names[7]):
            ours = quiet(knockout_encoding, tokenizer, cells, gene, max_length, encoder_inputs="expressed",
                         expressed_zero_genes=zero_genes)
            reference = quiet(tokenizer, rna=cells[:, cells.var_names != gene], max_length=max_length,
                              padding="longest", encoder_inputs="expressed", expressed_zero_genes=zero_genes)
            for key in ("input_ids", "input_values", "attention_mask"):
                assert torch.equal(ours[key], reference[key]), (gene, max_length, key)


def test_knockout_effects_are_predictions_on_the_data_without_the_gene(cells, tokenizer, gene_names):
    model = variant()
    genes = [gene_names[3], gene_names[0], gene_names[11]]  # gene_names[0] is in no cell: no effect
    result = quiet(knockout_analysis, model, tokenizer, cells, PROTEINS, genes, groupby="half", chunk_size=10,
                   batch_size=3)
    base = quiet(predict_proteins, model, tokenizer, cells, PROTEINS).X.astype(np.float64)
    for gene in genes:
        knocked = quiet(predict_proteins, model, tokenizer, cells[:, cells.var_names != gene], PROTEINS).X
        expected = (knocked - base).mean(0)
        np.testing.assert_allclose(result.matrix("mean_diff").loc[gene].to_numpy(), expected, atol=1e-6)
    expressed = (cells.X.toarray() > 0).mean(0)
    perturbed = result.effects[result.effects["group"] == "all"].groupby("gene")["frac_perturbed"].first()
    assert perturbed[gene_names[0]] == 0 and np.all(result.matrix("mean_diff").loc[gene_names[0]] == 0)
    assert perturbed[gene_names[3]] >= expressed[3] > 0  # cells expressing it (+ cells whose scaling changed)
    assert set(result.groups) == {"all", "a", "b"}


# --------------------------------------------------------------------------- attention, one batch
@pytest.mark.parametrize("masking", ["masked", "exact"])
def test_attention_rows_sum_to_one_over_the_cells_genes_and_padding_gets_none(masking):
    model = variant(masking, vocab_size=500)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 500, (3, 20), generator=g)
    values = torch.rand(3, 20, generator=g)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[0, 12:] = False
    mask[1, 5:] = False
    proteins = torch.randint(1, 500, (3, 4), generator=g)
    maps = attention_maps(model, ids, values, mask, proteins)
    enc, cross = maps["encoder"], maps["encoder_to_decoder"]  # (3, 20, 20), (3, 20, 4)
    real = mask.float()
    torch.testing.assert_close(enc.sum(-1), real, atol=1e-5, rtol=0)  # rows of real genes sum to 1
    torch.testing.assert_close(cross.sum(1), torch.ones(3, 4), atol=1e-5, rtol=0)  # each protein: 1 over genes
    assert torch.all(enc[~mask] == 0) and torch.all(enc.transpose(1, 2)[~mask] == 0) and torch.all(cross[~mask] == 0)
    torch.testing.assert_close(maps["decoder"].sum(-1), torch.ones(3, 4), atol=1e-5, rtol=0)
    with torch.no_grad():  # the weights the layers applied (masked: the FAVOR+ approximation, not exact softmax)
        out = model(input_ids=ids, input_values=values, attention_mask=mask, protein_ids=proteins,
                    output_attentions=True)
    applied = torch.stack([a.mean(1) for a in out.encoder_attentions]).mean(0) * real[:, :, None]
    torch.testing.assert_close(enc, applied, atol=1e-6, rtol=1e-5)
    translator = model.translator  # the cross-attention by hand: softmax(q·kᵀ/√d) over real genes, head mean
    with torch.no_grad():
        q = translator.attention.to_q(translator.query_norm(model.decoder.gene_embedding(proteins)))
        k = translator.attention.to_k(translator.context_norm(out.encoder_last_hidden_state))
    heads, width = model.config.num_attention_heads, model.config.attention_head_dim
    scores = torch.einsum("bphd,bghd->bhpg", q.view(3, 4, heads, width), k.view(3, 20, heads, width)) / width**0.5
    by_hand = scores.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1).mean(1)
    torch.testing.assert_close(cross, by_hand.transpose(1, 2), atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------- attention over cells
def brute_force_sums(model, tokenizer, rna, genes):
    """Per-cell maps (one cell per pass, no padding) added into gene-indexed sums by hand."""
    encoded = quiet(tokenizer, rna=rna, proteins=PROTEINS, padding="longest", encoder_inputs="expressed")
    index = {int(t): i for i, t in enumerate(tokenizer.convert_genes_to_ids(genes))}
    enc, cross, counts = np.zeros((len(genes),) * 2), np.zeros((len(genes), 4)), np.zeros(len(genes))
    for c in range(rna.n_obs):
        n = int(encoded["attention_mask"][c].sum())
        maps = attention_maps(model, encoded["input_ids"][c : c + 1, :n], encoded["input_values"][c : c + 1, :n],
                              protein_ids=encoded["protein_ids"][c : c + 1])
        where = [(p, index[int(t)]) for p, t in enumerate(encoded["input_ids"][c, :n].tolist()) if int(t) in index]
        pos, idx = [p for p, _ in where], [i for _, i in where]
        enc[np.ix_(idx, idx)] += maps["encoder"][0][pos][:, pos].double().numpy()
        cross[idx] += maps["encoder_to_decoder"][0][pos].double().numpy()
        counts[idx] += 1
    return enc, cross, counts


def test_maps_are_summed_by_gene_over_the_cells_that_express_it(cells, tokenizer, gene_names):
    model = variant()
    listed = [gene_names[i] for i in (0, 2, 5, 9, 14, 20)]  # gene_names[0]: expressed in no cell
    with pytest.warns(UserWarning, match=r"no cell's encoding.*" + listed[0]):
        result = attention_analysis(model, tokenizer, cells, PROTEINS, genes=listed, chunk_size=7, batch_size=3)
    assert result.recipe == "cross_attention" and result.genes == listed
    enc, cross, counts = brute_force_sums(model, tokenizer, cells, listed)
    np.testing.assert_allclose(result.sums["encoder"], enc, atol=TOLERANCE)
    np.testing.assert_allclose(result.sums["encoder_to_decoder"], cross, atol=TOLERANCE)
    np.testing.assert_array_equal(result.gene_cell_counts, counts)
    dense = cells.X.toarray()[:, [gene_names.index(g) for g in listed]] > 0
    np.testing.assert_array_equal(result.pair_cell_counts, dense.T.astype(float) @ dense)
    mean = result.mean("encoder_to_decoder")
    assert np.all(np.isnan(mean[0])) and np.allclose(mean[1:], cross[1:] / counts[1:, None])
    assert listed[0] not in result.ranked_genes("CD4").index
    adata = result.to_anndata()
    assert adata.uns["sctranslator_attention"]["recipe"] == "cross_attention"
    np.testing.assert_array_equal(adata.obs["n_cells_present"].to_numpy(), counts)


def test_permuting_gene_order_leaves_attention_and_knockout_unchanged(cells, tokenizer, gene_names):
    model = variant()
    shuffled = permuted(cells)
    maps = [quiet(attention_analysis, model, tokenizer, rna, PROTEINS, chunk_size=9, batch_size=4)
            for rna in (cells, shuffled)]
    assert sorted(maps[0].genes) == sorted(maps[1].genes) and len(maps[0].genes) == N_GENES - 1  # all expressed
    order = [maps[1].genes.index(g) for g in maps[0].genes]
    for name in ("encoder", "decoder", "encoder_to_decoder"):
        theirs = maps[1].sums[name] if name == "decoder" else maps[1].sums[name][order]
        if name == "encoder":
            theirs = theirs[:, order]
        np.testing.assert_allclose(theirs, maps[0].sums[name], atol=TOLERANCE, rtol=0)
    genes = [gene_names[i] for i in (2, 5, 30)]
    effects = [quiet(knockout_analysis, model, tokenizer, rna, PROTEINS, genes, chunk_size=9).effects
               for rna in (cells, shuffled)]
    numbers = effects[0].select_dtypes("number").columns
    np.testing.assert_allclose(effects[1][numbers].to_numpy(), effects[0][numbers].to_numpy(), atol=TOLERANCE)


def test_recipes_are_checked_against_the_translator(cells, tokenizer):
    with pytest.raises(ValueError, match="cross_attention"):
        attention_analysis(variant(), tokenizer, cells, PROTEINS, genes="top-3", recipe="original")
    mlp = SCTranslatorForProteinPrediction(SCTranslatorConfig(**TINY_MODEL)).eval()
    with pytest.raises(ValueError, match="needs the cross-attention variant"):
        attention_analysis(mlp, tokenizer, cells, PROTEINS, genes="top-3", recipe="cross_attention")


# --------------------------------------------------------------------------- a learned dependence
def test_knockout_and_cross_attention_find_the_gene_driving_a_protein(tokenizer, gene_names):
    """CD4 = the scaled expression of one gene, absent (0) in the ~20 % of cells that do not express it.

    The gene is column 17: no position matters in the variant. Knocking it out lowers CD4, and CD4's
    cross-attention puts it first (both checked with 3 training seeds while writing this test).
    """
    driver = 17
    rna = ad.AnnData(X=sp.csr_matrix(counts_matrix(300, seed=1, driver=driver)), var=pd.DataFrame(index=gene_names))
    encoded = quiet(tokenizer, rna=rna, proteins=PROTEINS, padding="longest", encoder_inputs="expressed")
    driver_token = tokenizer.convert_genes_to_ids(gene_names[driver])
    own = torch.where(encoded["input_ids"] == driver_token, encoded["input_values"], 0.0).sum(1)
    labels = torch.stack([own, torch.full_like(own, 0.5), torch.full_like(own, 0.3), torch.full_like(own, 0.2)], 1)
    model = variant(max_proteins=4, nb_random_features=16, feature_redraw_interval=None, translator_dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    generator = torch.Generator().manual_seed(0)
    inputs = {k: encoded[k] for k in ("input_ids", "input_values", "attention_mask", "protein_ids")}
    for _ in range(200):
        idx = torch.randint(0, rna.n_obs, (32,), generator=generator)
        loss = model(**{k: v[idx] for k, v in inputs.items()}, labels=labels[idx]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(**inputs).predictions[:, 0]
    assert np.corrcoef(predicted.numpy(), own.numpy())[0, 1] > 0.95  # it learned the dependence
    held_out = rna[:100].copy()
    tested = gene_names[10:30]
    result = quiet(knockout_analysis, model, tokenizer, held_out, PROTEINS, tested)
    assert result.matrix("mean_abs_diff")["CD4"].idxmax() == gene_names[driver]
    assert result.matrix("standardized_effect")["CD4"][gene_names[driver]] < 0
    maps = quiet(attention_analysis, model, tokenizer, held_out, PROTEINS, genes=tested)
    assert maps.ranked_genes("CD4").index[0] == gene_names[driver]


# --------------------------------------------------------------------------- command line
def test_cli_attention_and_knockout_run_on_a_variant_folder(cells, tokenizer, tmp_path, capsys):
    folder = tmp_path / "variant"
    variant().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    path = tmp_path / "cells.h5ad"
    cells.write_h5ad(path)
    common = ["--model", str(folder), "--rna", str(path), "--proteins", ",".join(PROTEINS), "--device", "cpu",
              "--chunk-size", "10"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli_main(["attention", *common, "--genes", "top-8", "--out", str(tmp_path / "attention")]) == 0
        assert cli_main(["knockout", *common, "--genes", ",".join(cells.var_names[[2, 5]]), "--groupby", "half",
                         "--out", str(tmp_path / "knockout")]) == 0
    assert "cross_attention recipe" in capsys.readouterr().out
    cross = pd.read_csv(tmp_path / "attention" / "encoder_to_decoder_mean.csv", index_col=0)
    assert cross.shape == (8, 4) and np.isfinite(cross.to_numpy()).all()
    adata = ad.read_h5ad(tmp_path / "attention" / "attention.h5ad")
    assert adata.uns["sctranslator_attention"]["recipe"] == "cross_attention" and "n_cells_present" in adata.obs
    assert adata.uns["sctranslator_attention"]["model"] == str(folder)  # which model made the maps, as predict says
    assert len((tmp_path / "attention" / "ranked_genes" / "CD4.rnk").read_text().splitlines()) == 8
    effects = pd.read_csv(tmp_path / "knockout" / "knockout_effects.csv")
    assert set(effects["group"]) == {"all", "a", "b"} and effects["gene"].nunique() == 2
    assert (tmp_path / "knockout" / "knockout_standardized_effect.png").is_file()
    assert cli_main(["attention", *common, "--recipe", "original", "--out", str(tmp_path / "x")]) == 2
    assert "cross_attention" in capsys.readouterr().err
