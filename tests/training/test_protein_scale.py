"""The protein scale part in training: count corpora teach it, other corpora do not, its loss is logged on its
own, and it leaves the scaled predictions exactly as the model learns them without it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from modeling_sctranslator import SCTranslatorForProteinPrediction
from modeling_sctranslator.inference import warn_if_emulated
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
from training.corpus import load_manifest
from training.data import CorpusCollator, EvalCells
from training.run_stage import main

from ._training_helpers import QUIET, TINY_MODEL


def test_collator_gives_scale_labels_for_count_corpora_only(corpora, tokenizer):
    manifests = [load_manifest(corpora["tenx_pbmc10k_s200"]), load_manifest(corpora["tcga_brca_bulk"])]
    assert [m["protein_values_kind"] for m in manifests][0] == "counts"
    collator = CorpusCollator(tokenizer, manifests, 128, 160, cell_scale=True)
    cells = [EvalCells(m, i, max_cells=3)[j] for i, m in enumerate(manifests) for j in range(3)]
    batch = collator(cells)
    bounds, covariates = batch["protein_scale_labels"].numpy(), batch["cell_covariates"].numpy()
    assert covariates.shape == (6, 4) and np.isfinite(covariates).all()
    counts, bulk = bounds[:3], bounds[3:]
    assert np.isfinite(counts).all() and (counts[:, 1] > counts[:, 0]).all()
    assert np.isnan(bulk).all()  # RPPA values are not counts: no target for a part that predicts log1p counts
    # the bounds are those the labels were scaled between: log1p of the cell's ADT counts over the panel
    first = cells[0]
    keep = collator.corpora[0]["keep"]
    values = np.log1p(np.asarray(first["protein_values"], dtype=np.float64)[keep])
    np.testing.assert_allclose(counts[0], [values.min(), values.max()], rtol=1e-6)
    plain = CorpusCollator(tokenizer, manifests, 128, 160)(cells)
    assert "cell_covariates" not in plain and "protein_scale_labels" not in plain
    torch.testing.assert_close(plain["labels"], batch["labels"], equal_nan=True)


def _finetune(out, start, corpus, *extra):
    return main(["--stage", "finetune", "--model_name_or_path", str(start), "--corpora", str(corpus),
                 "--output_dir", str(out), "--max_steps", "16", "--logging_steps", "4", "--save_steps", "100",
                 "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--eval_strategy", "no",
                 "--seed", "3", *extra, *QUIET])


@pytest.fixture(scope="module")
def start_model(tmp_path_factory, corpora, vocab_dir):
    """A tiny model without the scale part, trained a few steps on counts (the start of both fine-tunes)."""
    out = tmp_path_factory.mktemp("scale") / "start"
    main(["--stage", "sc", "--corpora", str(corpora["tenx_pbmc10k_s200"]), "--vocab_dir", str(vocab_dir),
          "--output_dir", str(out), "--max_steps", "4", "--per_device_train_batch_size", "4", "--eval_strategy",
          "no", "--save_steps", "100", "--stop_on_cosine", "false", *TINY_MODEL, *QUIET])
    return out


def test_adding_the_part_leaves_the_scaled_predictions_exactly_as_without(tmp_path, corpora, start_model):
    corpus = corpora["eccite"]
    with_part = _finetune(tmp_path / "with", start_model, corpus, "--predict_protein_scale", "true")
    without = _finetune(tmp_path / "without", start_model, corpus)
    model_a = SCTranslatorForProteinPrediction.from_pretrained(tmp_path / "with")
    model_b = SCTranslatorForProteinPrediction.from_pretrained(tmp_path / "without")
    assert model_a.config.predict_protein_scale and model_a.scale_head is not None
    assert not model_b.config.predict_protein_scale and model_b.scale_head is None
    assert json.loads((tmp_path / "with" / "config.json").read_text())["sctranslator_format"] == 3

    # the part's loss is logged on its own, and training lowered it
    logged = [loss for _, loss in with_part["scale_loss_history"]]
    assert len(logged) >= 3 and logged[-1] < logged[0], logged
    assert without["scale_loss_history"] == []
    assert "eval_scale_loss" in with_part["eval"] and "eval_scale_loss" not in without["eval"]
    # the test cells scored on the model's output, log1p counts, too (the card gave only per-cell scaled metrics)
    log1p_r = with_part["eval"]["eval_log1p_pearson_per_protein_mean"]
    assert -1 <= log1p_r <= 1 and "eval_log1p_pearson_per_protein_mean" not in without["eval"]
    card = (tmp_path / "with" / "README.md").read_text()
    assert f"| eccite | log1p_pearson_per_protein_mean | {log1p_r:.4f} |" in card
    assert "log1p_pearson" not in (tmp_path / "without" / "README.md").read_text()
    assert "| log1p |" not in card  # the row is the set's, not a set named by the metric's prefix

    tokenizer = SCTranslatorTokenizer.from_pretrained(tmp_path / "with")
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, (6, 5)).astype(float)
    encoded = tokenizer(rna=counts, gene_names=["CD4", "CD8A", "PTPRC", "MS4A1", "CD14"], proteins=["CD3", "CD4"],
                        max_length=128, protein_max_length=160, return_cell_scale=True)
    model_a.eval(), model_b.eval()
    with torch.no_grad():
        a, b = model_a(**encoded), model_b(**encoded)
    assert torch.equal(a.predictions, b.predictions)  # its gradients never reach the rest of the model
    assert a.log1p_predictions is not None and b.log1p_predictions is None
    assert torch.isfinite(a.log1p_predictions).all()


def test_the_part_can_be_left_out_when_fine_tuning(tmp_path, corpora, start_model):
    tuned = tmp_path / "tuned"
    _finetune(tuned, start_model, corpora["eccite"], "--predict_protein_scale", "true", "--max_steps", "2")
    _finetune(tmp_path / "again", tuned, corpora["eccite"], "--predict_protein_scale", "false", "--max_steps", "2")
    model = SCTranslatorForProteinPrediction.from_pretrained(tmp_path / "again")
    assert model.scale_head is None and model.config.sctranslator_format == 1


def test_a_part_with_no_counts_to_learn_from_is_left_out(tmp_path, corpora, start_model, caplog):
    """Fine-tuned on RPPA, the part learnt nothing (no labels) yet the model gave the new panel in the log1p-count
    units of the panels it learnt before (a CPTAC fine-tune: X 3.5-5.3 for log2 ratios, still 'log1p counts')."""
    tuned = tmp_path / "tuned"
    _finetune(tuned, start_model, corpora["eccite"], "--predict_protein_scale", "true", "--max_steps", "2")
    with caplog.at_level("WARNING", logger="training.run_stage"):
        _finetune(tmp_path / "rppa", tuned, corpora["tcga_brca_bulk"], "--max_steps", "2")
    assert "none of these corpora holds protein counts" in caplog.text
    model = SCTranslatorForProteinPrediction.from_pretrained(tmp_path / "rppa")
    assert model.scale_head is None and not model.config.predict_protein_scale
    with pytest.raises(SystemExit, match="none of these corpora holds protein counts"):
        _finetune(tmp_path / "asked", tuned, corpora["tcga_brca_bulk"], "--predict_protein_scale", "true",
                  "--max_steps", "2")
    main(["--stage", "finetune", "--model_name_or_path", str(tuned), "--corpora", str(corpora["eccite"]),
          str(corpora["tcga_brca_bulk"]), "--output_dir", str(tmp_path / "mixed"), "--max_steps", "2",
          "--per_device_train_batch_size", "4", "--eval_strategy", "no", "--save_steps", "100", *QUIET])
    assert SCTranslatorForProteinPrediction.from_pretrained(tmp_path / "mixed").scale_head is not None  # counts too



def test_refitting_the_head_learns_bounds_that_validate_better(tokenizer):
    """On cells whose bounds follow their pooled inputs and whose scaled predictions are good, the refit finds
    a head whose log1p-count predictions validate better than the untrained one, and keeps that one."""
    from modeling_sctranslator import SCTranslatorConfig
    from training.scale_head_refit import HeadInputs, refit_scale_head

    config = SCTranslatorConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, max_genes=32,
                                max_proteins=8, predict_protein_scale=True)
    model = SCTranslatorForProteinPrediction(config)
    generator = torch.Generator().manual_seed(0)

    def cells(n):
        pooled = torch.randn(n, 2 * 16 + 4, generator=generator)
        low = 1.0 + pooled[:, :1].clamp(-1, 1)
        high = low + 4.0 + 2.0 * pooled[:, 1:2].tanh()
        labels = torch.rand(n, 8, generator=generator)
        predictions = labels + 0.05 * torch.randn(n, 8, generator=generator)
        return HeadInputs(pooled, torch.cat([low, high], dim=1), predictions, labels)

    train, validation = cells(400), cells(100)
    before = model.scale_head.state_dict()["output.bias"].clone()
    fit = refit_scale_head(model, [train], [validation], steps=300)
    assert fit["chosen_step"] > 0 and fit["train_cells"] == 400
    assert fit["validation_log1p_pearson_after"] > fit["validation_log1p_pearson_before"] + 0.1, fit
    assert not torch.equal(model.scale_head.state_dict()["output.bias"], before)
    with torch.no_grad():
        assert validation.log1p_pearson(model.scale_head.bounds(validation.pooled)) == pytest.approx(
            fit["validation_log1p_pearson_after"], abs=1e-6)


def test_refitting_the_head_in_a_fine_tune_keeps_the_scaled_predictions(tmp_path, data_dir, tokenizer, start_model):
    from training.corpus import build_corpus, find_source
    from training.scale_head_refit import collect_head_inputs

    corpus = tmp_path / "eccite_v"
    build_corpus(find_source(data_dir / "eccite"), corpus, tokenizer, num_shards=4, validation_fraction=0.2)
    refitted = _finetune(tmp_path / "refit", start_model, corpus, "--predict_protein_scale", "true",
                         "--refit_scale_head", "true", "--truncation", "first")
    plain = _finetune(tmp_path / "plain", start_model, corpus, "--predict_protein_scale", "true",
                      "--refit_scale_head", "false", "--truncation", "first")
    assert plain["scale_head_refit"] is None
    fit = refitted["scale_head_refit"]
    assert fit["train_cells"] > 0
    assert fit["validation_log1p_pearson_after"] >= fit["validation_log1p_pearson_before"]

    model_a = SCTranslatorForProteinPrediction.from_pretrained(tmp_path / "refit").eval()
    model_b = SCTranslatorForProteinPrediction.from_pretrained(tmp_path / "plain").eval()
    manifest = load_manifest(corpus)
    layout = model_a.gene_layout  # as run_stage encodes: aligned to the starting model's gene layout
    collator = CorpusCollator(tokenizer, [manifest], model_a.config.max_genes, model_a.config.max_proteins,
                              cell_scale=True, truncation="first", gene_layout=layout.token_ids if layout.ordered
                              else None)
    cells = EvalCells(manifest, 0, split="validation")
    a, b = collect_head_inputs(model_a, cells, collator), collect_head_inputs(model_b, cells, collator)
    assert torch.equal(a.predictions, b.predictions)  # only the head moved
    # the saved model carries the head that was chosen, and it scores on validation what the summary says
    with torch.no_grad():
        assert a.log1p_pearson(model_a.scale_head.bounds(a.pooled)) == pytest.approx(
            fit["validation_log1p_pearson_after"], abs=1e-5)
        assert b.log1p_pearson(model_b.scale_head.bounds(b.pooled)) == pytest.approx(
            fit["validation_log1p_pearson_before"], abs=1e-5)


def test_bf16_training_keeps_float32_weights_and_the_scale_part_in_float32(tmp_path, corpora, start_model,
                                                                           monkeypatch):
    """``--bf16 true`` (the Trainer's autocast, on CPU too): bfloat16 products, the model's precision-sensitive
    steps and the saved weights float32, a finite loss that still falls; on a CPU that emulates bfloat16
    (slower than float32) a warning says so before the run."""
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"architecture": "x86_64", "avx512_bf16": False})
    warn_if_emulated.cache_clear()
    try:
        with pytest.warns(UserWarning, match="bfloat16 was asked for, but this CPU has no bfloat16 matrix"):
            summary = _finetune(tmp_path / "bf16", start_model, corpora["tenx_pbmc10k_s200"],
                                "--predict_protein_scale", "true", "--bf16", "true")
    finally:
        warn_if_emulated.cache_clear()
    losses = [loss for _, loss in summary["loss_history"]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    model = SCTranslatorForProteinPrediction.from_pretrained(tmp_path / "bf16")
    assert all(p.dtype == torch.float32 for p in model.parameters())
