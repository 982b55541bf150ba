"""The ``original`` recipe reproduces the original attention maps; ``corrected`` equals output_attentions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interpretation import attention_maps, minmax_normalize

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def original(fixtures_dir):
    from modeling_sctranslator.convert_original_checkpoint import load_original_model

    model = load_original_model(fixtures_dir / "original_small_model.pt")
    io = dict(np.load(fixtures_dir / "original_small_io.npz"))
    expected = dict(np.load(fixtures_dir / "original_small_attention.npz"))
    return model, io, expected


def inputs(io, cell):
    cells = slice(cell, cell + 1)
    return {
        "input_ids": torch.from_numpy(io["rna_ids"][cells]),
        "input_values": torch.from_numpy(io["rna_values"][cells]),
        "attention_mask": torch.from_numpy(io["rna_mask"][cells]),
        "protein_ids": torch.from_numpy(io["protein_ids"][cells]),
        "protein_attention_mask": torch.from_numpy(io["protein_mask"][cells]),
    }


@pytest.mark.parametrize("which", ["cell_index", "cell_index_extra"])
def test_original_recipe_matches_fixture(original, which):
    model, io, expected = original
    cell = int(expected[which])
    suffix = "" if which == "cell_index" else "_cell2"
    maps = attention_maps(model, **inputs(io, cell), recipe="original")
    for ours, theirs in (("encoder", "enc"), ("decoder", "dec"), ("encoder_to_decoder", "enc2dec")):
        error = float(np.abs(maps[ours][0].numpy() - expected[theirs + suffix]).max())
        assert error <= TOLERANCE, (ours, error)


def test_corrected_recipe_is_output_attentions_and_differs_from_original(original):
    model, io, expected = original
    batch = inputs(io, 2)
    maps = attention_maps(model, **batch, recipe="corrected")
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    enc = torch.stack([a.mean(1) for a in out.encoder_attentions]).mean(0)
    dec = torch.stack([a.mean(1) for a in out.decoder_attentions]).mean(0)
    torch.testing.assert_close(maps["encoder"], enc, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(maps["decoder"], dec, atol=1e-6, rtol=1e-5)
    assert float(np.abs(maps["encoder"][0].numpy() - expected["enc_cell2"]).max()) > 1e-3


def test_gene_subset_rows_equal_the_full_map(original):
    model, io, _ = original
    batch = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in (
        ("input_ids", io["rna_ids"]), ("input_values", io["rna_values"]), ("attention_mask", io["rna_mask"]),
        ("protein_ids", io["protein_ids"]), ("protein_attention_mask", io["protein_mask"]))}
    full = attention_maps(model, **batch, recipe="original")
    subset = [40, 3, 17]
    part = attention_maps(model, **batch, gene_positions=subset, recipe="original", row_block=2)
    torch.testing.assert_close(part["encoder"], full["encoder"][:, subset][:, :, subset])
    torch.testing.assert_close(part["encoder_to_decoder"], full["encoder_to_decoder"][:, subset])
    torch.testing.assert_close(full["encoder"].sum(-1), torch.ones(3, 64), atol=1e-5, rtol=0)


def test_minmax_normalize_is_columns_then_rows():
    m = np.array([[1.0, 10.0], [3.0, 30.0], [2.0, 50.0]])
    out = minmax_normalize(m)
    cols = (m - m.min(0)) / (m.max(0) - m.min(0))
    with np.errstate(invalid="ignore"):
        rows = (cols - cols.min(1, keepdims=True)) / (cols.max(1, keepdims=True) - cols.min(1, keepdims=True))
    np.testing.assert_allclose(out, np.nan_to_num(rows))
    assert np.all(minmax_normalize(np.ones((2, 2))) == 0)
