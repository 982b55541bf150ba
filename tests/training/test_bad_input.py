"""Bad input fails with a clear error before any training step."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from training.corpus import SCHEMA, CorpusError, build_corpus, find_source, load_manifest
from training.data import build_train_stream, check_divisible
from training.run_stage import main

from ._training_helpers import QUIET, TINY_MODEL

GENES = ["CD4", "CD8A", "PTPRC", "CD19", "MS4A1", "CD14", "LYZ", "NKG7"]


def _pair(folder, name, n=20, rna_obs=None, adt_obs=None, proteins=("CD4", "CD19", "CD14")):
    rng = np.random.default_rng(0)
    obs = [f"cell{i}" for i in range(n)]
    rna = ad.AnnData(sp.csr_matrix(rng.poisson(2, (n, len(GENES))).astype(np.float32)),
                     obs=pd.DataFrame(index=rna_obs or obs), var=pd.DataFrame(index=GENES))
    adt = ad.AnnData(sp.csr_matrix(rng.poisson(20, (n, len(proteins))).astype(np.float32)),
                     obs=pd.DataFrame(index=adt_obs or obs), var=pd.DataFrame(index=list(proteins)))
    rna.write_h5ad(folder / f"{name}_rna.h5ad")
    adt.write_h5ad(folder / f"{name}_adt.h5ad")
    return folder / name


def test_unpaired_cells_are_refused(tmp_path, tokenizer):
    other = _pair(tmp_path, "other", adt_obs=[f"x{i}" for i in range(20)])
    with pytest.raises(CorpusError, match="unpaired cells.*20 cells.*0 shared"):
        build_corpus(find_source(other), tmp_path / "out2", tokenizer)
    fewer = _pair(tmp_path, "fewer")  # the RNA holds cells the protein file lacks: no label to train them on
    adt = ad.read_h5ad(tmp_path / "fewer_adt.h5ad")
    adt[:15].copy().write_h5ad(tmp_path / "fewer_adt.h5ad")
    with pytest.raises(CorpusError, match="unpaired cells.*15 shared"):
        build_corpus(find_source(fewer), tmp_path / "out3", tokenizer)
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


def _shard_rows(corpus_dir):
    manifest = load_manifest(corpus_dir)
    rows = {}
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            for r in pq.read_table(Path(corpus_dir) / shard["file"]).to_pylist():
                rows[r["cell_id"]] = (r["row"], np.asarray(r["protein_values"]))
    return rows


def test_cells_in_another_order_or_extra_protein_cells_are_matched_by_name(tmp_path, tokenizer, caplog):
    """Fine-tuning refused files listing the same cells in another order ('write them in one order'), while
    evaluate matched them by name; and an ADT matrix of more barcodes than the filtered RNA was 'unpaired'."""
    obs = [f"cell{i}" for i in range(20)]
    _pair(tmp_path, "ordered")
    build_corpus(find_source(tmp_path / "ordered"), tmp_path / "ref", tokenizer)
    reference = _shard_rows(tmp_path / "ref")
    adt = ad.read_h5ad(tmp_path / "ordered_adt.h5ad")
    order = np.random.default_rng(1).permutation(20)
    extra = ad.AnnData(np.full((3, adt.n_vars), 7, np.float32), obs=pd.DataFrame(index=["e0", "e1", "e2"]),
                       var=adt.var.copy())
    shuffled = ad.concat([adt[order].copy(), extra])
    shuffled.var_names = adt.var_names
    shutil.copy(tmp_path / "ordered_rna.h5ad", tmp_path / "shuffled_rna.h5ad")
    shuffled.write_h5ad(tmp_path / "shuffled_adt.h5ad")
    with caplog.at_level(logging.WARNING, logger="training.corpus"):
        build_corpus(find_source(tmp_path / "shuffled"), tmp_path / "out", tokenizer)
    assert "3 of the protein file's 23 cells are not in the RNA file" in caplog.text
    rows = _shard_rows(tmp_path / "out")
    assert sorted(rows) == sorted(obs)
    for cell, (row, values) in reference.items():  # each cell keeps its own protein values and its RNA row
        assert rows[cell][0] == row
        np.testing.assert_array_equal(rows[cell][1], values)


def test_unpaired_cells_stop_run_stage_before_training(tmp_path, vocab_dir):
    source = _pair(tmp_path, "bad", adt_obs=[f"x{i}" for i in range(20)])
    with pytest.raises(CorpusError, match="unpaired cells"):
        main(["--stage", "finetune", "--corpora", str(source), "--vocab_dir", str(vocab_dir),
              "--output_dir", str(tmp_path / "run"), *TINY_MODEL, *QUIET])
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_two_corpora_of_one_name_are_refused_before_either_is_built(tmp_path, vocab_dir):
    """s1/pbmc and s2/pbmc were both built into corpora/pbmc, the second replacing the first, and only then did the
    run stop ("corpus names must be distinct") without saying how to give them apart."""
    (tmp_path / "s1").mkdir(), (tmp_path / "s2").mkdir()
    first, second = _pair(tmp_path / "s1", "pbmc"), _pair(tmp_path / "s2", "pbmc")
    with pytest.raises(CorpusError, match=r"both named 'pbmc' .*Rename one pair of files \(e.g. pbmc_b_rna.h5ad"):
        main(["--stage", "finetune", "--corpora", str(first), str(second), "--vocab_dir", str(vocab_dir),
              "--output_dir", str(tmp_path / "run"), *TINY_MODEL, *QUIET])
    assert not (tmp_path / "run" / "corpora").exists()


def test_no_mappable_protein(tmp_path, tokenizer):
    source = _pair(tmp_path, "panel", proteins=("NotAProtein1", "zzz_unknown", "IgG1"))
    with pytest.raises(CorpusError, match="no mappable protein"):
        build_corpus(find_source(source), tmp_path / "out", tokenizer)



def test_a_one_protein_panel_is_refused_before_training(tmp_path, vocab_dir):
    """A panel of one protein trained with NaN Pearson at every evaluation (a cell's proteins are scaled between
    its lowest and highest: one protein is constant) and its scale part pulled the shipped model's log1p means
    down (ECCITE CD4 3.23 -> 2.61 in 20 steps) with no word."""
    source = _pair(tmp_path, "one", proteins=("CD4", "IgG1"))  # an isotype control is no second protein
    with pytest.raises(CorpusError, match=r"1 measured protein maps to a token \(CD4\).*at least 2"):
        main(["--stage", "finetune", "--corpora", str(source), "--vocab_dir", str(vocab_dir),
              "--output_dir", str(tmp_path / "run"), *TINY_MODEL, *QUIET])
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_a_protein_file_without_a_measured_value_is_refused_when_built(tmp_path, tokenizer, caplog):
    """An all-NaN protein file trained, then crashed with a Trainer traceback at the first evaluation."""
    folder = _pair(tmp_path, "unmeasured", proteins=("CD4", "CD19", "NotAProtein"))
    adt = ad.read_h5ad(tmp_path / "unmeasured_adt.h5ad")
    with caplog.at_level("WARNING", logger="training.corpus"):
        build_corpus(find_source(folder), tmp_path / "ok", tokenizer)  # the unmapped column is named in the log
    assert "NotAProtein" in caplog.text and "not trained on" in caplog.text
    assert "NaN in every cell" not in caplog.text and "measured none" not in caplog.text
    partly = adt.copy()
    partly.X = partly.X.toarray()
    partly.X[:, 1] = np.nan  # CD19 measured in no cell, and cell 3 measuring nothing: both trained nothing, unsaid
    partly.X[3, :] = np.nan
    partly.write_h5ad(tmp_path / "unmeasured_adt.h5ad")
    caplog.clear()
    with caplog.at_level("WARNING", logger="training.corpus"):
        build_corpus(find_source(folder), tmp_path / "partly", tokenizer)
    assert "1 mapped protein column(s) are NaN in every cell (not measured) and train nothing: CD19" in caplog.text
    assert "1 of 20 cells measured none of the mapped proteins" in caplog.text
    adt.X = np.full(adt.shape, np.nan, dtype=np.float32)
    adt.write_h5ad(tmp_path / "unmeasured_adt.h5ad")
    with pytest.raises(CorpusError, match="every protein value is NaN"):
        build_corpus(find_source(folder), tmp_path / "out", tokenizer)


def test_swapped_rna_and_protein_files_are_named_as_such(tmp_path, tokenizer, data_dir):
    """ADT:RNA passed in the wrong order trained RNA-from-ADT once --protein_sampling silenced the length error."""
    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:40].copy()
    adt = ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:40].copy()
    adt.write_h5ad(tmp_path / "swapped_rna.h5ad")
    rna.write_h5ad(tmp_path / "swapped_adt.h5ad")
    with pytest.raises(CorpusError, match=r"protein side has 19,521 columns of counts and the RNA side 49: are"):
        build_corpus(find_source(tmp_path / "swapped"), tmp_path / "out", tokenizer)
    # the RNA file as both sides (a log-normalised copy as the protein file): named, not trained as 19,521 proteins
    rna.write_h5ad(tmp_path / "twice_rna.h5ad")
    logged = rna.copy()
    logged.X = logged.X.log1p()
    logged.write_h5ad(tmp_path / "twice_adt.h5ad")
    with pytest.raises(CorpusError, match=r"19,521 single-cell columns of counts or log-normalised values.* RNA file"):
        build_corpus(find_source(tmp_path / "twice"), tmp_path / "out", tokenizer)


def test_row_numbers_as_gene_names_are_refused_naming_the_column_that_names_them(tmp_path, tokenizer, data_dir):
    """A bare array's 0..n-1 gene names after a gene filter (0, 1, 3, ...) trained as Entrez ids with no word
    (validation r 0.15 against 0.84 named)."""
    rna = ad.read_h5ad(data_dir / "eccite_ctcl_rna.h5ad")[:30].copy()
    adt = ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad")[:30].copy()
    rna.var["gene_symbols"] = list(rna.var_names)
    rna.var_names = [str(i) for i in range(rna.n_vars)]
    rna = rna[:, np.arange(rna.n_vars) % 4 != 2].copy()
    rna.write_h5ad(tmp_path / "numbered_rna.h5ad")
    adt.write_h5ad(tmp_path / "numbered_adt.h5ad")
    with pytest.raises(CorpusError, match=r"corpus numbered: the 1,088 gene names are numbers from 0 to "
                                          r"1,449 with gaps.*set adata.var_names = adata.var\['gene_symbols'\]"):
        build_corpus(find_source(tmp_path / "numbered"), tmp_path / "out", tokenizer)
    assert not (tmp_path / "out").exists()


def test_a_scaled_rna_file_trains_on_the_counts_it_keeps_or_names_the_fix(tmp_path, tokenizer, caplog):
    """sc.pp.scale's X with the counts in a layer was refused with "fill or drop those cells" (every cell is negative
    somewhere), and training corpora take no layer option."""
    folder = _pair(tmp_path, "plain")
    plain = build_corpus(find_source(folder), tmp_path / "plain_corpus", tokenizer)
    rna = ad.read_h5ad(tmp_path / "plain_rna.h5ad")
    counts = rna.X.toarray()
    for keep in ("layer", "raw"):
        scaled = ad.AnnData((counts - counts.mean(0)) / (counts.std(0) + 1), obs=rna.obs, var=rna.var)
        if keep == "layer":
            scaled.layers["counts"] = rna.X
        else:
            scaled.raw = rna
        scaled.write_h5ad(tmp_path / f"{keep}_rna.h5ad")
        (tmp_path / f"{keep}_adt.h5ad").write_bytes((tmp_path / "plain_adt.h5ad").read_bytes())
        with caplog.at_level("WARNING", logger="training.corpus"):
            built = build_corpus(find_source(tmp_path / keep), tmp_path / f"{keep}_corpus", tokenizer)
        assert "X is centred or scaled (negative values); trained on its" in caplog.text
        for split in ("train", "eval"):
            assert len(built["splits"][split]["shards"]) == len(plain["splits"][split]["shards"])
            for shard in plain["splits"][split]["shards"]:
                got, want = (pq.read_table(tmp_path / corpus / shard["file"])
                             for corpus in (f"{keep}_corpus", "plain_corpus"))
                assert got.select(["rna_indices", "rna_values"]).equals(want.select(["rna_indices", "rna_values"]))
    ad.AnnData(scaled.X, obs=rna.obs, var=rna.var).write_h5ad(tmp_path / "bare_rna.h5ad")
    (tmp_path / "bare_adt.h5ad").write_bytes((tmp_path / "plain_adt.h5ad").read_bytes())
    with pytest.raises(CorpusError, match=r"X has negative values, centred or scaled .* keeps no counts beside it "
                                          r"\(layers: none, no \.raw\).*holds the raw counts"):
        build_corpus(find_source(tmp_path / "bare"), tmp_path / "bare_corpus", tokenizer)


def test_a_log_normalised_rna_file_trains_on_the_counts_it_keeps(tmp_path, tokenizer, caplog):
    """Seurat's data slot (log-normalised X) with the counts in .raw was trained on as X: the check for antibodies at
    background, which needs counts, was skipped, and an isotype-like column trained on."""
    folder = _pair(tmp_path, "plain")
    plain = build_corpus(find_source(folder), tmp_path / "plain_corpus", tokenizer)
    rna = ad.read_h5ad(tmp_path / "plain_rna.h5ad")
    counts = rna.X.toarray()
    lognorm = ad.AnnData(np.log1p(counts / counts.sum(1, keepdims=True) * 1e4), obs=rna.obs, var=rna.var)
    lognorm.raw = rna
    lognorm.write_h5ad(tmp_path / "seurat_rna.h5ad")
    (tmp_path / "seurat_adt.h5ad").write_bytes((tmp_path / "plain_adt.h5ad").read_bytes())
    with caplog.at_level("WARNING", logger="training.corpus"):
        built = build_corpus(find_source(tmp_path / "seurat"), tmp_path / "seurat_corpus", tokenizer)
    assert "X holds normalised values, not counts; trained on its .raw" in caplog.text
    assert built["protein_at_background"] == plain["protein_at_background"]
    for shard in plain["splits"]["train"]["shards"]:
        got, want = (pq.read_table(tmp_path / corpus / shard["file"]) for corpus in ("seurat_corpus", "plain_corpus"))
        assert got.select(["rna_indices", "rna_values"]).equals(want.select(["rna_indices", "rna_values"]))


def test_empty_corpus_and_missing_files(tmp_path, tokenizer):
    source = _pair(tmp_path, "empty", n=0)
    with pytest.raises(CorpusError, match="no cells"):
        build_corpus(find_source(source), tmp_path / "out", tokenizer)
    with pytest.raises(CorpusError, match="no RNA file"):
        find_source(tmp_path / "absent")
    with pytest.raises(CorpusError, match="not a corpus"):
        load_manifest(tmp_path)


def test_too_few_cells_for_shards(tmp_path, tokenizer):
    source = _pair(tmp_path, "small", n=5)
    with pytest.raises(CorpusError, match="would be empty"):
        build_corpus(find_source(source), tmp_path / "out", tokenizer, num_shards=8)


def test_empty_shard_on_disk_is_refused(tmp_path, tokenizer):
    out = tmp_path / "corpus"
    build_corpus(find_source(_pair(tmp_path, "ok")), out, tokenizer, num_shards=4)
    shard = out / load_manifest(out)["splits"]["train"]["shards"][2]["file"]
    pq.write_table(SCHEMA.empty_table(), shard)
    with pytest.raises(CorpusError, match="is empty"):
        load_manifest(out)
    shard.unlink()
    with pytest.raises(CorpusError, match="missing"):
        load_manifest(out)


def test_shards_not_divisible_by_world_size(tmp_path, tokenizer):
    out = tmp_path / "corpus"
    build_corpus(find_source(_pair(tmp_path, "ok")), out, tokenizer, num_shards=4)
    manifest = load_manifest(out)
    check_divisible([manifest], 2)
    with pytest.raises(CorpusError, match="divisible by the number of processes \\(3\\)"):
        check_divisible([manifest], 3)
    with pytest.raises(CorpusError, match="divisible"):
        build_train_stream([manifest], rank=0, world_size=3)


def test_too_many_proteins_for_the_model(tmp_path, corpora, vocab_dir):
    with pytest.raises(CorpusError, match="exceed the model's max_proteins"):
        main(["--stage", "bulk", "--corpora", str(corpora["tcga_brca_bulk"]), "--vocab_dir", str(vocab_dir),
              "--output_dir", str(tmp_path / "run"), *TINY_MODEL, "--max_proteins", "16", *QUIET])


def test_a_misspelt_option_is_one_line_with_the_likely_one(tmp_path):
    """A typo gave HfArgumentParser's traceback ("Some specified arguments are not used")."""
    with pytest.raises(SystemExit, match=r"unknown option --max_stpes: did you mean --max_steps\?"):
        main(["--max_stpes", "3", "--output_dir", str(tmp_path)])
    config = tmp_path / "stage.yaml"
    config.write_text("max_stepz: 3\n")
    with pytest.raises(SystemExit, match=r"--max_stepz \(from .*stage.yaml\): did you mean --max_steps\?"):
        main([str(config), "--output_dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="round multiple of the evaluation steps"):
        main(["--save_steps", "5", "--eval_steps", "10", "--eval_strategy", "steps", "--load_best_model_at_end",
              "true", "--output_dir", str(tmp_path)])


def test_a_corpus_weighing_zero_is_refused_not_counted_as_fine_tuned(tmp_path, vocab_dir):
    """--corpus_weights 1 0 trained on the first corpus only, yet the card and protein_context="auto" counted the
    second panel as fine-tuned."""
    first, second = _pair(tmp_path, "first"), _pair(tmp_path, "second", proteins=("CD4", "CD8A", "CD19"))
    with pytest.raises(SystemExit, match=r"gives .*second a weight of 0: it would not be trained on; leave it out"):
        main(["--stage", "finetune", "--corpora", str(first), str(second), "--corpus_weights", "1", "0",
              "--vocab_dir", str(vocab_dir), "--output_dir", str(tmp_path / "run"), *TINY_MODEL, *QUIET])
    assert not (tmp_path / "run").exists()


def test_options_this_script_cannot_honour_are_refused_in_one_line_with_exit_2(tmp_path):
    """--do_train false trained anyway (and wrote over the folder); --gradient_checkpointing ended in a traceback from
    transformers after the corpus was built; refusals exited 1 where argument errors exit 2."""
    import subprocess
    import sys

    from ._training_helpers import RUN_STAGE, subprocess_env

    for option, message in ((["--do_train", "false"], "use `sctranslator evaluate"),
                            (["--gradient_checkpointing", "true"], "this model does not support it"),
                            (["--max_steps", "0"], "--max_steps must be positive")):
        with pytest.raises(SystemExit, match=message):
            main(["--stage", "sc", "--corpora", str(tmp_path / "none"), "--output_dir", str(tmp_path / "out"),
                  *option, *QUIET])
    run = subprocess.run([sys.executable, str(RUN_STAGE), "--stage", "sc", "--corpora", str(tmp_path / "none"),
                          "--output_dir", str(tmp_path / "out"), "--do_train", "false"],
                         env=subprocess_env(), capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("run_stage: error: --do_train false")
    assert not (tmp_path / "out").exists()


def test_a_build_never_replaces_a_folder_of_data_and_a_rewritten_file_is_built_again(tmp_path, tokenizer, data_dir):
    """A build replaced its output folder whole: building set 'pbmc' into the data root erased data/pbmc's h5ad files.
    A source file rewritten within a second at the same size kept its stale corpus (mtime in whole seconds)."""
    import shutil

    from training.corpus import prepare_corpus

    pbmc = tmp_path / "data" / "pbmc"
    pbmc.mkdir(parents=True)
    rna = ad.read_h5ad(data_dir / "tenx_pbmc10k_s200_rna.h5ad")
    adt = ad.read_h5ad(data_dir / "tenx_pbmc10k_s200_adt.h5ad")
    rna.write_h5ad(pbmc / "pbmc_rna.h5ad")
    adt.write_h5ad(pbmc / "pbmc_adt.h5ad")
    (pbmc / "README.txt").write_text("where these cells came from")
    spec = f"{pbmc / 'pbmc_rna.h5ad'}:{pbmc / 'pbmc_adt.h5ad'}"
    with pytest.raises(CorpusError, match=r"holds its source file .*pbmc_rna.h5ad: a build replaces that folder"):
        prepare_corpus(spec, tmp_path / "data", tokenizer, num_shards=2)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(pbmc, elsewhere / "pbmc_files")
    (tmp_path / "cache" / "pbmc").mkdir(parents=True)
    (tmp_path / "cache" / "pbmc" / "notes.txt").write_text("mine")
    spec = f"{elsewhere / 'pbmc_files' / 'pbmc_rna.h5ad'}:{elsewhere / 'pbmc_files' / 'pbmc_adt.h5ad'}"
    with pytest.raises(CorpusError, match=r"holds files that are no corpus \(e.g. notes.txt\)"):
        prepare_corpus(spec, tmp_path / "cache", tokenizer, num_shards=2)
    assert sorted(p.name for p in pbmc.iterdir()) == ["README.txt", "pbmc_adt.h5ad", "pbmc_rna.h5ad"]
    assert (tmp_path / "cache" / "pbmc" / "notes.txt").read_text() == "mine"

    import os

    def first_row_proteins(folder):
        manifest = load_manifest(folder)
        row = pq.read_table(folder / manifest["splits"]["train"]["shards"][0]["file"]).slice(0, 1).to_pylist()[0]
        return row["row"], np.asarray(row["protein_values"])

    built = prepare_corpus(spec, tmp_path / "corpora", tokenizer, num_shards=2)
    row, before = first_row_proteins(built)
    path = elsewhere / "pbmc_files" / "pbmc_adt.h5ad"
    stat = path.stat()
    adt.X = adt.X * 10  # the same shape and size, rewritten within the same second
    adt.write_h5ad(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert path.stat().st_size == stat.st_size and int(path.stat().st_mtime) == int(stat.st_mtime)
    fingerprint = load_manifest(built)["fingerprint"]
    rebuilt = prepare_corpus(spec, tmp_path / "corpora", tokenizer, num_shards=2)
    assert first_row_proteins(rebuilt)[0] == row
    np.testing.assert_array_equal(first_row_proteins(rebuilt)[1], before * 10)
    # review: other data, another fingerprint, so a run's checkpoints are not resumed on it
    assert load_manifest(rebuilt)["fingerprint"] != fingerprint
    # review: a corpus built before mtime_ns was recorded is still up to date (not rebuilt, its fingerprint kept)
    import json

    from training.corpus import _fingerprint

    manifest = load_manifest(rebuilt)
    manifest["source_files"] = [{k: v for k, v in f.items() if k != "mtime_ns"} for f in manifest["source_files"]]
    manifest["fingerprint"] = _fingerprint(manifest)
    (rebuilt / "manifest.json").write_text(json.dumps(manifest))
    prepare_corpus(spec, tmp_path / "corpora", tokenizer, num_shards=2)
    assert json.loads((rebuilt / "manifest.json").read_text()) == manifest
    # review: a rebuild stopped while replacing the folder leaves shards without a manifest: replaced, not refused
    (rebuilt / "manifest.json").unlink()
    (rebuilt / ".DS_Store").write_text("")
    assert load_manifest(prepare_corpus(spec, tmp_path / "corpora", tokenizer, num_shards=2))["n_cells"] > 0


def _built_with_fold_1(data_dir, tokenizer, folder):
    from training.corpus import build_corpus, find_source

    build_corpus(find_source(data_dir / "eccite_ctcl"), folder, tokenizer, num_shards=2, eval_fold=1)
    return folder


def test_a_built_corpus_refuses_split_options_it_was_not_built_with(corpora, tokenizer, data_dir, tmp_path):
    """--eval_fold 2 (cross-validation) with a built corpus folder was dropped in silence: every fold tested the same
    cells."""
    from training.corpus import prepare_corpus

    folder = corpora["eccite_ctcl"]
    assert prepare_corpus(str(folder), folder.parent, tokenizer) == folder  # its own split: taken as it is
    with pytest.raises(CorpusError, match=r"built with eval_fold 0; this run asks eval_fold 2, which only a new build "
                                          r"gives .*pass the source files"):
        prepare_corpus(str(folder), folder.parent, tokenizer, eval_fold=2)
    with pytest.raises(CorpusError, match=r"validation_fraction 0.0; this run asks validation_fraction 0.1"):
        prepare_corpus(str(folder), folder.parent, tokenizer, validation_fraction=0.1)
    # review: a folder built with another split, asked for the default split by name, was kept without a word
    other = _built_with_fold_1(data_dir, tokenizer, tmp_path / "eccite_ctcl")
    with pytest.raises(CorpusError, match=r"built with eval_fold 1; this run asks eval_fold 0"):
        prepare_corpus(str(other), other.parent, tokenizer, eval_fold=0, given_options={"eval_fold"})
    assert prepare_corpus(str(other), other.parent, tokenizer) == other  # not asked: the folder's own split
    from training.run_stage import parse_args

    _, data_args, _ = parse_args(["--stage", "sc", "--corpora", str(other), "--output_dir", str(tmp_path / "o"),
                                  "--eval_fold=0", "--use_cpu", "true"])
    assert {"eval_fold", "corpora"} <= data_args.given_options and "split_seed" not in data_args.given_options


def test_a_file_saved_genes_by_cells_is_named_as_transposed(tmp_path, tokenizer, data_dir):
    """A genes x cells table read without .T was 'unpaired cells — RNA has 19521 cells' with no hint."""
    rna = ad.read_h5ad(data_dir / "eccite_ctcl_rna.h5ad")
    adt = ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad")
    rna.T.write_h5ad(tmp_path / "t_rna.h5ad")
    adt.write_h5ad(tmp_path / "t_adt.h5ad")
    with pytest.raises(CorpusError, match=r"The RNA file's var_names are the other file's cells: .*transpose it"):
        build_corpus(find_source(f"{tmp_path / 't_rna.h5ad'}:{tmp_path / 't_adt.h5ad'}"), tmp_path / "c", tokenizer)
