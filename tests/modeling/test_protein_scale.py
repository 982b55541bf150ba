"""The protein scale part: what the tokenizer hands it, the inverse of the per-cell scaling, isolation from the
scaled predictions, and log1p-count outputs from ``predict_proteins`` / the CLI."""

from __future__ import annotations

import json
import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from modeling_sctranslator.inference import predict_proteins
from modeling_sctranslator.modeling_sctranslator import unscale
from sctranslator.cli import main as cli_main
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

from ..conftest import TINY_MODEL

GENES = ["CD4", "CD8A", "PTPRC", "MS4A1", "CD14", "NotAGene"]
PROTEINS = ["CD3", "CD4", "CD8", "CD19", "CD14"]


@pytest.fixture(scope="module")
def tokenizer(vocab_dir):
    return SCTranslatorTokenizer.from_original_tables(vocab_dir, max_length=64, protein_max_length=8,
                                                      rna_transform="log1p_cp10k")


def _counts(seed=0, n=7):
    rng = np.random.default_rng(seed)
    rna = rng.poisson(1.5, (n, len(GENES))).astype(np.float64)
    rna[0] = [0, 0, 4, 0, 0, 9]  # one detected mapped gene; the unmapped column still counts in the library
    adt = rng.poisson(20, (n, len(PROTEINS))).astype(np.float64)
    return rna, adt


def test_cell_covariates_are_what_the_rna_scaling_removes(tokenizer):
    rna, _ = _counts()
    dense = tokenizer(rna=rna, gene_names=GENES, return_cell_scale=True)["cell_covariates"].numpy()
    sparse = tokenizer(rna=sp.csr_matrix(rna), gene_names=GENES, return_cell_scale=True)["cell_covariates"].numpy()
    expressed = tokenizer(rna=rna, gene_names=GENES, return_cell_scale=True, encoder_inputs="expressed",
                          padding="longest")["cell_covariates"].numpy()
    np.testing.assert_array_equal(dense, sparse)
    np.testing.assert_array_equal(dense, expressed)  # the same cell, however its genes are encoded
    mapped = rna[:, :5]
    log_cp10k = np.log1p(mapped / rna.sum(axis=1, keepdims=True) * 1e4)
    expected = np.stack([np.log1p(rna.sum(axis=1)), np.log1p((mapped > 0).sum(axis=1)), log_cp10k.min(axis=1),
                         log_cp10k.max(axis=1)], axis=1)
    np.testing.assert_allclose(dense, expected, rtol=1e-6)
    assert dense[0, 1] == pytest.approx(np.log(2))
    assert "cell_covariates" not in tokenizer(rna=rna, gene_names=GENES)  # only when asked for


def test_scaled_labels_and_bounds_invert_to_the_log1p_values(tokenizer):
    rna, adt = _counts()
    adt[2, :] = np.nan  # nothing measured: no bounds
    adt[3, 1] = np.nan
    log_values = np.log1p(adt)
    encoded = tokenizer(rna=rna, gene_names=GENES, proteins=PROTEINS, protein_values=log_values,
                        return_cell_scale=True, padding="longest")
    bounds = encoded["protein_scale_labels"]
    assert torch.isnan(bounds[2]).all() and torch.isfinite(bounds[[0, 1, 3]]).all()
    np.testing.assert_allclose(bounds[3].numpy(), [np.nanmin(log_values[3]), np.nanmax(log_values[3])], rtol=1e-6)
    back = unscale(encoded["labels"].double(), bounds.double()).numpy()
    np.testing.assert_allclose(back, log_values, rtol=1e-6, atol=1e-6)  # NaN stays NaN


def _pair(seed=0):
    """The same weights with and without the scale part."""
    torch.manual_seed(seed)
    config = dict(TINY_MODEL, translator_type="cross_attention", max_genes=64, max_proteins=8)
    with_part = SCTranslatorForProteinPrediction(SCTranslatorConfig(**config, predict_protein_scale=True)).eval()
    without = SCTranslatorForProteinPrediction(SCTranslatorConfig(**config)).eval()
    missing, unexpected = without.load_state_dict(with_part.state_dict(), strict=False)
    assert missing == [] and all(k.startswith("scale_head.") for k in unexpected)
    return with_part, without


def test_the_part_leaves_scaled_predictions_alone_and_learns_only_itself(tokenizer):
    with_part, without = _pair()
    rna, adt = _counts()
    encoded = tokenizer(rna=rna, gene_names=GENES, proteins=PROTEINS, protein_values=np.log1p(adt),
                        return_cell_scale=True, padding="longest", encoder_inputs="expressed")
    with torch.no_grad():
        a, b = with_part(**encoded), without(**encoded)
    assert torch.equal(a.predictions, b.predictions)
    assert a.protein_scale.shape == (7, 2) and (a.protein_scale[:, 1] >= a.protein_scale[:, 0]).all()
    torch.testing.assert_close(a.log1p_predictions, unscale(a.predictions, a.protein_scale))
    torch.testing.assert_close(a.loss, b.loss + a.scale_loss)  # scale_loss_weight 1

    with_part.train()
    with_part(**encoded).scale_loss.backward()
    for name, parameter in with_part.named_parameters():
        reached = parameter.grad is not None and bool(parameter.grad.abs().sum() > 0)
        assert reached == name.startswith("scale_head."), name

    with pytest.raises(ValueError, match=r"cell_covariates must be \(batch, 4\)"):
        with_part(**{**encoded, "cell_covariates": encoded["cell_covariates"][:, :3]})
    without_covariates = {k: v for k, v in encoded.items() if k not in ("cell_covariates", "protein_scale_labels")}
    assert with_part(**without_covariates).log1p_predictions is None  # attention maps, knock-outs: scaled only


def test_the_part_learns_a_scale_that_the_covariates_carry():
    """Bounds that follow the library size: a few hundred steps of the head alone bring the loss far down."""
    torch.manual_seed(0)
    model = SCTranslatorForProteinPrediction(SCTranslatorConfig(**TINY_MODEL, translator_type="cross_attention",
                                                                predict_protein_scale=True))
    head = model.scale_head
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    n, d = 64, model.config.hidden_size
    library = torch.rand(n) * 4 + 6
    covariates = torch.stack([library, torch.full((n,), 7.0), torch.zeros(n), torch.full((n,), 5.0)], dim=1)
    target = torch.stack([library * 0.1, library * 0.6 - 1], dim=1)
    states, mask = torch.randn(n, 5, d), torch.ones(n, 5, dtype=torch.bool)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(head(states, mask, states, mask, covariates), target)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.05 * losses[0], (losses[0], losses[-1])


@pytest.fixture(scope="module")
def scale_model_dir(tmp_path_factory, tokenizer):
    with_part, _ = _pair(1)
    folder = tmp_path_factory.mktemp("scale_model") / "model"
    with_part.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_predictions_come_in_log1p_counts_and_say_so(scale_model_dir, tokenizer, tmp_path):
    model = SCTranslatorForProteinPrediction.from_pretrained(scale_model_dir)
    rna, adt = _counts(seed=2, n=9)
    rna_data = ad.AnnData(rna.astype(np.float32))
    rna_data.var_names = GENES
    rna_data.obs_names = [f"c{i}" for i in range(9)]
    proteins = ad.AnnData(adt.astype(np.float32), obs=rna_data.obs.copy())
    proteins.var_names = PROTEINS
    result = predict_proteins(model, tokenizer, rna_data, proteins, batch_size=4, chunk_size=5)
    info = result.uns["sctranslator"]
    assert info["output_scale"] == "log1p_counts" and "log1p protein counts" in info["scale"]
    np.testing.assert_allclose(result.layers["measured"], np.log1p(adt), rtol=1e-6)
    assert result.layers["scaled"].shape == result.X.shape == (9, 5)
    encoded = tokenizer(rna=rna, gene_names=GENES, proteins=PROTEINS, return_cell_scale=True, padding="longest",
                        encoder_inputs="expressed")
    with torch.no_grad():
        direct = model(**encoded)
    np.testing.assert_allclose(result.X, direct.log1p_predictions.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.layers["scaled"], direct.predictions.numpy(), rtol=1e-5, atol=1e-5)

    rna_data.write_h5ad(tmp_path / "rna.h5ad")
    proteins.write_h5ad(tmp_path / "adt.h5ad")
    assert cli_main(["evaluate", "--model", str(scale_model_dir), "--rna", str(tmp_path / "rna.h5ad"), "--protein",
                     str(tmp_path / "adt.h5ad"), "--json", str(tmp_path / "m.json"), "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["scale"] == "log1p_counts"
    assert set(metrics["per_cell_scaled"]) >= {"pearson_per_protein_mean", "mse"}


def test_models_without_the_part_keep_the_scaled_output(tiny_model_dir, data_dir):
    model = SCTranslatorForProteinPrediction.from_pretrained(tiny_model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(tiny_model_dir)
    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:4].copy()
    with pytest.warns(UserWarning):
        result = predict_proteins(model, tokenizer, rna, ["CD4", "CD19"])
    assert result.uns["sctranslator"]["output_scale"] == "per_cell_scaled" and "scaled" not in result.layers


def test_the_part_leaves_every_other_weight_as_the_same_seed_draws_it():
    """Training with and without the part starts from the same weights, so the two can be compared (benchmarks/
    quality.py --scale_head); building the part used to shift every later draw of the seed."""
    config = dict(TINY_MODEL, translator_type="cross_attention", max_genes=64, max_proteins=8)
    torch.manual_seed(0)
    without = SCTranslatorForProteinPrediction(SCTranslatorConfig(**config)).state_dict()
    torch.manual_seed(0)
    with_part = SCTranslatorForProteinPrediction(SCTranslatorConfig(**config, predict_protein_scale=True)).state_dict()
    for name, value in without.items():
        torch.testing.assert_close(with_part[name], value, rtol=0, atol=0, msg=name)


MANY_PROTEINS = ["CD3E", "CD4", "CD8A", "CD19", "CD14", "MS4A1", "PTPRC", "NCAM1", "IL2RA", "FCGR3A", "ITGAM"]


def test_a_request_longer_than_the_decoder_is_one_panel_in_any_order(scale_model_dir, tokenizer):
    """11 proteins, max_proteins 6: two passes. They were cut in the order given and each pass scaled within
    itself, so reordering the names moved predictions (0.7 log1p on CPTAC's 8,065 proteins) and a cell's scaled
    values were no affine map of its log1p ones."""
    model = SCTranslatorForProteinPrediction.from_pretrained(scale_model_dir)
    rna, _ = _counts(seed=3, n=8)
    rna_data = ad.AnnData(rna.astype(np.float32))
    rna_data.var_names = GENES
    forward = predict_proteins(model, tokenizer, rna_data, MANY_PROTEINS, protein_context="none")
    backward = predict_proteins(model, tokenizer, rna_data, MANY_PROTEINS[::-1], protein_context="none")
    assert len(set(forward.var["token_id"])) == 11 > model.config.max_proteins
    backward = backward[:, forward.var_names]
    np.testing.assert_array_equal(backward.X, forward.X)
    np.testing.assert_array_equal(backward.layers["scaled"], forward.layers["scaled"])

    # each pass is the proteins of its ids' rank, predicted as they would be asked alone
    by_id = forward.var.sort_values("token_id").index
    for names in (list(by_id[:6]), list(by_id[6:])):
        alone = predict_proteins(model, tokenizer, rna_data, names, protein_context="none")
        np.testing.assert_allclose(forward[:, names].X, alone.X, rtol=1e-6, atol=1e-6)

    # one scale for the whole request: per cell, scaled = a + b * log1p
    scaled, log1p = forward.layers["scaled"].astype(np.float64), forward.X.astype(np.float64)
    for cell in range(len(log1p)):
        design = np.c_[log1p[cell], np.ones(11)]
        fitted = design @ np.linalg.lstsq(design, scaled[cell], rcond=None)[0]
        np.testing.assert_allclose(fitted, scaled[cell], atol=1e-5)
    assert scaled.min() > -0.5 and scaled.max() < 1.5 and np.ptp(scaled, axis=1).min() > 0.5


def test_a_model_without_the_part_warns_that_passes_have_their_own_scales(tiny_model_dir, data_dir):
    model = SCTranslatorForProteinPrediction.from_pretrained(tiny_model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(tiny_model_dir)
    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:4].copy()
    with pytest.warns(UserWarning, match=r"11 proteins run in 2 decoder passes \(max_proteins=6\)"):
        predict_proteins(model, tokenizer, rna, MANY_PROTEINS, protein_context="none")
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        predict_proteins(model, tokenizer, rna, MANY_PROTEINS[:6], protein_context="none")
    assert shown and not any("decoder passes" in str(w.message) for w in shown)  # one pass: nothing to say
