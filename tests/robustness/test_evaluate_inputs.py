"""``sctranslator evaluate`` with measured proteins that are not plain counts of exactly the RNA's cells."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from ..conftest import TINY_MODEL

PANEL = ["CD4", "CD19", "CD14", "CD8"]


@pytest.fixture(scope="module")
def scale_model_dir(tmp_path_factory, vocab_dir) -> Path:
    """A tiny model with the protein scale part: it predicts log1p counts, as the shipped default model."""
    import torch

    from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    torch.manual_seed(0)
    config = SCTranslatorConfig(**dict(TINY_MODEL, translator_type="cross_attention"), predict_protein_scale=True)
    folder = tmp_path_factory.mktemp("scale_model") / "tiny"
    SCTranslatorForProteinPrediction(config).save_pretrained(folder)
    SCTranslatorTokenizer.from_original_tables(
        vocab_dir, max_length=TINY_MODEL["max_genes"], protein_max_length=TINY_MODEL["max_proteins"]
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pair(data_dir, tmp_path_factory) -> tuple[Path, ad.AnnData]:
    """8 cells' RNA file, and the ADT counts of those cells and 4 more (the RNA's cells first)."""
    folder = tmp_path_factory.mktemp("pair")
    ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:8].copy().write_h5ad(folder / "rna.h5ad")
    adt = ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:12, PANEL].copy()
    adt.X = np.asarray(adt.X.toarray() if hasattr(adt.X, "toarray") else adt.X, dtype=np.float32)
    return folder / "rna.h5ad", adt


def _evaluate(model: Path, rna: Path, adt: ad.AnnData, tmp_path: Path, capsys) -> tuple[int, dict | str, list[str]]:
    """Exit status, the metrics (or the error line) and the warnings of ``evaluate`` against ``adt``."""
    from sctranslator.cli import main

    path = tmp_path / f"adt_{len(list(tmp_path.glob('adt_*')))}.h5ad"
    adt.write_h5ad(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["evaluate", "--model", str(model), "--rna", str(rna), "--protein", str(path), "--device", "cpu"])
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1]) if code == 0 else captured.err
    return code, result, [str(w.message) for w in caught]


def test_signed_measured_values_get_a_warning_on_what_is_comparable(scale_model_dir, pair, tmp_path, capsys):
    """Signed ADT values (centred log ratios over 4 proteins, too few to recover counts from) were scored against
    log1p-count predictions without a word."""
    rna, adt = pair
    code, counts_metrics, warned = _evaluate(scale_model_dir, rna, adt[:8], tmp_path, capsys)
    assert code == 0 and counts_metrics["measured_values"] == "counts"
    assert not [w for w in warned if "signed" in w]

    clr = adt[:8].copy()
    logs = np.log1p(clr.X)
    clr.X = logs - logs.mean(axis=1, keepdims=True)  # centred log ratio per cell: negative in places
    code, metrics, warned = _evaluate(scale_model_dir, rna, clr, tmp_path, capsys)
    assert code == 0 and metrics["scale"] == "log1p_counts" and metrics["measured_values"] == "signed"
    signed = [w for w in warned if "signed" in w]
    assert len(signed) == 1, warned
    for what in ("already normalised (e.g. z-scored or CLR-normalised ADT", "mse and cosine_similarity",
                 "not comparable", "comparable only with evaluations against values normalised the same way",
                 "raw ADT counts"):
        assert what in signed[0]


def test_seurat_and_muon_clr_are_scored_as_their_counts(scale_model_dir, pair, tmp_path, capsys):
    """Seurat's and muon's CLR, log1p(x / geometric mean), is never negative: it was read as log1p counts without a
    word (Seurat CLR on 40 ECCITE cells: mse 2.93 against 0.63 on the counts, per-cell r 0.58 against 0.90). Its
    counts are recovered exactly, so every metric is the counts' one."""
    rna, adt = pair
    _, counts_metrics, _ = _evaluate(scale_model_dir, rna, adt[:8], tmp_path, capsys)
    for axis, margin in ((0, "per protein across cells"), (1, "per cell across proteins")):
        clr = adt[:8].copy()
        geometric_means = np.exp(np.log1p(clr.X).mean(axis=axis, keepdims=True))
        clr.X = np.log1p(clr.X / geometric_means).astype(np.float32)
        code, metrics, warned = _evaluate(scale_model_dir, rna, clr, tmp_path, capsys)
        assert code == 0 and metrics["measured_values"] == (f"CLR ({margin}: log1p(counts / geometric mean), as "
                                                            "Seurat's and muon's CLR write it) -> counts")
        assert any("CLR-normalised" in w and "brought back to their counts" in w for w in warned), warned
        for key in ("mse", "cosine_similarity", "pearson_per_protein_mean", "pearson_per_cell_mean"):
            assert metrics[key] == pytest.approx(counts_metrics[key], abs=1e-6), key
    # normalised over more cells than the RNA file holds: read over the whole file, before its cells are matched
    clr = adt.copy()
    clr.X = np.log1p(clr.X / np.exp(np.log1p(clr.X).mean(axis=0, keepdims=True))).astype(np.float32)
    code, metrics, _ = _evaluate(scale_model_dir, rna, clr, tmp_path, capsys)
    assert code == 0 and metrics["measured_values"].startswith("CLR (per protein across cells")
    assert metrics["mse"] == pytest.approx(counts_metrics["mse"], abs=1e-6)


def test_a_protein_file_with_more_cells_is_matched_by_obs_names(scale_model_dir, pair, tmp_path, capsys):
    """Extra cells appended were ignored silently; placed first they were refused with a wrong count."""
    rna, adt = pair
    code, exact, warned = _evaluate(scale_model_dir, rna, adt[:8], tmp_path, capsys)
    assert code == 0 and exact["cells"] == 8 and not [w for w in warned if "left out" in w]
    reordered = adt[list(range(8))[::-1]]  # the same cells in another order
    for protein_file in (adt, ad.concat([adt[8:], adt[:8]]), reordered):
        code, metrics, warned = _evaluate(scale_model_dir, rna, protein_file, tmp_path, capsys)
        assert code == 0, metrics
        assert metrics == exact  # the RNA's cells, each compared with its own measurements
        left_out = [w for w in warned if "left out" in w]
        if protein_file.n_obs > 8:
            assert len(left_out) == 1 and "holds 12 cells, 4 of them not in the RNA file" in left_out[0], warned
            assert "the RNA file's 8 cells are used" in left_out[0]
        else:
            assert not left_out


def test_a_protein_file_lacking_rna_cells_is_refused_with_the_true_counts(scale_model_dir, pair, tmp_path, capsys):
    """The count came from the first chunk of the protein file, not the file: 'protein (8 cells)' for 10."""
    rna, adt = pair
    code, error, _ = _evaluate(scale_model_dir, rna, adt[2:], tmp_path, capsys)
    assert code == 2 and "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert "the RNA file has 8 cells and the protein file 10, 6 shared obs_names" in error, error
    assert "subset both to the shared cells first" in error and "names differ in form" not in error
    renamed = adt.copy()
    renamed.obs_names = [f"{name}-1" for name in adt.obs_names]  # the same barcodes, Cell Ranger's suffix added
    code, error, _ = _evaluate(scale_model_dir, rna, renamed, tmp_path, capsys)
    assert code == 2 and ", 0 shared obs_names" in error
    first = ad.read_h5ad(rna, backed="r").obs_names[0] if not hasattr(rna, "obs_names") else rna.obs_names[0]
    assert f"the names differ in form? e.g. RNA {first!r}, protein {renamed.obs_names[0]!r}" in error


def test_predict_with_a_protein_file_of_more_cells_uses_the_rnas_cells(scale_model_dir, pair, tmp_path):
    """predict --protein refused a protein file holding more cells (or another order), which evaluate accepts:
    both match cells by obs_names now, so the measured layer is each RNA cell's own measurement."""
    from sctranslator.cli import main

    rna, adt = pair
    outputs = []
    for i, protein_file in enumerate((adt[:8], ad.concat([adt[8:], adt[list(range(8))[::-1]]]))):
        path, out = tmp_path / f"adt{i}.h5ad", tmp_path / f"pred{i}.h5ad"
        protein_file.write_h5ad(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(["predict", "--model", str(scale_model_dir), "--rna", str(rna), "--protein", str(path),
                         "--out", str(out), "--device", "cpu"]) == 0
        assert bool(i) == any("4 of them not in the RNA file" in str(w.message) for w in caught)
        outputs.append(ad.read_h5ad(out))
    assert list(outputs[1].obs_names) == list(outputs[0].obs_names)
    np.testing.assert_allclose(outputs[1].X, outputs[0].X, atol=1e-6)
    np.testing.assert_array_equal(outputs[1].layers["measured"], outputs[0].layers["measured"])
    # the same file given as --proteins (its names and values): the warning named "None" as the file
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["predict", "--model", str(scale_model_dir), "--rna", str(rna), "--proteins", str(path),
                     "--out", str(tmp_path / "pred_names.h5ad"), "--device", "cpu"]) == 0
    assert any(str(w.message).startswith(f"{path} holds 12 cells, 4 of them") for w in caught)


def test_repeated_barcodes_are_named_with_a_fix_that_keeps_cells_paired(scale_model_dir, pair, tmp_path, capsys):
    """Two samples merged without a prefix repeat barcodes; the advice was obs_names_make_unique(), which numbers the
    copies in each file's own order and pairs the wrong cells when the files' orders differ."""
    rna, adt = pair
    merged = adt.copy()
    merged.obs_names = [name if i % 2 else str(adt.obs_names[0]) for i, name in enumerate(adt.obs_names)]
    code, error, _ = _evaluate(scale_model_dir, rna, merged[::-1], tmp_path, capsys)
    assert code == 2 and len(error.strip().splitlines()) == 1, error
    assert f"protein: 1 repeat, e.g. {str(adt.obs_names[0])!r}" in error and "RNA:" not in error
    assert "index_unique='_'" in error and "pairs the right cells only if both list them in one order" in error


def test_geo_csv_tables_are_read_as_cells_by_features(scale_model_dir, data_dir, tmp_path, capsys):
    """GEO holds many CITE-seq sets as delimited tables, genes (or antibodies) in rows and cells in columns
    (GSE100866's ..._RNA_umi.csv.gz and ..._ADT_umi.csv.gz); they were refused ('convert it first'). Read either
    way round (the axis named by cell barcodes is the cells'), they score as the same cells in .h5ad files."""
    from sctranslator.cli import main
    from tokenization.cell_files import read_cells

    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:8].copy()
    adt = ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:8, PANEL].copy()
    rna.write_h5ad(tmp_path / "rna.h5ad")
    adt.write_h5ad(tmp_path / "adt.h5ad")
    genes = rna.X.toarray() if hasattr(rna.X, "toarray") else np.asarray(rna.X)
    tags = adt.X.toarray() if hasattr(adt.X, "toarray") else np.asarray(adt.X)
    pd.DataFrame(genes.T, index=rna.var_names, columns=rna.obs_names).to_csv(tmp_path / "rna_umi.csv.gz")
    pd.DataFrame(tags, index=adt.obs_names, columns=PANEL).to_csv(tmp_path / "adt_umi.tsv", sep="\t")  # cells x tags
    results = []
    for rna_file, protein_file in (("rna.h5ad", "adt.h5ad"), ("rna_umi.csv.gz", "adt_umi.tsv")):
        assert main(["evaluate", "--model", str(scale_model_dir), "--rna", str(tmp_path / rna_file), "--protein",
                     str(tmp_path / protein_file), "--device", "cpu"]) == 0, capsys.readouterr().err
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert results[1] == results[0] and results[0]["proteins_evaluated"] == len(PANEL)
    # names that are no barcodes: read as features x cells, as GEO writes, and said so; a text value is named
    pd.DataFrame(tags.T, index=PANEL, columns=[f"cell{i}" for i in range(8)]).to_csv(tmp_path / "plain.csv")
    with pytest.warns(UserWarning, match="read as features x cells"):
        table = read_cells(tmp_path / "plain.csv", "protein file")
    assert list(table.var_names) == PANEL and table.n_obs == 8
    # the first column's header names the rows: cells (no warning), or genes
    frame = pd.DataFrame(tags, index=pd.Index([f"cell{i}" for i in range(8)], name="cell_id"), columns=PANEL)
    frame.to_csv(tmp_path / "named.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(read_cells(tmp_path / "named.csv", "protein file").var_names) == PANEL
    frame.T.rename_axis("gene").to_csv(tmp_path / "genes.csv")
    assert list(read_cells(tmp_path / "genes.csv", "protein file").var_names) == PANEL
    # AnnData.to_df().to_csv() of cells without barcodes (cell_3, cell_7 ...: numbered, some filtered out), and its
    # transpose: read the right way round without a warning (it was read as features x cells, genes as cells)
    numbered = [f"cell_{i}" for i in range(0, 40, 2)]
    cells_by_tags = pd.DataFrame(np.resize(tags, (len(numbered), len(PANEL))), index=numbered, columns=PANEL)
    cells_by_tags.to_csv(tmp_path / "to_df.csv")
    cells_by_tags.T.to_csv(tmp_path / "to_df_T.csv")
    for name in ("to_df.csv", "to_df_T.csv"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            table = read_cells(tmp_path / name, "protein file")
        assert list(table.obs_names) == numbered and list(table.var_names) == PANEL
        np.testing.assert_array_equal(table.X.toarray(), cells_by_tags.to_numpy())
    # antibody tags named with their barcodes, as cells are: the longer axis is the cells'
    tagged = pd.DataFrame(tags, index=adt.obs_names, columns=[f"{p}-CTCATTGTAACTCCT" for p in PANEL])
    tagged.to_csv(tmp_path / "tagged.csv")
    assert read_cells(tmp_path / "tagged.csv", "protein file").n_obs == 8
    # a repeated cell stays repeated (pandas renamed it X.1), a trailing separator adds no cell, a header alone is
    # one clear error
    (tmp_path / "repeat.tsv").write_text("gene\tAAACCTGAGAAGGCCT-1\tAAACCTGAGAAGGCCT-1\t\nCD4\t1\t2\t\n")
    repeat = read_cells(tmp_path / "repeat.tsv", "protein file")
    assert list(repeat.obs_names) == ["AAACCTGAGAAGGCCT-1"] * 2 and repeat.n_vars == 1
    (tmp_path / "header.csv").write_text("cell,CD4,CD8\n")
    with pytest.raises(ValueError, match="holds no rows of values, only its header"):
        read_cells(tmp_path / "header.csv", "protein file")
    # the separator a file holds, whatever its suffix says: R's write.table (spaces, quotes, no first header field),
    # commas in a .txt, tabs in a .csv.gz
    (tmp_path / "table.txt").write_text('"AAACCTGAGAAGGCCT-1" "AAACCTGAGACAGACC-1"\n"CD4" 1 0\n"CD8" 0 2\n')
    (tmp_path / "commas.txt").write_text("gene,AAACCTGAGAAGGCCT-1,AAACCTGAGACAGACC-1\nCD4,1,0\nCD8,0,2\n")
    for table in ("table.txt", "commas.txt"):
        read = read_cells(tmp_path / table, "protein file")
        assert list(read.var_names) == ["CD4", "CD8"] and read.X.toarray().tolist() == [[1, 0], [0, 2]]
    (tmp_path / "text.csv").write_text("tag,c1,c2\nCD4,1,n/a?\n")
    with pytest.raises(ValueError, match="row 'CD4', column 'c2' holds 'n/a\\?', not a number"):
        read_cells(tmp_path / "text.csv", "protein file")


def test_antibodies_kept_in_obsm_are_read_when_one_h5ad_is_both_sides(scale_model_dir, data_dir, tmp_path, capsys):
    """scvi-tools and totalVI keep a CITE-seq set's antibodies in obsm['protein_expression'] (a DataFrame, or an
    array named by uns['protein_names']) beside the genes in X; such a file given as both sides was refused ('does
    not tell genes from antibodies'). It now scores as the same cells given as two files, and reads as a training
    corpus's pair (read_pair)."""
    from sctranslator.cli import main
    from tokenization.cell_files import read_pair

    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:8].copy()
    adt = ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:8, PANEL].copy()
    rna.write_h5ad(tmp_path / "rna.h5ad")
    adt.write_h5ad(tmp_path / "adt.h5ad")
    counts = adt.X.toarray() if hasattr(adt.X, "toarray") else np.asarray(adt.X)
    as_frame = rna.copy()
    as_frame.obsm["protein_expression"] = pd.DataFrame(counts, index=rna.obs_names, columns=PANEL)
    as_frame.layers["counts"] = as_frame.X.copy()  # the genes' counts: --protein-layer would put genes in X
    as_frame.write_h5ad(tmp_path / "frame.h5ad")
    as_array = rna.copy()
    as_array.obsm["protein_expression"] = counts
    as_array.uns["protein_names"] = np.array(PANEL)
    as_array.write_h5ad(tmp_path / "array.h5ad")
    results = []
    for rna_file, protein_file in (("rna.h5ad", "adt.h5ad"), ("frame.h5ad",) * 2, ("array.h5ad",) * 2):
        assert main(["evaluate", "--model", str(scale_model_dir), "--rna", str(tmp_path / rna_file), "--protein",
                     str(tmp_path / protein_file), "--device", "cpu"]) == 0, capsys.readouterr().err
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert results[0]["proteins_evaluated"] == len(PANEL)
    assert results[1] == results[0] and results[2] == results[0]
    # the Python API: the same AnnData as both arguments, or the protein file's path (its genes were read as
    # thousands of protein names; the path as one name)
    from transformers import pipeline

    predictor = pipeline("protein-prediction", model=str(scale_model_dir), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(predictor(as_frame, proteins=as_frame).var_names) == PANEL
        # a copy, or another view of the same cells, is the same AnnData given again (it read every gene as a protein)
        assert list(predictor(as_frame, proteins=as_frame.copy()).var_names) == PANEL
        assert list(predictor(as_frame[:6], proteins=as_frame[:6]).var_names) == PANEL
        assert list(predictor(rna, proteins=str(tmp_path / "adt.h5ad")).var_names) == PANEL
    capsys.readouterr()  # the pipeline's loading bar
    genes, antibodies = read_pair(tmp_path / "array.h5ad", tmp_path / "array.h5ad")
    assert genes.n_vars == rna.n_vars and list(antibodies.var_names) == PANEL
    np.testing.assert_array_equal(np.asarray(antibodies.X), counts)
    # unnamed antibodies, or a layer asked of a file whose X holds none: one line naming the fix
    del as_array.uns["protein_names"]
    as_array.write_h5ad(tmp_path / "unnamed.h5ad")
    for extra, expected in (([], "without names"), (["--protein-layer", "counts"], "keeps no antibodies in X")):
        path = str(tmp_path / ("unnamed.h5ad" if not extra else "frame.h5ad"))
        assert main(["evaluate", "--model", str(scale_model_dir), "--rna", path, "--protein", path, "--device", "cpu",
                     *extra]) == 2
        error = capsys.readouterr().err
        assert expected in error and len(error.strip().splitlines()) == 1, error


def test_one_h5mu_given_as_both_sides_is_read_as_its_two_modalities(scale_model_dir, data_dir, tmp_path, capsys):
    """The README says one .h5mu can be both --rna and --protein; the CLI refused it ('does not tell genes from
    antibodies'), while a copy of the same file under another name was accepted."""
    import mudata

    from sctranslator.cli import main

    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:8].copy()
    adt = ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:8, PANEL].copy()
    mudata.MuData({"rna": rna, "prot": adt}).write(tmp_path / "cite.h5mu")
    mudata.MuData({"rna": rna, "prot": adt}).write(tmp_path / "copy.h5mu")
    results = []
    for protein in ("cite.h5mu", "copy.h5mu"):
        assert main(["evaluate", "--model", str(scale_model_dir), "--rna", str(tmp_path / "cite.h5mu"), "--protein",
                     str(tmp_path / protein), "--device", "cpu"]) == 0, capsys.readouterr().err
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert results[0] == results[1] and results[0]["proteins_evaluated"] == len(PANEL)
    assert main(["predict", "--model", str(scale_model_dir), "--rna", str(tmp_path / "cite.h5mu"), "--protein",
                 str(tmp_path / "cite.h5mu"), "--out", str(tmp_path / "out.h5ad"), "--device", "cpu"]) == 0
    assert list(ad.read_h5ad(tmp_path / "out.h5ad").var_names) == PANEL


def test_log_scale_measured_proteins_are_said_to_be_compared_as_given(data_dir):
    """CLR ADT written to 6 decimals (its counts cannot be told back) was compared with log1p-count predictions as
    given, in silence: MSE 2.93 against 0.63 on the counts. Log-scale values now say so; counts do not."""
    from modeling_sctranslator.inference import transformed_proteins
    from tokenization.checks import InputQualityWarning

    adt = ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:40, PANEL].copy()
    counts = adt.X.toarray() if hasattr(adt.X, "toarray") else np.asarray(adt.X)
    logged = adt.copy()
    logged.X = np.round(np.log1p(counts / np.exp(np.log1p(counts).mean(axis=0))), 6).astype(np.float32)
    with pytest.warns(InputQualityWarning, match="compared as given"):
        _, kind = transformed_proteins(logged, "auto")
    assert kind == "log"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert transformed_proteins(adt, "auto")[1] == "counts"


def test_an_rna_file_given_as_the_protein_file_is_refused(scale_model_dir, pair, tmp_path, capsys):
    """evaluate --protein with an RNA file (log-normalised, as a user's processed copy is) predicted 16,148 'proteins'
    and printed a 600 KB line of metrics, exit 0."""
    rna, _ = pair
    log_rna = ad.read_h5ad(rna)
    log_rna.X = log_rna.X.log1p() if hasattr(log_rna.X, "log1p") else np.log1p(log_rna.X)
    code, error, _ = _evaluate(scale_model_dir, rna, log_rna, tmp_path, capsys)
    assert code == 2 and "single-cell columns of counts or log-normalised values" in error
    assert "is it the RNA file?" in error


def test_a_sparse_proteome_of_thousands_of_proteins_is_no_rna_file():
    """The RNA-file check refused a single-cell proteome stored sparse (3,000 proteins, 60 % missing as 0): log2
    intensities or ratios are not counts or log-normalised RNA."""
    import scipy.sparse as sp

    from tokenization.matrix import rna_like_protein_side

    rng = np.random.default_rng(0)
    missed = rng.random((200, 3000)) < 0.6
    for values in (rng.normal(20, 3, missed.shape), rng.lognormal(0, 0.5, missed.shape)):
        values[missed] = 0
        assert not rna_like_protein_side(ad.AnnData(sp.csr_matrix(values)))


def test_cells_the_model_was_fine_tuned_on_are_counted_and_named_as_not_held_out(scale_model_dir, data_dir, vocab_dir,
                                                                                tmp_path, capsys):
    """Evaluating a fine-tuned folder on its whole training file scored r 0.607 where its held-out cells gave 0.531,
    with no word. The run's corpora beside the model tell which cells it trained or validated on: counted in the
    metrics, and a warning says where the held-out cells are listed."""
    import shutil

    import pyarrow.parquet as pq

    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
    from training.corpus import build_corpus, find_source

    model = tmp_path / "finetuned"
    shutil.copytree(scale_model_dir, model)
    files = tmp_path / "files"
    files.mkdir()
    ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:40].copy().write_h5ad(files / "mine_rna.h5ad")
    ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:40].copy().write_h5ad(files / "mine_adt.h5ad")
    tokenizer = SCTranslatorTokenizer.from_original_tables(vocab_dir)
    build_corpus(find_source(files / "mine"), model / "corpora" / "mine", tokenizer, num_shards=1, eval_fraction=0.25)
    (model / "training_summary.json").write_text(json.dumps({"corpora": [{"name": "mine", "dir": "corpora/mine"}]}))
    held_out = set(pq.read_table(next((model / "corpora" / "mine").glob("eval-*.parquet"))).column("cell_id")
                   .to_pylist())
    assert len(held_out) == 10
    adt = ad.read_h5ad(files / "mine_adt.h5ad")
    adt.X = np.asarray(adt.X.toarray(), dtype=np.float32)
    code, metrics, warned = _evaluate(model, files / "mine_rna.h5ad", adt, tmp_path, capsys)
    assert code == 0 and metrics["cells_trained_on"] == 30
    seen = [w for w in warned if "trained or validated on" in w]
    assert len(seen) == 1 and "30 of the 40 cells evaluated" in seen[0] and "corpora/mine/eval-*.parquet" in seen[0]
    test_cells = ad.read_h5ad(files / "mine_rna.h5ad")
    test_cells = test_cells[test_cells.obs_names.isin(held_out)].copy()
    test_cells.write_h5ad(tmp_path / "held_out_rna.h5ad")
    code, metrics, warned = _evaluate(model, tmp_path / "held_out_rna.h5ad", adt[test_cells.obs_names].copy(),
                                      tmp_path, capsys)
    assert code == 0 and metrics["cells_trained_on"] == 0 and not [w for w in warned if "validated on" in w]
    # a model without its run's corpora beside it cannot tell: null, not 0 (the shipped model trained on eccite)
    code, metrics, _ = _evaluate(scale_model_dir, files / "mine_rna.h5ad", adt, tmp_path, capsys)
    assert code == 0 and metrics["cells_trained_on"] is None
