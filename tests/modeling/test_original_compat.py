"""A converted original checkpoint reproduces the original implementation's outputs (golden fixtures)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel

from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from sctranslator.cli import main as cli_main

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def io_arrays(fixtures_dir):
    return dict(np.load(fixtures_dir / "original_small_io.npz"))


@pytest.fixture(scope="module")
def converted_dir(fixtures_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "small"
    assert cli_main(["convert-original", str(fixtures_dir / "original_small_model.pt"), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def model(converted_dir):
    loaded = AutoModel.from_pretrained(converted_dir)
    assert isinstance(loaded, SCTranslatorForProteinPrediction)
    return loaded.eval()


def test_a_folder_converted_without_id_tables_says_how_to_get_its_tokenizer(converted_dir, data_dir, tmp_path, capsys):
    """convert-original without --id-tables writes no tokenizer; predict then named three missing files and not the
    fix."""
    rna = data_dir / "eccite_ctcl_rna.h5ad"
    assert cli_main(["predict", "--model", str(converted_dir), "--rna", str(rna), "--proteins",
                     "CD4", "--out", str(tmp_path / "out.h5ad")]) == 2
    assert "convert again with --id-tables DIR" in capsys.readouterr().err


def run(model, io, cells=slice(None), masks=True, **kwargs):
    with torch.no_grad():
        return model(
            input_ids=torch.from_numpy(io["rna_ids"][cells]),
            input_values=torch.from_numpy(io["rna_values"][cells]),
            attention_mask=torch.from_numpy(io["rna_mask"][cells]) if masks else None,
            protein_ids=torch.from_numpy(io["protein_ids"][cells]),
            protein_attention_mask=torch.from_numpy(io["protein_mask"][cells]) if masks else None,
            **kwargs,
        )


def max_error(actual: torch.Tensor, expected: np.ndarray) -> float:
    return float(np.abs(actual.numpy() - expected).max())


def test_converted_folder_is_a_safetensors_model_with_inferred_config(converted_dir):
    files = {p.name for p in converted_dir.iterdir()}
    assert "model.safetensors" in files and "config.json" in files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    config = AutoConfig.from_pretrained(converted_dir)
    assert isinstance(config, SCTranslatorConfig)
    assert (config.hidden_size, config.num_attention_heads, config.attention_head_dim) == (32, 2, 64)
    assert (config.max_genes, config.max_proteins, config.translator_depth) == (64, 16, 2)
    assert config.nb_random_features == 266 and config.translator_dropout == pytest.approx(0.1)


def test_batched_forward_matches_original(model, io_arrays):
    out = run(model, io_arrays)
    assert out.predictions.shape == (3, 16)
    assert max_error(out.predictions, io_arrays["prediction"]) <= TOLERANCE
    assert max_error(out.encoder_last_hidden_state, io_arrays["encodings"]) <= TOLERANCE


def test_one_cell_at_a_time_matches_original(model, io_arrays):
    for cell in range(3):
        out = run(model, io_arrays, cells=slice(cell, cell + 1))
        assert out.predictions.shape == (1, 16)
        assert max_error(out.predictions[0], io_arrays["prediction_bs1"][cell]) <= TOLERANCE
        assert max_error(out.encoder_last_hidden_state[0], io_arrays["encodings_bs1"][cell]) <= TOLERANCE


def test_single_cell_given_as_1d_tensors_stays_2d(model, io_arrays):
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(io_arrays["rna_ids"][0]),
            input_values=torch.from_numpy(io_arrays["rna_values"][0]),
            protein_ids=torch.from_numpy(io_arrays["protein_ids"][0]),
        )
    assert out.predictions.shape == (1, 16)


def test_masks_matter_as_in_the_original(model, io_arrays):
    out = run(model, io_arrays, masks=False)
    assert max_error(out.predictions, io_arrays["prediction_nomask"]) <= TOLERANCE
    assert float(np.abs(io_arrays["prediction_nomask"] - io_arrays["prediction"]).max()) > 1e-3


def test_intermediates_match_original(model, io_arrays, fixtures_dir):
    expected = np.load(fixtures_dir / "original_small_intermediates.npz")
    out = run(model, io_arrays, output_hidden_states=True)
    assert max_error(out.encoder_hidden_states[0], expected["enc_embedded"]) <= TOLERANCE
    assert max_error(out.encoder_last_hidden_state, expected["enc_performer_out"]) <= TOLERANCE
    assert max_error(out.translator_output, expected["translator_out_bnd"]) <= TOLERANCE
    assert max_error(out.translator_output.transpose(1, 2), expected["translator_out_bdn"]) <= TOLERANCE
    assert max_error(out.decoder_hidden_states[0], expected["dec_embedded"]) <= TOLERANCE
    assert max_error(out.decoder_last_hidden_state, expected["dec_performer_out"]) <= TOLERANCE


def test_shorter_inputs_are_padded_like_the_original_tokenizer(model, io_arrays):
    """Cell 2 has 54 genes, cell 1 has 12 proteins: giving only those must equal the padded original."""
    with torch.no_grad():
        genes_only = model(
            input_ids=torch.from_numpy(io_arrays["rna_ids"][2:3, :54]),
            input_values=torch.from_numpy(io_arrays["rna_values"][2:3, :54]),
            protein_ids=torch.from_numpy(io_arrays["protein_ids"][2:3]),
        )
        proteins_only = model(
            input_ids=torch.from_numpy(io_arrays["rna_ids"][1:2]),
            input_values=torch.from_numpy(io_arrays["rna_values"][1:2]),
            protein_ids=torch.from_numpy(io_arrays["protein_ids"][1:2, :12]),
        )
    assert genes_only.predictions.shape == (1, 16) and proteins_only.predictions.shape == (1, 12)
    assert max_error(genes_only.predictions[0], io_arrays["prediction_bs1"][2]) <= TOLERANCE
    assert max_error(proteins_only.predictions[0], io_arrays["prediction_bs1"][1, :12]) <= TOLERANCE


def test_plain_state_dict_converts_to_the_same_model(fixtures_dir, converted_dir, tmp_path):
    out = tmp_path / "from_state_dict"
    assert cli_main(["convert-original", str(fixtures_dir / "original_small_state_dict.pt"), "--out", str(out)]) == 0
    a = AutoModel.from_pretrained(converted_dir).state_dict()
    b = AutoModel.from_pretrained(out).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_convert_refuses_hgnc_without_the_id_tables(fixtures_dir, tmp_path, capsys):
    """--hgnc bundled without --id-tables was ignored in silence (no tokenizer is written to rank names for)."""
    code = cli_main(["convert-original", str(fixtures_dir / "original_small_model.pt"), "--out", str(tmp_path / "m"),
                     "--hgnc", "bundled"])
    assert code == 2 and "only --id-tables DIR writes" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    # review: 'NONE' is 'none' (any case), as the option reads it
    assert cli_main(["convert-original", str(fixtures_dir / "original_small_model.pt"), "--out", str(tmp_path / "m"),
                     "--hgnc", "NONE"]) == 0


def test_convert_refuses_to_overwrite_an_existing_folder(fixtures_dir, converted_dir, capsys):
    before = sorted(p.name for p in converted_dir.iterdir())
    code = cli_main(["convert-original", str(fixtures_dir / "original_small_model.pt"), "--out", str(converted_dir)])
    assert code == 2
    assert "already holds files" in capsys.readouterr().err
    assert sorted(p.name for p in converted_dir.iterdir()) == before


def test_convert_overwrite_replaces_an_earlier_conversion_and_nothing_else(fixtures_dir, tmp_path, capsys):
    """`convert-original CKPT --out . --overwrite` in a project folder deleted everything in it."""
    checkpoint = str(fixtures_dir / "original_small_model.pt")
    out = tmp_path / "converted"
    assert cli_main(["convert-original", checkpoint, "--out", str(out)]) == 0
    assert cli_main(["convert-original", checkpoint, "--out", str(out), "--overwrite"]) == 0  # its own files
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # as open() gives, not 0600
    (out / "analysis.ipynb").write_text("{}")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert cli_main(["convert-original", checkpoint, "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "holds 'analysis.ipynb', which this command does not write" in err and "nothing was replaced" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name != "converted"] == []  # no staging folder left behind


def test_shared_padding_reproduces_the_original_on_a_padded_cell(model, io_arrays):
    """Cell 2 has 54 of 64 genes: padding computed once (the default) and the plain path both give the
    original's numbers."""
    from modeling_sctranslator.modeling_sctranslator import shared_padding_length

    ids, values, mask = (torch.from_numpy(io_arrays[k][2:3]) for k in ("rna_ids", "rna_values", "rna_mask"))
    assert shared_padding_length(ids, values, mask, model.config) == 55
    try:
        for shared in (True, False):
            model.use_shared_padding = shared
            out = run(model, io_arrays, cells=slice(2, 3))
            assert max_error(out.predictions[0], io_arrays["prediction_bs1"][2]) <= TOLERANCE
            assert max_error(out.encoder_last_hidden_state[0], io_arrays["encodings_bs1"][2]) <= TOLERANCE
    finally:
        del model.use_shared_padding
