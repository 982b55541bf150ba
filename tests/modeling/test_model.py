"""Behaviour of SCTranslatorForProteinPrediction that users rely on (small configs, CPU)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction

from ..conftest import run_without_our_packages

SMALL = dict(
    vocab_size=500,
    hidden_size=16,
    num_attention_heads=2,
    attention_head_dim=8,
    num_encoder_layers=1,
    num_decoder_layers=1,
    max_genes=40,
    max_proteins=6,
    nb_random_features=12,
)


def small_model(**overrides) -> SCTranslatorForProteinPrediction:
    torch.manual_seed(0)
    return SCTranslatorForProteinPrediction(SCTranslatorConfig(**{**SMALL, **overrides}))


def random_batch(config: SCTranslatorConfig, batch: int = 3, genes: int | None = None, proteins: int | None = None):
    generator = torch.Generator().manual_seed(1)
    genes = genes or config.max_genes
    proteins = proteins or config.max_proteins
    return dict(
        input_ids=torch.randint(1, config.vocab_size, (batch, genes), generator=generator),
        input_values=torch.rand(batch, genes, generator=generator),
        protein_ids=torch.randint(1, config.vocab_size, (batch, proteins), generator=generator),
    )


def test_default_config_is_the_released_model():
    config = SCTranslatorConfig()
    assert (config.vocab_size, config.hidden_size, config.num_attention_heads, config.attention_head_dim) == (
        85500, 128, 8, 64)
    assert (config.num_encoder_layers, config.num_decoder_layers) == (2, 2)
    assert (config.max_genes, config.max_proteins, config.translator_depth) == (20000, 1000, 2)
    assert config.translator_widths == [20000, 4473, 1000]
    assert config.nb_random_features == 266 and config.feature_redraw_interval == 1000
    assert config.translator_dropout == 0.1


def test_config_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="hidden_size"):
        SCTranslatorConfig(hidden_size=0)
    with pytest.raises(ValueError, match="translator_dropout"):
        SCTranslatorConfig(translator_dropout=1.0)


def test_full_size_model_counts_like_the_original_and_round_trips_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    model = SCTranslatorForProteinPrediction(SCTranslatorConfig())
    # the original counts model.parameters(): the random features are buffers, not parameters
    assert sum(p.numel() for p in model.parameters()) == 117_411_371
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path)
    before, after = model.state_dict(), reloaded.state_dict()
    assert before.keys() == after.keys()
    assert any(k.endswith("projection_matrix") for k in after)
    for key in before:
        assert torch.equal(before[key], after[key]), key
    del model, reloaded


def test_projection_matrices_are_saved_and_not_reinitialised_on_load(tmp_path):
    model = small_model()
    model.save_pretrained(tmp_path)
    saved = load_file(str(tmp_path / "model.safetensors"))
    keys = [k for k in saved if k.endswith("attention.projection_matrix")]
    assert len(keys) == 2
    reloaded = AutoModel.from_pretrained(tmp_path)
    for key in keys:
        assert torch.equal(reloaded.state_dict()[key], saved[key])
    batch = random_batch(model.config)
    with torch.no_grad():
        # weights are bit-identical; BLAS may round differently on differently aligned memory
        torch.testing.assert_close(
            model.eval()(**batch).predictions, reloaded.eval()(**batch).predictions, atol=1e-6, rtol=0
        )


def test_remote_code_round_trip_without_our_package(tmp_path):
    """A saved folder is self-contained: it loads with trust_remote_code where we are not importable."""
    model = small_model().eval()
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_sctranslator.SCTranslatorConfig",
        "AutoModel": "modeling_sctranslator.SCTranslatorForProteinPrediction",
    }
    batch = random_batch(model.config)
    torch.save(batch, tmp_path / "batch.pt")
    with torch.no_grad():
        expected = model(**batch).predictions
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("modeling_sctranslator", "tokenization", "training"):
            sys.modules[name] = None  # any import of our package now fails
        try:
            import modeling_sctranslator  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("our package is still importable")
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        batch = torch.load({str(tmp_path / "batch.pt")!r}, weights_only=True)
        with torch.no_grad():
            torch.save(model(**batch).predictions, {str(tmp_path / "out.pt")!r})
        """
    )
    run_without_our_packages(script, tmp_path)
    torch.testing.assert_close(torch.load(tmp_path / "out.pt", weights_only=True), expected, atol=1e-6, rtol=0)


def test_predictions_are_2d_and_loss_is_masked_mse_ignoring_nan():
    model = small_model().eval()
    batch = random_batch(model.config, batch=2, proteins=4)
    labels = torch.rand(2, 4)
    labels[0, 1] = float("nan")
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    with torch.no_grad():
        out = model(**batch, protein_attention_mask=mask, labels=labels)
    assert out.predictions.shape == (2, 4)
    valid = mask & ~torch.isnan(labels)
    expected = ((out.predictions - labels)[valid] ** 2).mean()
    assert torch.allclose(out.loss, expected)
    assert torch.isfinite(out.loss)


def test_loss_with_no_valid_label_is_zero_not_nan():
    model = small_model()
    batch = random_batch(model.config, batch=1, proteins=3)
    out = model(**batch, labels=torch.full((1, 3), float("nan")))
    assert out.loss.item() == 0.0
    out.loss.backward()  # still part of the graph


def test_training_step_changes_weights_and_gradients_are_finite():
    model = small_model().train()
    batch = random_batch(model.config, batch=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    losses = []
    labels = torch.rand(4, model.config.max_proteins)
    for _ in range(30):
        optimizer.zero_grad()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5


def test_random_features_redraw_only_in_training_on_the_original_schedule():
    model = small_model(feature_redraw_interval=2)
    batch = random_batch(model.config, batch=1)
    first = model.encoder.layers[0].attention.projection_matrix.clone()
    model.eval()
    with torch.no_grad():
        for _ in range(5):
            model(**batch)
    assert torch.equal(model.encoder.layers[0].attention.projection_matrix, first)
    model.train()
    with torch.no_grad():
        model(**batch)
        model(**batch)  # counter reaches the interval
        assert torch.equal(model.encoder.layers[0].attention.projection_matrix, first)
        model(**batch)  # the (interval + 1)-th call redraws
    assert not torch.equal(model.encoder.layers[0].attention.projection_matrix, first)
    assert int(model.encoder.calls_since_last_redraw) == 0


def test_fixed_projections_never_redraw():
    model = small_model(feature_redraw_interval=1)
    model.fix_projection_matrices_()
    first = model.decoder.layers[0].attention.projection_matrix.clone()
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(**random_batch(model.config, batch=1))
    assert torch.equal(model.decoder.layers[0].attention.projection_matrix, first)
    assert model.config.feature_redraw_interval is None


def test_seeded_redraw_is_reproducible():
    a, b, c = small_model(), small_model(hidden_size=16), small_model()
    before = a.encoder.layers[0].attention.projection_matrix.clone()
    a.redraw_projection_matrices_(torch.Generator().manual_seed(3))
    b.redraw_projection_matrices_(torch.Generator().manual_seed(3))
    c.redraw_projection_matrices_(torch.Generator().manual_seed(4))
    after = a.encoder.layers[0].attention.projection_matrix
    assert not torch.equal(after, before)  # a redraw that does nothing would pass the equality below
    assert torch.equal(after, b.encoder.layers[0].attention.projection_matrix)
    assert not torch.equal(after, c.encoder.layers[0].attention.projection_matrix)


def test_output_attentions_rows_sum_to_one():
    model = small_model().eval()
    with torch.no_grad():
        out = model(**random_batch(model.config, batch=2), output_attentions=True)
    (enc,), (dec,) = out.encoder_attentions, out.decoder_attentions
    assert enc.shape == (2, 2, 40, 40) and dec.shape == (2, 2, 6, 6)
    assert torch.allclose(enc.sum(-1), torch.ones(2, 2, 40), atol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b.update(input_ids=torch.randint(1, 10, (3, 41)), input_values=torch.rand(3, 41)), "exceed"),
        (lambda b: b.update(protein_ids=torch.randint(1, 10, (3, 7))), "split the proteins"),
        (lambda b: b["input_ids"].__setitem__((0, 0), 500), r"ids must lie in \[0, 500\)"),
        (lambda b: b["input_values"].__setitem__((1, 3), float("nan")), "NaN"),
        (lambda b: b.update(protein_ids=b["protein_ids"][:2]), "3 cells but proteins for 2"),
        (lambda b: b.update(input_ids=b["input_ids"].float()), "integer token ids"),
    ],
)
def test_bad_inputs_get_clear_errors(change, message):
    model = small_model().eval()
    batch = random_batch(model.config)
    change(batch)
    with pytest.raises((ValueError, TypeError), match=message):
        model(**batch)


def test_predictions_do_not_depend_on_batch_composition():
    model = small_model().eval()
    batch = random_batch(model.config, batch=3)
    with torch.no_grad():
        together = model(**batch).predictions
        alone = model(**{k: v[1:2] for k, v in batch.items()}).predictions
    np.testing.assert_allclose(together[1:2].numpy(), alone.numpy(), atol=1e-6)


def test_input_embeddings_are_the_gene_embedding_and_resizing_names_the_reserved_ids():
    """get_input_embeddings and resize_token_embeddings raised transformers' bare NotImplementedError."""
    model = small_model()
    assert model.get_input_embeddings() is model.encoder.gene_embedding
    with pytest.raises(NotImplementedError, match=r"reserves its last 10,000 for new genes: add one with "
                                                  r"tokenizer.add_genes"):
        model.resize_token_embeddings(600)


def test_saving_again_in_shards_or_whole_leaves_only_the_new_weights(tmp_path):
    """Saved in shards into a folder holding model.safetensors, the folder kept that file beside the shards, and
    from_pretrained loaded the old weights."""
    model = small_model()
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        model.encoder.output_head.bias.add_(1.0)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    assert not (tmp_path / "model.safetensors").exists() and len(list(tmp_path.glob("model-*-of-*"))) > 1
    reloaded = SCTranslatorForProteinPrediction.from_pretrained(tmp_path)
    assert torch.equal(reloaded.encoder.output_head.bias, model.encoder.output_head.bias)
    with torch.no_grad():
        model.encoder.output_head.bias.add_(1.0)
    model.save_pretrained(tmp_path)  # whole again: the shards and their index go
    assert sorted(p.name for p in tmp_path.glob("model*safetensors*")) == ["model.safetensors"]
    assert not list(tmp_path.glob("model-*-of-*"))
    reloaded = SCTranslatorForProteinPrediction.from_pretrained(tmp_path)
    assert torch.equal(reloaded.encoder.output_head.bias, model.encoder.output_head.bias)
