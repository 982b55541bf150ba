"""CLI runs on 200 real cells (eccite) with a small random model; knockout encodings; bad input."""

from __future__ import annotations

import argparse
import time
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from interpretation import knockout_analysis, knockout_encoding
from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from sctranslator.interpretation_commands import add_interpretation_commands
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

MAX_GENES = 2000
PROTEINS = "CD4,CD8A,CD19,CD3E,PTPRC,MS4A1,CD14,NCAM1"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, vocab_dir):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("interp_model") / "small"
    config = SCTranslatorConfig(
        vocab_size=85500, hidden_size=16, num_attention_heads=2, attention_head_dim=8, num_encoder_layers=1,
        num_decoder_layers=1, max_genes=MAX_GENES, max_proteins=16, nb_random_features=16,
    )
    SCTranslatorForProteinPrediction(config).save_pretrained(folder)
    SCTranslatorTokenizer.from_original_tables(vocab_dir, max_length=MAX_GENES, protein_max_length=16).save_pretrained(
        folder
    )
    return folder


@pytest.fixture(scope="module")
def cells(data_dir, tmp_path_factory):
    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:200].copy()
    rna.obs["half"] = np.where(np.arange(rna.n_obs) < 100, "first", "second")
    path = tmp_path_factory.mktemp("interp_cells") / "rna.h5ad"
    rna.write_h5ad(path)
    return rna, path


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="sctranslator")
    add_interpretation_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return args.func(args)


def test_knockout_cli_20_genes_on_200_cells(model_dir, cells, tmp_path, vocab_dir):
    from modeling_sctranslator.inference import reading_layout

    rna, path = cells
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    # the file maps more genes than the model's 2,000 positions: it reads the most expressed ones
    layout = reading_layout(SCTranslatorForProteinPrediction.from_pretrained(model_dir), tokenizer, rna, None)
    read = [str(g) for g in tokenizer.convert_ids_to_genes(layout.token_ids)]
    markers = [g for g in ("CD4", "CD8A", "CD3E", "MS4A1", "LYZ", "CD14", "NKG7", "GNLY", "IL7R", "S100A8")
               if g in read]
    spread = [g for g in (read[i] for i in np.linspace(0, len(read) - 1, 30).astype(int)) if g not in markers]
    genes = ",".join(markers + spread[: 20 - len(markers)])
    started = time.perf_counter()
    code = run_cli(["knockout", "--model", str(model_dir), "--rna", str(path), "--proteins", PROTEINS,
                    "--genes", genes, "--out", str(tmp_path), "--groupby", "half", "--device", "cpu",
                    "--batch-size", "50", "--chunk-size", "100"])
    print(f"knockout CLI: {time.perf_counter() - started:.1f} s")
    assert code == 0
    effects = pd.read_csv(tmp_path / "knockout_effects.csv")
    assert set(effects["group"]) == {"all", "first", "second"}
    assert effects["gene"].nunique() == 20 and effects["protein"].nunique() == 8
    assert (effects.loc[effects["group"] == "all", "n_cells"] == 200).all()
    wide = pd.read_csv(tmp_path / "knockout_standardized_effect.csv", index_col=0)
    assert wide.shape == (20, 8)
    for name in ("knockout_standardized_effect.png", "knockout_standardized_effect_first.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_attention_cli_top_500_on_200_cells(model_dir, cells, tmp_path):
    _, path = cells
    started = time.perf_counter()
    code = run_cli(["attention", "--model", str(model_dir), "--rna", str(path), "--proteins", PROTEINS,
                    "--genes", "top-500", "--out", str(tmp_path), "--device", "cpu", "--batch-size", "8",
                    "--table-format", "both"])
    print(f"attention CLI: {time.perf_counter() - started:.1f} s")
    assert code == 0
    cross = pd.read_csv(tmp_path / "encoder_to_decoder_sum.csv", index_col=0)
    assert cross.shape == (500, 8)
    assert pd.read_parquet(tmp_path / "encoder_normalized.parquet").shape == (500, 500)
    adata = ad.read_h5ad(tmp_path / "attention.h5ad")
    assert adata.shape == (500, 8) and adata.obsm["encoder_sum"].shape == (500, 500)
    assert adata.varm["decoder_mean"].shape == (8, 8)
    assert np.all(np.diff(adata.obs["attention_received"].to_numpy()) <= 0)  # top-K in decreasing order
    rnk = (tmp_path / "ranked_genes" / "CD4.rnk").read_text().splitlines()
    assert len(rnk) == 500 and len(rnk[0].split("\t")) == 2
    assert len((tmp_path / "ranked_genes" / "CD4.txt").read_text().splitlines()) == 100
    for name in ("encoder", "decoder", "encoder_to_decoder"):
        assert (tmp_path / f"{name}_normalized.png").is_file()


def test_knockout_encoding_equals_tokenizing_without_the_column(cells, vocab_dir):
    rna, _ = cells
    tokenizer = SCTranslatorTokenizer.from_original_tables(vocab_dir, max_length=MAX_GENES)
    subset = rna[:30]
    mapped = tokenizer.resolve(list(subset.var_names)).columns
    winner = subset.var_names[int(np.bincount(subset.X.toarray().argmax(1)).argmax())]  # a cell maximum
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for gene in (subset.var_names[mapped[3]], "CD4", winner, subset.var_names[mapped[15000]]):
            ours = knockout_encoding(tokenizer, subset, gene, MAX_GENES)
            reference = tokenizer(rna=subset[:, subset.var_names != gene], max_length=MAX_GENES)
            for key in ("input_ids", "input_values", "attention_mask"):
                assert torch.equal(ours[key], reference[key]), (gene, key)


def test_unknown_knockout_genes_are_listed(model_dir, cells, tmp_path):
    rna, path = cells
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"NOTAGENE1.*NOTAGENE2") as error:
            knockout_analysis(model, tokenizer, rna[:5], ["CD4"], ["CD4", "NOTAGENE1", "NOTAGENE2"])
    assert "vocabulary" in str(error.value)
    # in the vocabulary but not a column of the data
    with pytest.raises(ValueError, match="not among the data.s genes the model reads.*CD4"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            knockout_analysis(model, tokenizer, rna[:5, rna.var_names != "CD4"], ["CD4"], ["CD4"])
    with pytest.raises(ValueError, match="NOTAGENE"):
        run_cli(["knockout", "--model", str(model_dir), "--rna", str(path), "--proteins", "CD4",
                 "--genes", "NOTAGENE", "--out", str(tmp_path / "x"), "--device", "cpu"])
