"""The pre-trained default model shipped in the package: loads offline, predicts unseen cells, fine-tunes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR, DEFAULT_MODEL_NAME, resolve_model_name

from ..conftest import shared_path


@pytest.fixture(scope="module")
def eccite_test_cells():
    """ECCITE-seq held-out cells of the benchmark split (80/20, seed 0): never seen in pre-training."""
    import anndata as ad

    data = shared_path("data")
    rna = ad.read_h5ad(data / "eccite_rna.h5ad")
    adt = ad.read_h5ad(data / "eccite_adt.h5ad")
    order = np.random.default_rng(0).permutation(rna.n_obs)
    test = np.sort(order[: int(round(rna.n_obs * 0.2))])
    return rna[test].copy(), adt[test].copy()


def test_the_shipped_folder_is_a_small_complete_hf_folder():
    from sctranslator.hub import check_model_folder

    config = check_model_folder(DEFAULT_MODEL_DIR, require_card=True)
    assert config["translator_type"] == "cross_attention"
    total = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir())
    assert total <= 30 * 2**20, f"the shipped model is {total / 2**20:.1f} MiB"
    card = (DEFAULT_MODEL_DIR / "README.md").read_text()
    for section in ("## Training data", "## Evaluation", "## Limitations"):
        assert section in card
    summary = json.loads((DEFAULT_MODEL_DIR / "pretrain_summary.json").read_text())
    assert summary["corpus"]["eccite"]["benchmark_test_cells_left_out"] == 100
    # the saved tokenizer's default length is the model's (it was the original's 20,000 for a 2,048-gene model)
    tokenizer_defaults = json.loads((DEFAULT_MODEL_DIR / "preprocessor_config.json").read_text())
    assert tokenizer_defaults["max_length"] == config["max_genes"]


def test_automodel_loads_it_offline_in_float32_with_untrained_ids_zeroed():
    import torch
    from transformers import AutoModel

    import modeling_sctranslator  # noqa: F401

    model = AutoModel.from_pretrained(DEFAULT_MODEL_DIR)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    tokens = json.loads((DEFAULT_MODEL_DIR / "trained_tokens.json").read_text())
    table = model.encoder.gene_embedding.weight
    trained = torch.zeros(table.shape[0], dtype=torch.bool)
    trained[tokens["genes"]] = True
    assert (table[~trained] == 0).all() and (table[trained].abs().sum(dim=1) > 0).all()


def test_the_default_name_resolves_to_the_folder(tmp_path, monkeypatch):
    assert resolve_model_name(None) == str(DEFAULT_MODEL_DIR)
    assert resolve_model_name(DEFAULT_MODEL_NAME) == str(DEFAULT_MODEL_DIR)
    monkeypatch.chdir(tmp_path)
    (tmp_path / DEFAULT_MODEL_NAME).mkdir()  # a local folder of that name wins, as for any model id
    assert resolve_model_name(DEFAULT_MODEL_NAME) == DEFAULT_MODEL_NAME


def test_pipeline_without_a_model_predicts_unseen_cells(eccite_test_cells):
    from transformers import pipeline

    import modeling_sctranslator  # noqa: F401
    from modeling_sctranslator.metrics import protein_prediction_metrics

    rna, adt = eccite_test_cells
    predictor = pipeline("protein-prediction", device="cpu")
    result = predictor(rna, proteins=adt, protein_transform="log1p")
    assert result.n_obs == 100 and result.n_vars >= 40
    # inplace keeps both scales too (the scaled values were not stored anywhere)
    rna = rna.copy()
    predictor(rna, proteins=adt, protein_transform="log1p", inplace=True)
    np.testing.assert_array_equal(rna.obsm["sctranslator_proteins"].to_numpy(), result.X)
    np.testing.assert_array_equal(rna.obsm["sctranslator_proteins_scaled"].to_numpy(), result.layers["scaled"])
    info = result.uns["sctranslator"]
    # the shipped model has the protein scale part: log1p counts in X, per-cell scaled values beside them
    assert info["output_scale"] == "log1p_counts" and "scaled" in result.layers
    assert info["gene_layout"]["kind"] == "set" and info["gene_layout"]["input_genes_outside"] > 0
    # without fine-tuning, on cells it never saw (ECCITE's test cells; its 400 training cells, from the same lab
    # and panel, were in pre-training): far above chance on both scales (the shipped model's own numbers are in
    # its card and the README)
    log1p = protein_prediction_metrics(result.X, result.layers["measured"])
    scaled = protein_prediction_metrics(result.layers["scaled"], result.layers["measured_scaled"])
    assert log1p["pearson_per_protein_mean"] > 0.3 and scaled["pearson_per_protein_mean"] > 0.3
    counts = adt[:, list(result.var_names)].X
    counts = counts.toarray() if hasattr(counts, "toarray") else np.asarray(counts)
    np.testing.assert_allclose(result.layers["measured"], np.log1p(counts), rtol=1e-5)


def test_a_protein_asked_alone_is_predicted_as_well_as_inside_a_panel(eccite_test_cells):
    """Asked alone, the shipped model's CD4 on ECCITE's held-out cells anti-correlated with measured CD4 (the decoder
    attends across the proteins asked, and a lone protein is no panel the model learnt from). It now asks small
    requests inside the proteins its panels measured: CD4 alone, or in the README's four, is the same prediction,
    and correlates well."""
    from modeling_sctranslator.inference import predict_proteins
    from modeling_sctranslator.metrics import pearson_per_protein
    from modeling_sctranslator.modeling_sctranslator import SCTranslatorForProteinPrediction
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    rna, adt = eccite_test_cells
    model = SCTranslatorForProteinPrediction.from_pretrained(DEFAULT_MODEL_DIR)
    tokenizer = SCTranslatorTokenizer.from_pretrained(DEFAULT_MODEL_DIR)
    assert len(model.config.protein_context) > 100  # the proteins of its nine single-cell panels
    measured = np.log1p(adt[:, ["CD4"]].X.toarray()).ravel()
    alone = predict_proteins(model, tokenizer, rna, ["CD4"])
    four = predict_proteins(model, tokenizer, rna, ["CD4", "CD8A", "CD19", "HLA-DR"])
    np.testing.assert_allclose(alone.X[:, 0], four[:, "CD4"].X[:, 0], atol=1e-5)
    assert pearson_per_protein(alone.X, measured[:, None])[0] > 0.7
    with pytest.warns(UserWarning, match="only 1 protein asked for"):
        bare = predict_proteins(model, tokenizer, rna, ["CD4"], protein_context="none")
    assert pearson_per_protein(bare.X, measured[:, None])[0] < 0.3


def test_cli_predict_without_model(eccite_test_cells, tmp_path, capsys):
    import anndata as ad

    from sctranslator.cli import main

    rna, _ = eccite_test_cells
    rna[:10].copy().write_h5ad(tmp_path / "cells.h5ad")
    (tmp_path / "proteins.txt").write_text("CD4\nCD19\nCD14\n")
    assert main(["predict", "--rna", str(tmp_path / "cells.h5ad"), "--proteins", str(tmp_path / "proteins.txt"),
                 "--out", str(tmp_path / "pred.h5ad")]) == 0
    pred = ad.read_h5ad(tmp_path / "pred.h5ad")
    assert list(pred.var_names) == ["CD4", "CD19", "CD14"] and pred.n_obs == 10
    assert np.isfinite(pred.X).all()
    added = pred.uns["sctranslator"]["protein_context"]["proteins_added"]
    assert added > 100 and f"asked with {added} of the model's training proteins" in capsys.readouterr().out


def test_bulk_samples_are_named_with_what_the_model_reads_of_them(eccite_test_cells):
    """CPTAC tumours: 13,459 genes detected per sample, of which the model reads 2,048, and a single-cell model at
    chance on them; nothing was said. Single cells are not flagged."""
    import warnings

    import anndata as ad
    from transformers import pipeline

    predictor = pipeline("protein-prediction")
    bulk = ad.read_h5ad(shared_path("data") / "cptac_coad_rna.h5ad")[:6].copy()
    with pytest.warns(UserWarning, match=r"look like bulk RNA samples \(13,4\d\d of 13,482 genes detected.*at most "
                                         r"2,048 genes of each sample; a typical sample detects 11,4\d\d more.*"
                                         r"single-cell model"):
        predictor(bulk, proteins=["EGFR", "ERBB2", "CDH1", "VIM", "KRT8", "ACTB", "GAPDH", "TP53", "MKI67", "CD44"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor(eccite_test_cells[0][:20], proteins=eccite_test_cells[1][:20])
    assert not any("bulk" in str(w.message) for w in caught)


def test_a_protein_matrix_passed_as_rna_is_flagged(eccite_test_cells):
    """CITE-seq files come in pairs, and swapping them is easy: the ADT panel's antibody names map a few dozen
    genes, which the default model (reading expressed genes) would predict from without a word."""
    import warnings

    from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR as folder
    from modeling_sctranslator.inference import predict_proteins
    from modeling_sctranslator.modeling_sctranslator import SCTranslatorForProteinPrediction
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    rna, adt = eccite_test_cells
    model = SCTranslatorForProteinPrediction.from_pretrained(folder).eval()
    tokenizer = SCTranslatorTokenizer.from_pretrained(folder)

    def few_genes_warnings(cells) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predict_proteins(model, tokenizer, cells[:5].copy(), ["CD4"])
        return [str(w.message) for w in caught if "a transcriptome gives thousands" in str(w.message)]

    swapped = few_genes_warnings(adt)
    assert len(swapped) == 1 and "pass it as the proteins" in swapped[0], swapped
    assert few_genes_warnings(rna) == []


def test_a_copy_loads_with_trust_remote_code_alone(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    folder = tmp_path / "copy"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    assert model.config.translator_type == "cross_attention"
    assert tokenizer.rna_transform == "log1p_cp10k"


@pytest.mark.slow
def test_finetune_config_starts_from_the_shipped_model(tmp_path, data_dir):
    from training.run_stage import main as run_stage

    out = tmp_path / "tuned"
    config_file = Path(__file__).resolve().parents[2] / "training" / "configs" / "finetune.yaml"
    summary = run_stage([str(config_file), "--corpora", str(data_dir / "eccite_ctcl"),
                         "--output_dir", str(out), "--max_steps", "4", "--eval_steps", "2", "--save_steps", "2",
                         "--use_cpu", "true", "--disable_tqdm", "true"])
    assert summary["global_step"] == 4
    config = json.loads((out / "config.json").read_text())
    shipped = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert config["hidden_size"] == shipped["hidden_size"] and config["translator_type"] == "cross_attention"
    assert json.loads((out / "preprocessor_config.json").read_text())["rna_transform"] == "log1p_cp10k"
    # the panel it was fine-tuned on, as training asked it, so predict asks requests inside it
    import anndata as ad

    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    adt = ad.read_h5ad(data_dir / "eccite_ctcl_adt.h5ad")
    is_control = adt.var["is_control"].astype(bool).tolist() if "is_control" in adt.var else None
    report = SCTranslatorTokenizer.from_pretrained(out).resolve(list(adt.var_names), kind="protein",
                                                                is_control=is_control)
    assert config["fine_tuned_panels"] == [[int(t) for t in report.kept_token_ids]]
    assert f"Fine-tuned on 1 protein panel\n({len(report.kept_token_ids)} proteins)" in (out / "README.md").read_text()
    assert shipped.get("fine_tuned_panels") is None


def test_proteins_and_genes_the_model_never_trained_are_reported(eccite_test_cells, tokenizer_of_default):
    from transformers import AutoModel

    from modeling_sctranslator.inference import predict_proteins

    tokens = set(json.loads((DEFAULT_MODEL_DIR / "trained_tokens.json").read_text())["proteins"])
    candidates = ["OR2A4", "OR1A1", "TAS2R38", "OR5A1", "OR8B12"]
    report = tokenizer_of_default.resolve(candidates, kind="protein")
    never = [n for n, t in zip(candidates, report.token_ids, strict=True) if t and int(t) not in tokens]
    assert never, "every candidate protein was trained; pick others"
    rna, _ = eccite_test_cells
    model = AutoModel.from_pretrained(DEFAULT_MODEL_DIR)
    with pytest.warns(UserWarning, match="never trained by this model"):
        result = predict_proteins(model, tokenizer_of_default, rna[:5], ["CD4", never[0]])
    info = result.uns["sctranslator"]
    assert info["untrained_proteins"] == [never[0]]
    assert 0 <= info["genes_never_trained"] < rna.n_vars
    # attention maps and knockout effects of such a protein said nothing of it either
    from interpretation.attention import attention_analysis
    from interpretation.knockout import knockout_analysis

    proteins = ["CD4", "CD8A", "CD19", "CD14", never[0]]
    with pytest.warns(UserWarning, match="never trained by this model"):
        maps = attention_analysis(model, tokenizer_of_default, rna[:3], proteins, genes=["CD4", "CD8A"])
    assert maps.untrained_proteins == [never[0]]
    assert maps.to_anndata().uns["sctranslator_attention"]["untrained_proteins"] == [never[0]]
    with pytest.warns(UserWarning, match="never trained by this model"):
        effects = knockout_analysis(model, tokenizer_of_default, rna[:3], proteins, genes=["CD4"])
    assert effects.untrained_proteins == [never[0]]


@pytest.fixture(scope="module")
def tokenizer_of_default():
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    return SCTranslatorTokenizer.from_pretrained(DEFAULT_MODEL_DIR)


def test_evaluate_on_a_bulk_pair_reads_it_as_bulk(tmp_path):
    """RPPA values (signed) are scored as they are and log RNA is read as log values, as stage 1 trained:
    no count-data warning, every mapped protein scored."""
    import warnings

    from sctranslator.cli import main

    data = shared_path("data")
    out = tmp_path / "bulk.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["evaluate", "--rna", str(data / "tcga_brca_bulk_rna.h5ad"),
                     "--protein", str(data / "tcga_brca_bulk_rppa.h5ad"), "--json", str(out)]) == 0
    quality = [str(w.message) for w in caught if w.category.__name__ == "InputQualityWarning"]
    # the shared TCGA file keeps 200 genes, and it is bulk, which this single-cell model predicts at chance: that,
    # and nothing else, is worth a word
    assert len(quality) == 2 and "gene-selected file" in quality[0], quality
    assert "look like bulk RNA samples (200 of 200 genes detected" in quality[1]
    assert "sctranslator-base is a single-cell model" in quality[1] and "left out" not in quality[1]
    metrics = json.loads(out.read_text())
    assert metrics["protein_transform"] == "auto" and metrics["cells_evaluated"] == 150
    assert metrics["proteins_evaluated"] == metrics["proteins"] > 100
    # what the scores leave out is named: unmapped antibodies, and phospho forms scored as their total protein
    assert len(metrics["proteins_not_predicted"]) == 142 - metrics["proteins"] and not metrics["proteins_not_scored"]
    phospho = metrics["modified_forms_scored_as_total"]
    assert "A-Raf_pS299" in phospho and "Caspase-7_cleavedD198" in phospho and "Akt" not in phospho
    assert metrics["total_forms_only"]["proteins_evaluated"] == metrics["proteins"] - len(phospho)
    # ... and said when they are predicted: a phospho-site's prediction is its total protein's
    modified = [str(w.message) for w in caught if "name a modified form" in str(w.message)]
    assert len(modified) == 1 and f"{len(phospho)} of the proteins asked" in modified[0]


def test_genes_the_model_never_learnt_do_not_move_its_predictions(eccite_test_cells, tokenizer_of_default):
    """A mapped gene outside the learnt set has a zero embedding, yet its value entered every cell's scaling: with
    the mitochondrial genes mapped (by HGNC's names; no training set had them mapped) held-out predictions moved by
    up to 0.6. Such genes are left out now, as they were absent in training; the metadata counts them."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp
    from transformers import AutoModel

    from modeling_sctranslator.inference import predict_proteins

    rna, _ = eccite_test_cells
    rna = rna[:20].copy()
    learnt = set(json.loads((DEFAULT_MODEL_DIR / "gene_layout.json").read_text())["token_ids"])
    # mapped genes the model never learnt, not in the file (it holds the mitochondrial genes already)
    present = set(rna.var_names)
    extra = [name for token, name in tokenizer_of_default.vocab.token_names().items()
             if token not in learnt and name.startswith("MT-") and name not in present][:3]
    extra += [name for token, name in tokenizer_of_default.vocab.token_names().items()
              if token not in learnt and name.isalnum() and name not in present][: 3 - len(extra)]
    assert len(extra) == 3 and all(t and t not in learnt for t in tokenizer_of_default.convert_genes_to_ids(extra))
    counts = sp.csr_matrix(np.random.default_rng(0).poisson(200.0, (rna.n_obs, len(extra))).astype(np.float32))
    # the same counts (one library size) named as genes nowhere in the vocabulary, and as mapped, unlearnt genes
    unnamed, named = (ad.concat([rna, ad.AnnData(counts, obs=rna.obs[[]], var=pd.DataFrame(index=names))], axis=1)
                      for names in (["NOT_A_GENE_1", "NOT_A_GENE_2", "NOT_A_GENE_3"], extra))
    assert list(named.var_names[-3:]) == extra
    model = AutoModel.from_pretrained(DEFAULT_MODEL_DIR)
    plain = predict_proteins(model, tokenizer_of_default, unnamed, ["CD4", "CD8A", "CD19", "CD14"])
    more = predict_proteins(model, tokenizer_of_default, named, ["CD4", "CD8A", "CD19", "CD14"])
    np.testing.assert_allclose(more.layers["scaled"], plain.layers["scaled"], atol=1e-5)
    assert more.uns["sctranslator"]["gene_layout"]["input_genes_outside"] == (
        plain.uns["sctranslator"]["gene_layout"]["input_genes_outside"] + 3)


def test_the_readmes_lower_level_example_predicts_what_predict_does(eccite_test_cells):
    """The README's tokenizer + model example, run as written: it read genes the model never learnt (and up to
    the tokenizer's 20,000 positions) and gave predictions up to 0.14 away from ``predict``'s on ECCITE cells."""
    import re
    import warnings

    from modeling_sctranslator.inference import predict_proteins
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"Lower level:\s*```python\n(.*?)```", readme, re.S).group(1)
    rna = eccite_test_cells[0][:30].copy()
    scope = {"rna": rna, "print": lambda *args: None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(example, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
        expected = predict_proteins(scope["model"], SCTranslatorTokenizer.from_pretrained(DEFAULT_MODEL_DIR), rna,
                                    ["CD4", "CD19"], protein_context="none")  # the tokenizer asks exactly these
    assert scope["report"].protein.mapped == ["CD4", "CD19"]
    np.testing.assert_allclose(scope["predictions"].numpy(), expected.layers["scaled"], atol=1e-5)


def test_float16_counts_of_deep_cells_predict_what_float32_counts_do(eccite_test_cells):
    """A float16 matrix (a common memory saving) summed its cells' counts in float16: above 65,504 per cell the
    library size overflowed to inf and the predictions were NaN, with exit code 0."""
    from transformers import pipeline

    import modeling_sctranslator  # noqa: F401

    rna = eccite_test_cells[0][:4].copy()
    dense = rna.X.toarray() if hasattr(rna.X, "toarray") else np.asarray(rna.X)
    rna.X = (dense * 32).astype(np.float32)  # deeper cells; integers up to 2,048 times 32 are exact in float16
    assert dense.max() <= 2048 and (rna.X.sum(axis=1) > 65504).all()
    predictor = pipeline("protein-prediction", device="cpu")
    reference = predictor(rna, proteins=["CD3", "CD4", "CD8", "CD19"])
    half = rna.copy()
    half.X = rna.X.astype(np.float16)
    result = predictor(half, proteins=["CD3", "CD4", "CD8", "CD19"])
    assert np.isfinite(result.X).all()
    np.testing.assert_allclose(result.X, reference.X, rtol=1e-5, atol=1e-5)


def test_a_file_subset_to_highly_variable_genes_is_flagged(eccite_test_cells):
    """scanpy workflows often keep only the highly variable genes; the default model reads every expressed gene and
    loses accuracy on such a subset (measured in the warning), so it says so and how to give all genes."""
    import warnings

    from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR as folder
    from modeling_sctranslator.inference import predict_proteins
    from modeling_sctranslator.modeling_sctranslator import SCTranslatorForProteinPrediction
    from tokenization.checks import InputQualityWarning
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    rna, _ = eccite_test_cells
    model = SCTranslatorForProteinPrediction.from_pretrained(folder).eval()
    tokenizer = SCTranslatorTokenizer.from_pretrained(folder)
    variances = (rna.X.toarray() if hasattr(rna.X, "toarray") else np.asarray(rna.X)).var(axis=0)

    def subset_warnings(cells) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predict_proteins(model, tokenizer, cells[:5].copy(), ["CD4", "CD8A", "CD19"])
        return [str(w.message) for w in caught
                if issubclass(w.category, InputQualityWarning) and "gene-selected file" in str(w.message)]

    selected = subset_warnings(rna[:, np.argsort(-variances)[:1000]])
    assert len(selected) == 1 and "adata.raw" in selected[0], selected
    assert subset_warnings(rna) == []


def test_the_gene_subset_benchmark_scores_each_input_of_each_set(tmp_path):
    """benchmarks/gene_subsets.py (it measured the numbers the predict warning quotes): the shipped model on the
    benchmark's test cells, from all genes and from the top highly variable ones, on both scales, in its JSON."""
    from benchmarks.gene_subsets import main

    shared_path("data", "tenx_pbmc10k_s200_rna.h5ad")  # skips where the shared data are absent (outside CI)
    result = main(["--sets", "tenx_pbmc10k_s200", "--sizes", "300", "--json", str(tmp_path / "subsets.json")])
    assert json.loads((tmp_path / "subsets.json").read_text())["rows"] == result["rows"]
    assert [(row["input"], row["genes"]) for row in result["rows"]] == [("all genes", 16727),
                                                                        ("300 highly variable", 300)]
    for row in result["rows"]:
        assert -1 <= row["log1p"] <= 1 and -1 <= row["scaled"] <= 1
    with pytest.raises(SystemExit):
        main(["--sizes", "0", "--json", str(tmp_path / "x.json")])


def test_the_protein_context_benchmark_scores_requests_bare_and_inside_the_training_proteins(tmp_path):
    """benchmarks/protein_context.py (it measured the numbers the README quotes for small requests): random requests
    of the benchmark's test cells' proteins, asked bare and inside the model's training proteins, and the whole
    panel, in its JSON."""
    from benchmarks.protein_context import main

    shared_path("data", "tenx_pbmc10k_s200_rna.h5ad")  # skips where the shared data are absent (outside CI)
    result = main(["--sets", "tenx_pbmc10k_s200", "--sizes", "1", "--draws", "2",
                   "--json", str(tmp_path / "context.json")])
    assert json.loads((tmp_path / "context.json").read_text())["rows"] == result["rows"]
    assert [(row["request"], row["draws"]) for row in result["rows"]] == [("1 proteins", 2), ("whole panel", 1)]
    for row in result["rows"]:
        assert -1 <= row["bare"] <= 1 and -1 <= row["inside_training_proteins"] <= 1
    with pytest.raises(SystemExit):
        main(["--draws", "0", "--json", str(tmp_path / "x.json")])


def test_knockout_of_a_small_request_is_on_the_predictions_predict_gives(eccite_test_cells):
    """A knock-out of CD4's gene on CD4 alone compares with the prediction predict gives for CD4 (asked inside the
    model's training proteins), not with a bare one-protein request predict no longer makes."""
    from interpretation import knockout_analysis
    from modeling_sctranslator.inference import predict_proteins
    from modeling_sctranslator.modeling_sctranslator import SCTranslatorForProteinPrediction
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    rna = eccite_test_cells[0][:20].copy()
    model = SCTranslatorForProteinPrediction.from_pretrained(DEFAULT_MODEL_DIR)
    tokenizer = SCTranslatorTokenizer.from_pretrained(DEFAULT_MODEL_DIR)
    result = knockout_analysis(model, tokenizer, rna, ["CD4"], ["CD4"])
    predicted = predict_proteins(model, tokenizer, rna, ["CD4"]).layers["scaled"][:, 0]
    row = result.effects.query("group == 'all'").iloc[0]
    assert row["mean_unperturbed"] == pytest.approx(float(predicted.mean()), abs=1e-5)
    bare = predict_proteins(model, tokenizer, rna, ["CD4"], protein_context="none").layers["scaled"][:, 0]
    assert abs(float(bare.mean()) - row["mean_unperturbed"]) > 1e-3  # the context changes it: the test can fail
    # a fine-tuned model asks CD4 inside its panel, where CD4 is not first: the knock-out reads CD4's column there
    panel = [int(t) for t in tokenizer.resolve(["CD19", "CD8A", "CD4", "CD14"], kind="protein").token_ids]
    model.config.fine_tuned_panels = [panel]
    result = knockout_analysis(model, tokenizer, rna, ["CD4"], ["CD4"])
    predicted = predict_proteins(model, tokenizer, rna, ["CD4"]).layers["scaled"][:, 0]
    assert result.effects.query("group == 'all'").iloc[0]["mean_unperturbed"] == pytest.approx(
        float(predicted.mean()), abs=1e-5)
    first = predict_proteins(model, tokenizer, rna, ["CD19"]).layers["scaled"][:, 0]
    assert abs(float(first.mean()) - float(predicted.mean())) > 1e-3  # the panel's first column is another protein
