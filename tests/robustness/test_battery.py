"""The bad-input battery: every case through the Python API (pipeline) and the CLI (``sctranslator predict``).

Each case must end in a clear error naming the problem (exit status 2 and one line on the CLI, no
traceback), or in a documented, warned handling with finite predictions; an input file is never
modified. Cases tested elsewhere are listed in ``tests/robustness/README.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from transformers import AutoModel, pipeline

from sctranslator.cli import main as cli_main
from tokenization.tokenization_sctranslator import ConstantCellWarning, InputQualityWarning

PROTEINS = ["CD4", "CD19", "CD14"]


@pytest.fixture(scope="module")
def base_rna(data_dir):
    return ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:12].copy()


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    return pipeline("protein-prediction", model=str(tiny_model_dir), device="cpu")


def _dense(rna):
    return np.asarray(rna.X.toarray(), dtype=np.float32)


def _replace(rna, x):
    out = rna.copy()
    out.X = x
    return out


def _nan(rna):
    x = _dense(rna)
    x[2, 5] = np.nan
    return _replace(rna, x)


def _inf(sign):
    def make(rna):
        x = _dense(rna)
        x[1, 7] = sign * np.inf
        return _replace(rna, x)

    return make


def _negative(rna):
    x = _dense(rna)
    x[0, 3] = -2
    return _replace(rna, x)


def _log_normalised(rna):
    x = _dense(rna)
    x = np.log1p(x / np.maximum(x.sum(1, keepdims=True), 1) * 1e4)
    return _replace(rna, sp.csr_matrix(x))


def _cp10k(rna):
    x = _dense(rna)
    return _replace(rna, sp.csr_matrix(x / np.maximum(x.sum(1, keepdims=True), 1) * 1e4 + 0.5 * (x > 0)))


def _zero_cell(rna):
    x = _dense(rna)
    x[4] = 0
    return _replace(rna, sp.csr_matrix(x))


def _constant_cell(rna):
    x = _dense(rna)
    x[4] = 3
    return _replace(rna, sp.csr_matrix(x))


def _binarised(rna):
    return _replace(rna, sp.csr_matrix(_dense(rna) > 0))


def _renamed(names):
    def make(rna):
        out = rna[:, : len(names)].copy()
        out.var = out.var[[]]  # ECCITE's raw_name column (hg19_CD4) names the genes: its hint would answer every case
        out.var_names = names
        return out

    return make


def _duplicate_names(rna):
    out = rna[:, :200].copy()
    names = list(out.var_names)
    names[10] = names[11]
    out.var_names = names
    return out


MOUSE = ["Cd3g", "Cd8b1", "Gzma", "Ccl5", "Lck", "Zap70", "Itk", "Lat", "Cd247", "Tcf7", "Lef1", "Foxp3", "Il2ra",
         "Cd74", "Cd83", "Cd86", "Cd40", "Csf1r", "Itgax", "S100a8", "Cd3d", "Cd5l", "Cd9", "Cd36", "Cd38"]
HUMAN = ["CD4", "CD8A", "PTPRC", "CD19", "MS4A1", "CD14", "LYZ", "NKG7", "GZMB", "CD3E", "IL7R", "CCR7", "SELL",
         "CD79A", "CD79B", "FCGR3A", "ITGAM", "KLRD1", "CD2", "CD5", "CD6", "CD7", "CD27", "CD28", "CTLA4"]

# (case id, how to damage the cells, what must happen: ("error", pattern) or (warning class, pattern))
CASES = [
    ("nan", _nan, ("error", "NaN")),
    ("plus_inf", _inf(1), ("error", "NaN/inf")),
    ("minus_inf", _inf(-1), ("error", "NaN/inf")),
    ("negative", _negative, ("error", "negative values")),
    ("log_normalised", _log_normalised, (InputQualityWarning, "look log-normalised")),
    ("normalised_not_counts", _cp10k, (InputQualityWarning, "not integer counts")),
    ("all_zero_cell", _zero_cell, (ConstantCellWarning, "constant RNA")),
    ("constant_cell", _constant_cell, (ConstantCellWarning, "constant RNA")),
    ("empty", lambda rna: rna[:0].copy(), ("error", "no cells|empty")),
    ("single_cell", lambda rna: rna[:1].copy(), None),
    ("single_gene", lambda rna: rna[:, [list(rna.var_names).index("CD3E")]].copy(), None),
    ("duplicate_gene_names", _duplicate_names, (UserWarning, "repeat another column.s name.*only the first column")),
    ("no_gene_in_vocabulary", _renamed([f"NOTAGENE{i}" for i in range(30)]), ("error", "none of the 30 genes")),
    ("under_10_percent_mapped", _renamed(["CD4"] + [f"NOTAGENE{i}" for i in range(29)]),
     (InputQualityWarning, "only 3.3% of 30 genes")),
    ("mixed_species", _renamed(HUMAN + MOUSE), (InputQualityWarning, "mix of species")),
    # a matrix saved without gene names (R without dimnames): its numbers were read as Entrez ids (A1BG, A2M, ...)
    ("numbered_genes", _renamed([str(i + 1) for i in range(30)]), ("error", "names are the numbers 1..30")),
    ("binarised", _binarised, ("error", "True/False .*not counts")),  # was read as counts of 0/1
    # the original id tables have no human Ensembl ids: say so, and what to pass instead
    ("human_ensembl_ids", _renamed([f"ENSG99{i:09d}" for i in range(30)]), ("error", "human Ensembl ids.*symbols")),
    ("mostly_human_ensembl_ids", _renamed(["CD4"] + [f"ENSG99{i:09d}" for i in range(29)]),
     (InputQualityWarning, "human Ensembl ids.*symbols")),
    ("more_genes_than_encoder", lambda rna: rna, None),  # 19,521 genes > max_genes 64: first-L truncation
]


def _expect(outcome, call):
    """Run ``call`` and check it raises / warns as the case says; returns the result otherwise."""
    if outcome is not None and outcome[0] == "error":
        with pytest.raises(ValueError, match=outcome[1]):
            call()
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    if outcome is not None:
        kind, pattern = outcome
        assert any(issubclass(w.category, kind) and re.search(pattern, str(w.message)) for w in caught), [
            str(w.message) for w in caught]
    assert np.isfinite(result.X).all()
    return result


@pytest.mark.parametrize("case, damage, outcome", CASES, ids=[c[0] for c in CASES])
def test_python_api(predictor, base_rna, case, damage, outcome):
    rna = damage(base_rna)
    result = _expect(outcome, lambda: predictor(rna, proteins=PROTEINS))
    if result is not None:
        assert result.shape == (rna.n_obs, len(PROTEINS))


@pytest.mark.parametrize("case, damage, outcome", CASES, ids=[c[0] for c in CASES])
def test_cli(tiny_model_dir, base_rna, tmp_path, capsys, case, damage, outcome):
    rna = damage(base_rna)
    path = tmp_path / "rna.h5ad"
    rna.write_h5ad(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    names = tmp_path / "proteins.txt"
    names.write_text("\n".join(PROTEINS))
    out = tmp_path / "pred.h5ad"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = cli_main(["predict", "--model", str(tiny_model_dir), "--rna", str(path), "--proteins", str(names),
                         "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # the input is never modified
    if outcome is not None and outcome[0] == "error":
        last = err.strip().splitlines()[-1]  # after any progress bars: one line naming the problem
        assert code == 2 and last.startswith("sctranslator predict: error:") and re.search(outcome[1], last), err
        assert not out.exists()
        return
    assert code == 0, err
    assert np.isfinite(ad.read_h5ad(out).X).all()
    if outcome is not None:
        assert any(issubclass(w.category, outcome[0]) and re.search(outcome[1], str(w.message)) for w in caught)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_pipeline_on_a_device_the_machine_lacks_is_refused_by_name(tiny_model_dir):
    """pipeline(device="cuda") on a CPU machine raised torch's "Torch not compiled with CUDA enabled" from inside
    transformers; the CLI already named the fix."""
    for device, pattern in (("cuda", "no CUDA device is available here; use device='cpu'"), (0, "device=0 was"),
                            ("tpu", "not a device this build of PyTorch knows")):
        with pytest.raises(ValueError, match=pattern):
            pipeline("protein-prediction", model=str(tiny_model_dir), device=device)


def test_ensembl_ids_with_version_suffixes_map(predictor, base_rna):
    tokenizer = predictor.feature_extractor
    report = tokenizer.resolve(["ENSMUSG00000023274", "ENSMUSG00000023274.15"], kind="gene")
    assert report.routes == ["mouse_ensembl", "mouse_ensembl"] and report.token_ids[0] > 0
    assert [s for s in report.status] == ["mapped", "duplicate"]  # both are one gene: reported, not silent
    assert tokenizer.resolve(["ENSMUSG00000023274.15"], kind="gene").token_ids[0] == report.token_ids[0]


def test_unknown_and_duplicate_protein_names_are_reported(predictor, base_rna):
    with pytest.warns(UserWarning, match="NotAProtein"):
        result = predictor(base_rna, proteins=["CD4", "NotAProtein", "CD45", "B220 (CD45R)"])
    info = result.uns["sctranslator"]
    assert info["unmapped_proteins"] == ["NotAProtein"]
    assert any("B220 (CD45R)" in d for d in info["duplicate_proteins"])
    assert list(result.var_names) == ["CD4", "CD45"]


def test_more_proteins_than_the_decoder_are_split_not_cut(predictor, base_rna):
    many = ["CD4", "CD19", "CD14", "CD8A", "CD3E", "MS4A1", "ITGAM", "NCAM1", "IL7R"]  # 9 > max_proteins 6
    assert predictor(base_rna, proteins=many).shape == (12, 9)


# --------------------------------------------------------------------------- files
def _truncated_h5ad(path, rna):
    rna.write_h5ad(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _h5ad_without_x(path, rna):
    ad.AnnData(obs=rna.obs.copy(), var=rna.var.copy()).write_h5ad(path)


@pytest.mark.parametrize("make, message", [
    (None, "does not exist"),
    (_truncated_h5ad, "cannot read .* as .h5ad"),
    (_h5ad_without_x, "no X matrix"),
], ids=["missing", "truncated", "no_X"])
def test_bad_rna_files(tiny_model_dir, base_rna, tmp_path, capsys, make, message):
    path = tmp_path / "rna.h5ad"
    if make is not None:
        make(path, base_rna)
    (tmp_path / "p.txt").write_text("CD4\n")
    code = cli_main(["predict", "--model", str(tiny_model_dir), "--rna", str(path), "--proteins",
                     str(tmp_path / "p.txt"), "--out", str(tmp_path / "o.h5ad")])
    err = capsys.readouterr().err
    assert code == 2 and re.search(message, err) and "Traceback" not in err, err


@pytest.mark.parametrize("change, message", [
    (lambda adt: adt[:-2].copy(), "the RNA file has 12 cells and the protein file 10, 10 shared obs_names"),
    (lambda adt: ad.concat([adt[2:], adt[:1]]), "the RNA file has 12 cells and the protein file 11, 11 shared"),
], ids=["different_cells", "different_cells_reordered"])  # the same cells reordered: test_evaluate_inputs.py
def test_rna_and_protein_files_must_hold_the_same_cells(tiny_model_dir, base_rna, data_dir, tmp_path, capsys,
                                                       change, message):
    adt = change(ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:12].copy())
    base_rna.write_h5ad(tmp_path / "rna.h5ad")
    adt.write_h5ad(tmp_path / "adt.h5ad")
    code = cli_main(["evaluate", "--model", str(tiny_model_dir), "--rna", str(tmp_path / "rna.h5ad"),
                     "--protein", str(tmp_path / "adt.h5ad")])
    err = capsys.readouterr().err
    assert code == 2 and re.search(message, err) and "Traceback" not in err, err


def test_read_only_output_location(tiny_model_dir, base_rna, tmp_path, capsys, monkeypatch):
    base_rna.write_h5ad(tmp_path / "rna.h5ad")
    (tmp_path / "p.txt").write_text("CD4\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode))
    code = cli_main(["predict", "--model", str(tiny_model_dir), "--rna", str(tmp_path / "rna.h5ad"), "--proteins",
                     str(tmp_path / "p.txt"), "--out", str(locked / "o.h5ad")])
    assert code == 2 and "read-only" in capsys.readouterr().err


# --------------------------------------------------------------------------- checkpoints
def _copy_model(tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def test_truncated_safetensors(tiny_model_dir, base_rna, tmp_path, capsys):
    folder = _copy_model(tiny_model_dir, tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    base_rna.write_h5ad(tmp_path / "rna.h5ad")
    (tmp_path / "p.txt").write_text("CD4\n")
    assert cli_main(["predict", "--model", str(folder), "--rna", str(tmp_path / "rna.h5ad"), "--proteins",
                     str(tmp_path / "p.txt"), "--out", str(tmp_path / "o.h5ad")]) == 2
    assert "model.safetensors" in capsys.readouterr().err
    with pytest.raises(Exception, match="safetensors|header|incomplete|deserializ"):
        AutoModel.from_pretrained(folder)


def test_config_from_a_newer_version_with_unknown_fields_loads(tiny_model_dir, tmp_path):
    folder = _copy_model(tiny_model_dir, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["a_field_from_the_future"] = {"x": 1}
    (folder / "config.json").write_text(json.dumps(config))
    model = AutoModel.from_pretrained(folder)  # documented: unknown fields are kept and ignored
    assert model.config.a_field_from_the_future == {"x": 1}


def test_state_dict_with_missing_or_extra_keys_is_refused(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    folder = _copy_model(tiny_model_dir, tmp_path)
    state = load_file(folder / "model.safetensors")
    state.pop("decoder.output_head.bias")
    state["encoder.surprise"] = torch.zeros(2)
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"missing keys: \['decoder.output_head.bias'\].*unexpected keys"):
        AutoModel.from_pretrained(folder)
    AutoModel.from_pretrained(folder, allow_incomplete_weights=True)  # the explicit escape hatch


def test_mismatched_vocabulary_between_model_and_tokenizer(tiny_model_dir, base_rna, tmp_path, capsys):
    from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    from ..conftest import TINY_MODEL

    folder = tmp_path / "small_vocab"
    SCTranslatorForProteinPrediction(SCTranslatorConfig(**{**TINY_MODEL, "vocab_size": 1000})).save_pretrained(folder)
    SCTranslatorTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)  # 85,500 ids
    base_rna.write_h5ad(tmp_path / "rna.h5ad")
    (tmp_path / "p.txt").write_text("CD4\n")
    code = cli_main(["predict", "--model", str(folder), "--rna", str(tmp_path / "rna.h5ad"), "--proteins",
                     str(tmp_path / "p.txt"), "--out", str(tmp_path / "o.h5ad")])
    assert code == 2 and "do not belong together" in capsys.readouterr().err


def test_config_that_disagrees_with_its_weights_is_refused(tiny_model_dir, tmp_path):
    folder = _copy_model(tiny_model_dir, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["vocab_size"] = 1000
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="mismatched keys: .*gene_embedding"):
        AutoModel.from_pretrained(folder)


@pytest.mark.parametrize("written, expected", [
    ("\ufeffCD4\nCD19\n", ["CD4", "CD19"]),                  # a UTF-8 BOM is not part of the first name
    ("CD4,CD19,CD8A\n", ["CD4", "CD19", "CD8A"]),           # comma-separated on one line
    # several lines: one name per line (a comma in one belongs to the name: test_cli_options.py), comments
    ("# panel\nCD4  # T cells\n\n CD19 \nCD8A\n", ["CD4", "CD19", "CD8A"]),
])
def test_protein_lists_are_read_as_written(tiny_model_dir, base_rna, tmp_path, written, expected):
    path = tmp_path / "rna.h5ad"
    base_rna[:4].copy().write_h5ad(path)
    names = tmp_path / "proteins.txt"
    names.write_bytes(written.encode("utf-8"))
    for proteins in (str(names), ",".join(expected)):  # a file or the names themselves
        out = tmp_path / "pred.h5ad"
        assert cli_main(["predict", "--model", str(tiny_model_dir), "--rna", str(path), "--proteins", proteins,
                         "--out", str(out), "--overwrite", "--device", "cpu"]) == 0
        assert list(ad.read_h5ad(out).var_names) == expected


def test_a_pandas_dataframe_is_taken_as_cells_by_genes(predictor, base_rna):
    import pandas as pd

    frame = pd.DataFrame(_dense(base_rna), index=base_rna.obs_names, columns=base_rna.var_names)
    out = predictor(frame, proteins=["CD4", "CD19"])
    assert out.shape == (base_rna.n_obs, 2) and list(out.obs_names) == list(base_rna.obs_names)
    np.testing.assert_allclose(out.X, predictor(base_rna, proteins=["CD4", "CD19"]).X, atol=1e-6)
    # a column of text (a cell type beside the genes) failed in pandas: "could not convert string to float: 'T'"
    frame.insert(0, "cell_type", "T")
    with pytest.raises(ValueError, match=r"columns that are not numbers \(cell_type\).*df.drop\(columns="):
        predictor(frame, proteins=["CD4", "CD19"])


def test_heatmaps_label_rows_and_columns_with_names_not_indices(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from interpretation.outputs import heatmap

    shown: dict[str, list[str]] = {}
    for axis in ("x", "y"):
        original = getattr(Axes, f"set_{axis}ticks")

        def record(self, ticks, labels=None, _axis=axis, _original=original, **kwargs):
            shown[_axis] = list(labels)
            return _original(self, ticks, labels=labels, **kwargs)

        monkeypatch.setattr(Axes, f"set_{axis}ticks", record)
    genes = [f"GENE{i}" for i in range(300)]  # more rows than can all be labelled
    heatmap(np.random.default_rng(0).random((300, 3)), genes, ["CD4", "CD19", "CD14"], tmp_path / "h.png", "t")
    assert shown["x"] == ["CD4", "CD19", "CD14"]
    assert 2 <= len(shown["y"]) <= 60 and set(shown["y"]) <= set(genes) and shown["y"][0] == "GENE0"
    assert (tmp_path / "h.png").stat().st_size > 0


def test_a_backed_file_is_read_in_chunks_never_whole(predictor, data_dir, tmp_path, monkeypatch):
    """Streaming: a backed file is read in slices of at most ``chunk_size`` rows (a whole-file read would hold
    20,000 cells x 20,000 genes in memory); every cell once to predict, and once before when the model has fewer
    positions than the file maps genes and no layout (its most expressed genes are chosen first)."""
    from anndata._core.sparse_dataset import BaseCompressedSparseDataset

    path = tmp_path / "cells.h5ad"
    ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:40].copy().write_h5ad(path)
    rows_read: list[int] = []
    original = BaseCompressedSparseDataset.__getitem__

    def counting(self, index):
        out = original(self, index)
        rows_read.append(out.shape[0] if hasattr(out, "shape") and len(out.shape) == 2 else 1)
        return out

    monkeypatch.setattr(BaseCompressedSparseDataset, "__getitem__", counting)
    result = predictor(str(path), proteins=["CD4"], chunk_size=16)
    assert result.n_obs == 40
    cut = result.uns["sctranslator"]["gene_layout"].get("genes_cut", 0) > 0
    # with the choice: 2 rows to map the genes, then all 40 for their means; the first 64 (here 40) to tell how
    # the values were normalised; then the 40 predicted, the first chunk's 16 twice (bulk and non-gene checks)
    assert rows_read and max(rows_read) <= 16 and sum(rows_read) == (138 if cut else 96), rows_read
