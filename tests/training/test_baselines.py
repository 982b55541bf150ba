"""The peers (training.baselines): the field's HVG rule, scikit-learn ridge/k-NN with missing values,
bulk corpora scored on their own scale, and quality.py on a pair outside the built-in list."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from training import baselines as bl


def test_seurat_hvg_ranks_dispersion_within_mean_bins():
    rng = np.random.default_rng(0)
    n_cells, n_genes = 300, 60
    means = np.repeat([0.5, 5.0, 50.0], n_genes // 3)  # three expression levels
    counts = rng.poisson(means, size=(n_cells, n_genes)).astype(float)
    planted = [3, 27, 45]  # one over-dispersed gene per level, same mean: half the cells at 2x, half at 0
    for g in planted:
        counts[:, g] = rng.poisson(means[g] * 2 * (rng.random(n_cells) < 0.5))
    x_log = np.log1p(counts)
    top = bl.seurat_hvg(sp.csr_matrix(x_log), 3)
    assert sorted(top.tolist()) == planted  # a raw-variance rule would pick the highly expressed genes
    allowed = np.ones(n_genes, bool)
    allowed[27] = False
    assert 27 not in bl.seurat_hvg(x_log, 10, candidates=allowed)


def test_ridge_fits_each_protein_on_the_cells_that_measured_it():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(80, 5))
    y = z @ rng.normal(size=(5, 3)) + 0.1 * rng.normal(size=(80, 3))
    y_missing = y.copy()
    y_missing[:30, 1] = np.nan  # an antibody missing from one cohort's array
    pred = bl.ridge(z[:60], y_missing[:60], z[60:], alpha=1.0)
    assert np.isfinite(pred).all()
    alone = bl.ridge(z[30:60], y[30:60, 1:2], z[60:], alpha=1.0)
    np.testing.assert_allclose(pred[:, 1:2], alone, atol=1e-10)
    np.testing.assert_allclose(pred[:, [0, 2]], bl.ridge(z[:60], y[:60][:, [0, 2]], z[60:]), atol=1e-10)
    assert np.isfinite(bl.knn(z[:60], y_missing[:60], z[60:], k=5)).all()


def test_rna_on_log_scale_by_kind():
    counts = sp.csr_matrix(np.array([[1.0, 3.0, 0.0], [2.0, 0.0, 2.0]]))
    np.testing.assert_allclose(bl.rna_on_log_scale(counts).toarray(), bl.log_normalise(counts).toarray())
    log_values = sp.csr_matrix(np.array([[0.5, 2.25, 0.0]]))
    np.testing.assert_array_equal(bl.rna_on_log_scale(log_values).toarray(), log_values.toarray())


def test_bulk_corpus_ridge_scores_every_protein_on_its_own_scale(corpora):
    from training.ridge_baseline import ridge_baseline

    result = ridge_baseline(corpora["tcga_brca_bulk"])
    assert result["protein_values"] == "signed" and result["rna_values"] == "log"  # RPPA, log RNA
    scored = result["log_scale"]["proteins_evaluated"]
    assert scored + len(result["proteins_not_scored"]) == result["proteins"] > 100
    assert scored == result["proteins"]  # nothing lost to log1p of negative RPPA values
    assert result["log_scale"]["pearson_per_protein_mean"] > 0.2


def test_quality_runs_on_a_pair_outside_the_built_in_list(tmp_path, data_dir):
    """quality.py --data RNA:PROTEIN runs the benchmark protocol on any pair and prints the same table."""
    import shutil

    from benchmarks.quality import main

    source = tmp_path / "mine"
    source.mkdir()
    for suffix in ("rna", "adt"):
        shutil.copy(data_dir / f"eccite_ctcl_{suffix}.h5ad", source / f"ctcl_pilot_{suffix}.h5ad")
    out = tmp_path / "out"
    # the table goes to a folder nothing has made yet (a fresh clone has no benchmarks/results/)
    report = main(["--data", f"{source / 'ctcl_pilot_rna.h5ad'}:{source / 'ctcl_pilot_adt.h5ad'}", "--no_scratch",
                   "--no_totalvi", "--n_genes", "200", "--base_model", "--finetune_steps", "0",
                   "--json", str(out / "q.json"), "--md", str(out / "tables" / "q.md"),
                   "--plots", str(out), "--workdir", str(out / "work")])
    assert list(report["sets"]) == ["ctcl_pilot"]
    metrics = report["sets"]["ctcl_pilot"]["metrics"]
    peers = {"ridge_pca", "knn_pca", "ridge_pca_allgenes"}
    assert {"own_mrna", *peers, *(p + "_scaled_target" for p in peers)} <= set(metrics)  # every fit on both targets
    # --finetune_steps 0: the pre-trained model zero-shot only, nothing fine-tuned
    assert "sctranslator_base_zero_shot" in metrics and not any("finetuned" in m for m in metrics)
    table = (out / "tables" / "q.md").read_text()
    assert "| ctcl_pilot |" in table and "zero-shot only" in table.splitlines()[0]
    assert json.loads((out / "q.json").read_text())["sets"]["ctcl_pilot"]["n_cells"] == 173
    with pytest.raises(SystemExit):
        main(["--data", f"{source / 'ctcl_pilot_rna.h5ad'}:a:b"])  # not a pair: a clear argparse error
    from benchmarks.quality import user_pairs

    # NAME_rna.h5ad alone: the protein file beside it; one CITE-seq .h5ad: both sides in it (it was refused)
    assert user_pairs([str(source / "ctcl_pilot_rna.h5ad")]) == {
        "ctcl_pilot": (source / "ctcl_pilot_rna.h5ad", source / "ctcl_pilot_adt.h5ad")}
    shutil.copy(source / "ctcl_pilot_rna.h5ad", tmp_path / "cite.h5ad")
    assert user_pairs([str(tmp_path / "cite.h5ad")]) == {"cite": (tmp_path / "cite.h5ad", tmp_path / "cite.h5ad")}
    # the results never go over the data read (--md was the RNA file: replaced by the table, exit 0)
    before = (source / "ctcl_pilot_rna.h5ad").read_bytes()
    with pytest.raises(SystemExit):
        main(["--data", f"{source / 'ctcl_pilot_rna.h5ad'}:{source / 'ctcl_pilot_adt.h5ad'}", "--no_scratch",
              "--no_totalvi", "--json", str(out / "q2.json"), "--md", str(source / "ctcl_pilot_rna.h5ad")])
    assert (source / "ctcl_pilot_rna.h5ad").read_bytes() == before and not (out / "q2.json").exists()


def test_quality_compares_models_with_and_without_the_protein_scale_part(tmp_path, data_dir):
    """--base_model --scale_head: (b) twice, the same way, with and without the scale part; the part's model is
    scored on its own log1p-count output and the table shows the difference with its interval."""
    from benchmarks.quality import main

    out = tmp_path / "out"
    pair = f"{data_dir / 'eccite_ctcl_rna.h5ad'}:{data_dir / 'eccite_ctcl_adt.h5ad'}"
    report = main(["--data", pair, "--no_scratch", "--no_totalvi", "--n_genes", "200", "--base_model",
                   "--scale_head", "--finetune_steps", "6", "--json", str(out / "q.json"), "--md", str(out / "q.md"),
                   "--plots", str(out), "--workdir", str(out / "work")])
    result = report["sets"]["eccite_ctcl"]
    with_part, without = "sctranslator_base_finetuned_scale", "sctranslator_base_finetuned"
    assert {with_part, without} <= set(result["metrics"])
    gap = result["scale_part_minus_without"][without]
    assert set(gap) == {"log1p", "scaled"} and all(len(g["ci95"]) == 2 for g in gap.values())
    # its scaled predictions are those of the model without the part (same training); log1p is its own output
    assert gap["scaled"]["difference"] == pytest.approx(0.0, abs=1e-6)
    assert result["metrics"][with_part]["log1p"]["mse"] < result["metrics"][without]["log1p"]["mse"]
    assert result["methods"][with_part]["scale_loss_history"] is not None  # logged every 50 steps: none in 6
    markdown = (out / "q.md").read_text()
    assert "With the protein scale part minus without" in markdown
    # only the pre-trained model was trained: the header gives its recipe, not the unused from-scratch budget
    header = markdown.splitlines()[0]
    assert "fine-tuned (b): best of at most 6 steps" in header and "models:" not in header


@pytest.mark.slow
def test_quality_cross_validation_scores_every_cell_once(tmp_path, data_dir):
    """--folds K: every method once per fold (fine-tuning on the corpus builder's fold, checked against the
    benchmark's), the pooled held-out predictions scored (each cell once, never by a model that saw it); a
    pre-trained model that was trained on the set is refused (its training cells would be test cells)."""
    import shutil

    from benchmarks.quality import main

    source = tmp_path / "mine"
    source.mkdir()
    for suffix in ("rna", "adt"):  # a name the shipped model was not pre-trained on
        shutil.copy(data_dir / f"eccite_ctcl_{suffix}.h5ad", source / f"ctcl_pilot_{suffix}.h5ad")
    out = tmp_path / "out"
    common = ["--no_scratch", "--no_totalvi", "--n_genes", "200", "--json", str(out / "q.json"),
              "--md", str(out / "q.md"), "--plots", str(out), "--workdir", str(out / "work")]
    pair = f"{source / 'ctcl_pilot_rna.h5ad'}:{source / 'ctcl_pilot_adt.h5ad'}"
    result = main(["--data", pair, *common, "--folds", "2", "--base_model", "--finetune_steps", "2"])["sets"]
    result = result["ctcl_pilot"]
    assert result["n_eval"] == result["n_cells"] == 173
    assert [f["n_eval"] for f in result["folds"]] == [86, 87]
    assert [f["methods"]["sctranslator_base_finetuned"]["steps"] for f in result["folds"]] == [2, 2]
    # pooled in each fold's cell order: predictions misaligned with their cells would correlate at ~0
    assert result["metrics"]["ridge_pca"]["log1p"]["pearson_per_protein_mean"] > 0.1
    assert result["metrics"]["sctranslator_base_finetuned"]["scaled"]["pearson_per_protein_mean"] > 0.1
    assert "2-fold cross-validation" in (out / "q.md").read_text()
    with pytest.raises(SystemExit):  # the shipped model was pre-trained on eccite_ctcl's training cells
        main(["--sets", "eccite_ctcl", *common, "--folds", "5", "--base_model"])


def test_gene_selection_benchmark_reports_what_each_rule_leaves_the_models(tmp_path):
    """benchmarks/gene_selection.py: per set and rule, genes expressed per training cell and genes shared with the
    other sets, in its printout's JSON; each rule keeps one name per token."""
    from benchmarks.gene_selection import main
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
    from training.paired_data import GENE_RULES, VOCAB_DIR, load_set, select_genes

    result = main(["--sets", "eccite_ctcl", "tenx_pbmc10k_s200", "--json", str(tmp_path / "g.json")])
    assert json.loads((tmp_path / "g.json").read_text())["sets"] == result["sets"]
    for row in result["sets"].values():
        for rule in GENE_RULES:
            assert 0 < row[f"{rule}_expressed_per_cell"] <= row[f"{rule}_genes"] <= 1024
            assert 0 <= row[f"{rule}_selected_elsewhere"] <= 1
    # tenx's file holds 16,727 genes: Seurat's rule favours genes few cells express, the variance rule common ones
    tenx = result["sets"]["tenx_pbmc10k_s200"]
    assert tenx["seurat_expressed_per_cell"] < tenx["variance_expressed_per_cell"]
    data = load_set("tenx_pbmc10k_s200", SCTranslatorTokenizer.from_original_tables(VOCAB_DIR), 200)
    for rule in GENE_RULES:
        tokens = data.gene_tokens[select_genes(data, 1024, rule)]
        assert len(set(tokens.tolist())) == len(tokens) == 1024 and (tokens >= 0).all()
    with pytest.raises(ValueError, match="must be one of"):
        select_genes(data, 10, "dispersion")
    from benchmarks.quality import main as quality

    with pytest.raises(SystemExit):  # zero-shot scores the stage-2 model: nothing to score without --pretrain
        quality(["--sets", "tenx_pbmc10k_s200", "--zero_shot_only", "--json", str(tmp_path / "q.json")])


def test_benchmark_choices_never_look_at_held_out_cells(data_dir, tokenizer):
    """Genes, PCs and fits come from the training cells only: changing every held-out cell's RNA leaves
    the selected genes and the training-cell PC scores unchanged."""
    import dataclasses

    from training.paired_data import load_set, select_genes

    data = load_set("eccite", tokenizer)
    genes = select_genes(data, 300).copy()
    rng = np.random.default_rng(0)
    shuffled = data.rna_values.toarray()
    shuffled[data.eval] = rng.permutation(shuffled[data.eval].T).T * rng.integers(1, 5, size=(len(data.eval), 1))
    other = dataclasses.replace(data, rna_values=sp.csr_matrix(shuffled))
    np.testing.assert_array_equal(select_genes(other, 300), genes)
    x, y = data.rna_log[:, genes], other.rna_log[:, genes]
    z_train, _ = bl.principal_components(x[data.train], x[data.eval], 20)
    z_train_other, _ = bl.principal_components(y[other.train], y[other.eval], 20)
    np.testing.assert_allclose(np.abs(z_train), np.abs(z_train_other), atol=1e-9)


def test_left_out_set_scores_split_proteins_by_whether_a_training_panel_measured_them():
    """(c)'s per-protein r, split into proteins some other single-cell panel measured and proteins only an untrained
    embedding knows; a protein never detected in the held-out cells is left out of both, as evaluate() leaves it."""
    from benchmarks.quality import by_training_panels

    rng = np.random.default_rng(0)
    y = np.log1p(rng.poisson(5.0, size=(40, 4)).astype(float))
    y[:, 3] = 0.0  # never detected: no r
    pred = np.column_stack([y[:, 0], -y[:, 1], y[:, 2], rng.random(40)])  # protein 1 predicted backwards
    split = by_training_panels(pred, y, ["A", "B", "C", "D"], np.array([10, 11, 12, 13]), {10, 13}, pred_log1p=pred)
    on, off = split["on_other_single_cell_panels"], split["on_no_other_single_cell_panel"]
    assert on["proteins"] == 1 and off["proteins"] == 2  # D is on a panel but undetected here
    assert on["log1p"] == pytest.approx(1.0) and off["log1p"] == pytest.approx(0.0, abs=1e-12)  # (-1 + 1) / 2
    assert not split["per_protein"]["B"]["on_other_single_cell_panels"]
    assert split["per_protein"]["B"]["log1p"] == pytest.approx(-1.0)
    assert split["per_protein"]["D"]["log1p"] is None and split["per_protein"]["D"]["on_other_single_cell_panels"]


def test_the_best_peer_is_one_that_predicts_the_panel_and_gaps_are_on_the_proteins_both_predict():
    """own_mRNA scores only proteins whose gene the file has (3 of 14 in pbmc1k): its mean over those 3 was taken as
    the best peer's and subtracted from the model's mean over all 14. The best peer is one that predicts the whole
    panel, and a gap is over the proteins both predict."""
    import numpy as np

    from benchmarks.quality import compare_with_peers

    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 1.0, size=(60, 6))
    model = y + rng.normal(0, 1.0, size=y.shape)
    own = np.full_like(y, np.nan)
    own[:, :2] = y[:, :2] + rng.normal(0, 0.1, size=(60, 2))  # excellent on its 2 proteins, none on the others
    ridge = y + rng.normal(0, 2.0, size=y.shape)
    preds = {"sctranslator_base_zero_shot": model, "own_mrna": own, "ridge_pca": ridge}
    results = {"own_mrna": {s: {"pearson_per_protein_mean": 0.99} for s in ("log1p", "scaled")},
               "ridge_pca": {s: {"pearson_per_protein_mean": 0.5} for s in ("log1p", "scaled")}}
    gaps = compare_with_peers(preds, results, y, {})
    assert gaps["log1p"]["best_peer"] == "ridge_pca" and gaps["log1p"]["proteins_compared"] == 6
    assert gaps["log1p"]["sctranslator_base_zero_shot"]["difference"] > 0
    del preds["ridge_pca"], results["ridge_pca"]  # a partial peer alone: compared on its own proteins only
    gaps = compare_with_peers(preds, results, y, {})
    assert gaps["log1p"]["best_peer"] == "own_mrna" and gaps["log1p"]["proteins_compared"] == 2
    assert np.isfinite(gaps["log1p"]["sctranslator_base_zero_shot"]["difference"])
    assert gaps["log1p"]["sctranslator_base_zero_shot"]["difference"] < 0  # own mRNA is better on its 2


def test_the_benchmark_reads_protein_counts_where_x_holds_clr(tmp_path, data_dir, vocab_dir):
    """quality.py scored an ADT file's CLR values (X) as log1p counts, its counts layer unread, while evaluate and the
    corpora read the counts: the same data gave other numbers, and a flipped verdict. The corpora's reader serves it."""
    import anndata as ad
    import numpy as np

    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
    from training.paired_data import load_set

    tokenizer = SCTranslatorTokenizer.from_original_tables(vocab_dir)
    adt = ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad")
    counts = adt.X.toarray().astype(np.float32)
    plain = load_set("eccite_ctcl", tokenizer, data_dir=data_dir)
    for name, x, layer in (("clr_layer", np.log1p(counts / np.exp(np.log1p(counts).mean(0, keepdims=True))), True),
                           ("clr_only", np.log1p(counts / np.exp(np.log1p(counts).mean(0, keepdims=True))), False)):
        changed = adt.copy()
        changed.X = x
        if layer:
            changed.layers["counts"] = counts
        changed.write_h5ad(tmp_path / f"{name}_adt.h5ad")
        with pytest.warns(UserWarning, match="counts" if layer else "CLR-normalised"):
            data = load_set(name, tokenizer, rna_path=data_dir / "eccite_ctcl_rna.h5ad",
                            protein_path=tmp_path / f"{name}_adt.h5ad")
        assert data.protein_kind == "counts"
        np.testing.assert_array_equal(data.protein_values, plain.protein_values)


def test_a_panel_whose_genes_the_file_lacks_is_benchmarked_without_own_mrna(tmp_path, data_dir):
    """pbmc1k's 630 genes hold neither CD4 nor CD19: own mRNA predicted nothing and the run ended in a traceback
    (no valid target). It is left out of the table, and the notes say why."""
    import anndata as ad

    from benchmarks.quality import main

    rna = ad.read_h5ad(data_dir / "pbmc1k_protein_v3_rna.h5ad")
    assert not {"CD4", "CD19"} & set(rna.var_names)
    adt = ad.read_h5ad(data_dir / "pbmc1k_protein_v3_adt.h5ad")
    rna.write_h5ad(tmp_path / "twop_rna.h5ad")
    panel = [n for n in adt.var_names if n.split("_")[0] in ("CD4", "CD19")]
    adt[:, panel].copy().write_h5ad(tmp_path / "twop_adt.h5ad")
    report = main(["--data", f"{tmp_path / 'twop_rna.h5ad'}:{tmp_path / 'twop_adt.h5ad'}", "--no_scratch",
                   "--no_totalvi", "--base_model", "--finetune_steps", "0", "--workdir", str(tmp_path / "work"),
                   "--json", str(tmp_path / "q.json"), "--md", str(tmp_path / "q.md"), "--plots", str(tmp_path)])
    result = report["sets"]["twop"]
    assert "own_mrna" not in result["metrics"] and "ridge_pca" in result["metrics"]
    assert any("own_mrna: not scored" in note for note in result["notes"])


def test_a_set_of_ones_own_named_as_a_pre_training_set_is_warned_about(tmp_path, data_dir):
    """pbmc1k_protein_v3 given with --data scored the shipped model 'zero-shot' on cells it was pre-trained on (every
    one of them), without a word."""
    from benchmarks.quality import main

    pair = f"{data_dir / 'pbmc1k_protein_v3_rna.h5ad'}:{data_dir / 'pbmc1k_protein_v3_adt.h5ad'}"
    from training.model_card import sets_pretrained_with_every_cell

    # the benchmark's sets had their test cells left out of pre-training: the same files given with --data are held out
    every_cell = sets_pretrained_with_every_cell("sctranslator-base")
    assert "pbmc1k_protein_v3" in every_cell and "eccite" not in every_cell
    with pytest.warns(UserWarning, match=r"--data pbmc1k_protein_v3: the model .* was pre-trained on every cell of a "
                                         r"set of that name"):
        main(["--data", pair, "--no_scratch", "--no_totalvi", "--base_model", "--finetune_steps", "0", "--n_genes",
              "200", "--workdir", str(tmp_path / "work"), "--json", str(tmp_path / "q.json"), "--md",
              str(tmp_path / "q.md"), "--plots", str(tmp_path)])


def test_benchmark_results_are_strict_json_with_null_for_undefined_numbers(tmp_path):
    """quality.py's JSON held bare NaN (a mean of no Pearson r), which strict parsers (JSON.parse, jq) reject."""
    import numpy as np

    from benchmarks.output import write_result

    path = write_result(tmp_path / "r.json", {"r": float("nan"), "per_protein": np.array([0.5, np.nan]),
                                              "n": np.int64(3), "inf": np.float32(np.inf)})
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON")) == {
        "r": None, "per_protein": [0.5, None], "n": 3, "inf": None}
