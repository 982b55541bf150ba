"""The cross-attention variant: order- and padding-invariant, expressed genes only, selected by one config field."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoModel, pipeline

from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from modeling_sctranslator.inference import predict_proteins
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

from ..conftest import run_without_our_packages

TINY = dict(
    hidden_size=16, num_attention_heads=2, attention_head_dim=8, num_encoder_layers=2, num_decoder_layers=1,
    max_genes=64, max_proteins=6, nb_random_features=12,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def variant(masking: str | None = None, **overrides) -> SCTranslatorForProteinPrediction:
    torch.manual_seed(0)
    config = SCTranslatorConfig(**{**TINY, "vocab_size": 500, **overrides}, translator_type="cross_attention",
                                attention_masking=masking)
    return SCTranslatorForProteinPrediction(config).eval()


def batch(genes: int = 30, proteins: int = 9, cells: int = 3):
    g = torch.Generator().manual_seed(1)
    return dict(
        input_ids=torch.randint(1, 500, (cells, genes), generator=g),
        input_values=torch.rand(cells, genes, generator=g),
        protein_ids=torch.randint(1, 500, (cells, proteins), generator=g),
    )


def predict(model, **inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).predictions


# --------------------------------------------------------------------------- config
def test_one_field_selects_the_variant_and_the_default_stays_the_original():
    original = SCTranslatorConfig()
    assert (original.translator_type, original.encoder_inputs, original.attention_masking) == (
        "mlp", "all_genes", "original")
    assert original.pads_to_fixed_length
    config = SCTranslatorConfig(translator_type="cross_attention")
    assert (config.encoder_inputs, config.attention_masking, config.expressed_zero_genes) == ("expressed", "masked", 0)
    assert not config.pads_to_fixed_length
    with pytest.raises(ValueError, match="encoder_inputs"):
        SCTranslatorConfig(encoder_inputs="expressed")  # the MLP needs fixed positions
    with pytest.raises(ValueError, match="translator_type"):
        SCTranslatorConfig(translator_type="lstm")
    with pytest.raises(ValueError, match="attention_masking"):
        SCTranslatorConfig(attention_masking="sometimes")
    model = SCTranslatorForProteinPrediction(SCTranslatorConfig(**TINY, translator_type="cross_attention"))
    assert type(model.translator).__name__ == "CrossAttentionTranslator"
    assert (original.sctranslator_format, config.sctranslator_format) == (1, 2)  # old readers refuse the variant


# --------------------------------------------------------------------------- invariances (acceptance 1)
@pytest.mark.parametrize("masking", ["masked", "exact"])
def test_permuting_genes_and_adding_padding_leave_predictions_unchanged(masking):
    model = variant(masking)
    inputs = batch()
    reference = predict(model, **inputs)
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(2))
    permuted = predict(model, input_ids=inputs["input_ids"][:, perm], input_values=inputs["input_values"][:, perm],
                       protein_ids=inputs["protein_ids"])
    torch.testing.assert_close(permuted, reference, atol=1e-5, rtol=0)

    def pad(x, n, value):
        return torch.nn.functional.pad(x, (0, n), value=value)

    ones = torch.ones(3, 30, dtype=torch.bool)
    padded = predict(
        model,
        input_ids=pad(inputs["input_ids"], 70, 7),  # garbage under the mask must not matter either
        input_values=pad(inputs["input_values"], 70, 0.5),
        attention_mask=pad(ones, 70, False),
        protein_ids=pad(inputs["protein_ids"], 4, 3),
        protein_attention_mask=pad(torch.ones(3, 9, dtype=torch.bool), 4, False),
    )
    torch.testing.assert_close(padded[:, :9], reference, atol=1e-5, rtol=0)
    # a cell alone equals the cell in a batch padded to a longer neighbour
    short = predict(model, input_ids=inputs["input_ids"][:1, :12], input_values=inputs["input_values"][:1, :12],
                    protein_ids=inputs["protein_ids"][:1])
    mask = torch.zeros(3, 30, dtype=torch.bool)
    mask[0, :12] = True
    mask[1:] = True
    mixed = predict(model, **inputs, attention_mask=mask)
    torch.testing.assert_close(mixed[:1], short, atol=1e-5, rtol=0)


def test_any_number_of_genes_and_proteins_and_empty_cells():
    model = variant()
    inputs = batch(genes=200, proteins=20)  # > max_genes (64), > max_proteins (6)
    out = model(**inputs)
    assert out.predictions.shape == (3, 20) and out.encoder_last_hidden_state.shape == (3, 200, 16)
    empty = predict(model, **inputs, attention_mask=torch.zeros(3, 200, dtype=torch.bool))
    assert torch.isfinite(empty).all()
    model.train()
    loss = model(**inputs, attention_mask=torch.zeros(3, 200, dtype=torch.bool), labels=torch.rand(3, 20)).loss
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_masked_attention_weights_ignore_padding():
    model = variant("masked")
    inputs = batch(genes=10, cells=1)
    mask = torch.ones(1, 10, dtype=torch.bool)
    mask[0, 7:] = False
    with torch.no_grad():
        weights = model(**inputs, attention_mask=mask, output_attentions=True).encoder_attentions[0]
    assert torch.all(weights[..., 7:] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))


def test_cross_attentions_are_each_proteins_weights_over_the_cells_genes():
    model = variant()
    inputs = batch(genes=10, proteins=4, cells=2)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 6:] = False
    with torch.no_grad():
        (weights,) = model(**inputs, attention_mask=mask, output_attentions=True).cross_attentions
        plain = model(**inputs, attention_mask=mask)
    assert weights.shape == (2, TINY["num_attention_heads"], 4, 10)
    assert torch.all(weights[1, ..., 6:] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, TINY["num_attention_heads"], 4))
    order = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        (permuted,) = model(**{k: (v[:, order] if k.startswith("input") else v) for k, v in inputs.items()},
                            attention_mask=mask[:, order], output_attentions=True).cross_attentions
    torch.testing.assert_close(permuted, weights[..., order])  # weights follow the genes, not positions
    assert plain.cross_attentions is None
    assert SCTranslatorForProteinPrediction(SCTranslatorConfig(**TINY, vocab_size=500))(
        **batch(genes=64, proteins=6, cells=1), output_attentions=True).cross_attentions is None


# --------------------------------------------------------------------------- tokenizer
def synthetic_cells(n_cells=12, n_genes=300, seed=0):
    """Counts over names that map one-to-one (no duplicate tokens), so permuting columns permutes tokens."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.4, size=(n_cells, n_genes)).astype(np.float32)
    counts[3] = 0  # an empty cell
    return counts


@pytest.fixture(scope="module")
def tokenizer(vocab_dir):
    return SCTranslatorTokenizer.from_original_tables(vocab_dir, max_length=TINY["max_genes"],
                                                      protein_max_length=TINY["max_proteins"])


@pytest.fixture(scope="module")
def gene_names(tokenizer):
    names = list(tokenizer.vocab.token_names().values())[1000:1600]
    report = tokenizer.resolve(names, "gene")
    kept = [report.names[i] for i in report.columns]
    return kept[:300]


def test_expressed_encoding_keeps_nonzero_genes_with_the_original_scale(tokenizer, gene_names):
    counts = synthetic_cells()
    with pytest.warns(UserWarning, match="constant"):
        full = tokenizer(rna=counts, gene_names=gene_names, max_length=300, return_tensors="np")
        expressed = tokenizer(rna=counts, gene_names=gene_names, max_length=300, encoder_inputs="expressed",
                              padding="longest", return_tensors="np")
    n_expressed = (counts > 0).sum(1)
    assert expressed["input_ids"].shape == (12, n_expressed.max())
    np.testing.assert_array_equal(expressed["attention_mask"].sum(1), n_expressed)
    for i in range(12):
        value_of = dict(zip(full["input_ids"][i], full["input_values"][i], strict=True))
        m = expressed["attention_mask"][i]
        assert [value_of[t] for t in expressed["input_ids"][i][m]] == list(expressed["input_values"][i][m])
    with pytest.warns(UserWarning, match="constant"):
        with_zeros = tokenizer(rna=counts, gene_names=gene_names, max_length=300, encoder_inputs="expressed",
                               expressed_zero_genes=5, padding="longest", return_tensors="np")
    np.testing.assert_array_equal(with_zeros["attention_mask"].sum(1), n_expressed + 5)
    assert np.allclose(with_zeros["input_values"][0][n_expressed[0]: n_expressed[0] + 5], 1e-8)
    capped = tokenizer(rna=counts[:3], gene_names=gene_names, max_length=20, encoder_inputs="expressed",
                       padding="longest", return_tensors="np")
    assert capped["input_ids"].shape == (3, 20)  # the highest values are kept
    assert capped["input_values"][0].min() >= np.sort(expressed["input_values"][0])[-20] - 1e-7


def test_tokenizer_setting_round_trips(tokenizer, tmp_path):
    tok = SCTranslatorTokenizer(vocab=tokenizer.vocab, encoder_inputs="expressed", expressed_zero_genes=3,
                                padding="longest")
    tok.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["encoder_inputs"] == "expressed" and saved["expressed_zero_genes"] == 3
    again = SCTranslatorTokenizer.from_pretrained(tmp_path)
    assert (again.encoder_inputs, again.expressed_zero_genes) == ("expressed", 3)
    with pytest.raises(ValueError, match="encoder_inputs"):
        SCTranslatorTokenizer(vocab=tokenizer.vocab, encoder_inputs="some")


# --------------------------------------------------------------------------- end to end, saving, pipeline
@pytest.fixture(scope="module")
def variant_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("variant") / "model"
    torch.manual_seed(0)
    SCTranslatorForProteinPrediction(SCTranslatorConfig(**TINY, translator_type="cross_attention",
                                                        expressed_zero_genes=4)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)  # an "all_genes" tokenizer: predict_proteins follows the model config
    return folder


PROTEINS = ["CD4", "CD8A", "CD19", "CD3E", "PTPRC", "MS4A1", "CD14", "ITGAM"]  # 8 > max_proteins


def test_predict_proteins_is_invariant_to_gene_order_and_batching(variant_dir, gene_names):
    model = AutoModel.from_pretrained(variant_dir)
    assert type(model.translator).__name__ == "CrossAttentionTranslator"
    tok = SCTranslatorTokenizer.from_pretrained(variant_dir)
    counts = synthetic_cells()
    with pytest.warns(UserWarning):
        reference = predict_proteins(model, tok, (counts, gene_names), PROTEINS, batch_size=5).X
        perm = np.random.default_rng(1).permutation(len(gene_names))
        permuted = predict_proteins(model, tok, (counts[:, perm], [gene_names[i] for i in perm]), PROTEINS,
                                    batch_size=3, chunk_size=7).X
        one_by_one = predict_proteins(model, tok, (counts, gene_names), PROTEINS, batch_size=1).X
    assert reference.shape == (12, 8) and np.isfinite(reference).all()
    np.testing.assert_allclose(permuted, reference, atol=1e-5, rtol=0)
    np.testing.assert_allclose(one_by_one, reference, atol=1e-5, rtol=0)


def test_pipeline_and_remote_code_load_the_variant(variant_dir, gene_names, tmp_path):
    import anndata as ad
    import pandas as pd

    counts = synthetic_cells()
    adata = ad.AnnData(counts, var=pd.DataFrame(index=gene_names))
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    predictor = pipeline("protein-prediction", model=str(variant_dir), device="cpu")
    with pytest.warns(UserWarning):
        expected = predictor(adata, proteins=PROTEINS[:2]).X
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("modeling_sctranslator", "tokenization", "training"):
            sys.modules[name] = None
        import anndata, numpy, torch
        torch.set_num_threads(1)
        from transformers import AutoModel, AutoTokenizer
        model = AutoModel.from_pretrained({str(variant_dir)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        tokenizer = AutoTokenizer.from_pretrained({str(variant_dir)!r}, trust_remote_code=True)
        rna = anndata.read_h5ad({str(path)!r})
        batch = tokenizer(rna=rna, proteins=["CD4", "CD8A"], encoder_inputs="expressed", expressed_zero_genes=4,
                          padding="longest")
        with torch.no_grad():
            out = model(**{{k: v for k, v in batch.items() if k != "labels"}}).predictions
        numpy.save({str(tmp_path / "out.npy")!r}, out.numpy())
        """
    )
    run_without_our_packages(script, tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-5)


# --------------------------------------------------------------------------- training (acceptance 3)
def test_length_bucketing_sorts_windows_and_resumes_exactly():
    from training.data import LengthBucketedStream, bucketed_skip

    examples = [{"example_id": i, "rna_indices": list(range((i * 37) % 23))} for i in range(50)]
    stream = list(LengthBucketedStream(examples, window=12, batch_size=4, seed=1))
    assert sorted(e["example_id"] for e in stream) == list(range(50))
    for start in range(0, 48, 4):
        lengths = [len(e["rna_indices"]) for e in stream[start: start + 4]]
        window = [len(e["rna_indices"]) for e in examples[start // 12 * 12: start // 12 * 12 + 12]]
        assert max(lengths) - min(lengths) <= max(window) - min(window)
    aligned, rest = bucketed_skip(20, 12)
    resumed = list(LengthBucketedStream(examples[aligned:], 12, 4, seed=1, first_index=aligned, skip=rest))
    assert [e["example_id"] for e in resumed] == [e["example_id"] for e in stream[20:]]


def test_run_stage_trains_the_variant_end_to_end(tmp_path, data_dir, vocab_dir):
    from training.run_stage import main

    out = tmp_path / "out"
    summary = main([
        "--stage", "finetune", "--corpora", str(data_dir / "eccite_ctcl"), "--vocab_dir", str(vocab_dir),
        "--corpus_cache_dir", str(tmp_path / "corpora"), "--max_cells_per_corpus", "60",
        "--output_dir", str(out), "--max_steps", "12", "--per_device_train_batch_size", "4",
        "--learning_rate", "3e-3", "--logging_steps", "2", "--save_steps", "100", "--max_eval_samples", "8",
        "--translator_type", "cross_attention", "--expressed_zero_genes", "8", "--length_bucket_batches", "2",
        "--hidden_size", "16", "--num_attention_heads", "2", "--attention_head_dim", "8",
        "--num_encoder_layers", "1", "--num_decoder_layers", "1", "--nb_random_features", "8",
        "--use_cpu", "true", "--report_to", "none", "--disable_tqdm", "true", "--dataloader_pin_memory", "false",
    ])
    losses = [loss for _, loss in summary["loss_history"]]
    assert summary["global_step"] == 12 and np.isfinite(losses).all()
    assert np.mean(losses[-2:]) < np.mean(losses[:2]), losses
    config = json.loads((out / "config.json").read_text())
    assert (config["translator_type"], config["encoder_inputs"], config["expressed_zero_genes"]) == (
        "cross_attention", "expressed", 8)
    saved_tokenizer = json.loads((out / "preprocessor_config.json").read_text())
    assert saved_tokenizer["encoder_inputs"] == "expressed" and saved_tokenizer["padding"] == "longest"
    model = AutoModel.from_pretrained(out)
    assert not model.config.pads_to_fixed_length


def test_the_key_maximum_is_taken_over_real_keys_only():
    """Padded keys holding large garbage must not change the real keys' features: a maximum taken over the
    padding would push every real feature down to ``eps`` (far beyond the invariance test's tolerance)."""
    from modeling_sctranslator.favor_attention import gaussian_orthogonal_random_matrix, masked_softmax_kernel_features

    generator = torch.Generator().manual_seed(0)
    projection = gaussian_orthogonal_random_matrix(12, 8, generator=generator)
    keys = torch.randn(2, 2, 5, 8, generator=generator)  # (batch, heads, length, head_dim)
    garbage = torch.full((2, 2, 3, 8), 40.0)
    mask = torch.tensor([[True] * 5 + [False] * 3] * 2)
    alone = masked_softmax_kernel_features(keys, projection, False, 1e-4, torch.ones(2, 5, dtype=torch.bool))
    padded = masked_softmax_kernel_features(torch.cat([keys, garbage], dim=2), projection, False, 1e-4, mask)
    torch.testing.assert_close(padded[:, :, :5], alone, rtol=1e-6, atol=0)
