"""Pipeline and CLI inference on real cells with a small model and the original vocabulary."""

from __future__ import annotations

import json
import warnings

import anndata as ad
import numpy as np
import pytest
from transformers import pipeline

from modeling_sctranslator import SCTranslatorForProteinPrediction
from modeling_sctranslator.inference import predict_proteins
from sctranslator.cli import main as cli_main
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

from ..conftest import (
    AUTO_FEATURE_EXTRACTOR_READS_THE_FOLDER,
    one_piece,
    run_without_our_packages,
    write_cellranger_h5,
    write_cellranger_mtx,
)


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir


@pytest.fixture(scope="module")
def cells(data_dir, tmp_path_factory):
    rna = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:23].copy()
    adt = ad.read_h5ad(data_dir / "eccite_adt.h5ad")[:23].copy()
    folder = tmp_path_factory.mktemp("cells")
    rna.write_h5ad(folder / "rna.h5ad")
    adt.write_h5ad(folder / "adt.h5ad")
    return rna, adt, folder


@pytest.fixture(scope="module")
def predictor(model_dir):
    return pipeline("protein-prediction", model=str(model_dir), device="cpu")


PANEL = ["CD4", "CD8A", "CD19", "CD3E", "PTPRC", "MS4A1", "CD14", "ITGAM", "NCAM1", "IL7R", "CD27", "NotAProtein"]


def test_pipeline_returns_cells_by_proteins_and_reports_unknown_names(predictor, cells):
    rna, _, _ = cells
    with pytest.warns(UserWarning, match="NotAProtein"):
        result = predictor(rna, proteins=PANEL)
    assert result.shape == (23, 11)
    assert list(result.obs_names) == list(rna.obs_names)
    assert "NotAProtein" not in result.var_names
    assert result.uns["sctranslator"]["unmapped_proteins"] == ["NotAProtein"]
    assert np.isfinite(result.X).all()



def test_the_pipeline_reads_the_tokenizer_of_its_folder_or_the_one_given(predictor, model_dir, cells, tmp_path):
    """The pipeline loads the tokenizer itself (AutoFeatureExtractor reads no vocabulary from transformers 5.25):
    the model's folder, a tokenizer object or folder passed as feature_extractor= or tokenizer=, or a clear error."""
    import shutil

    rna, _, _ = cells
    expected = predictor(rna, proteins=PANEL[:-1]).X
    assert isinstance(predictor.feature_extractor, SCTranslatorTokenizer) and predictor.tokenizer is None
    weights_only = tmp_path / "weights_only"
    weights_only.mkdir()
    for item in model_dir.iterdir():
        if item.is_file() and item.name not in ("preprocessor_config.json", "gene_vocab.json", "tokenizer_config.json"):
            shutil.copy(item, weights_only / item.name)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    for given in ({"feature_extractor": str(model_dir)}, {"tokenizer": tokenizer}):
        other = pipeline("protein-prediction", model=str(weights_only), device="cpu", **given)
        np.testing.assert_array_equal(other(rna, proteins=PANEL[:-1]).X, expected)
    bare = pipeline("protein-prediction", model=str(weights_only), device="cpu")
    with pytest.raises(ValueError, match="no tokenizer.*feature_extractor="):
        bare(rna, proteins=PANEL[:-1])


def test_one_string_of_several_names_is_refused_not_cut_to_the_first(predictor, cells):
    """proteins="CD4,CD8A" was read as one panel label, i.e. CD4 alone, CD8A lost without a word."""
    rna, _, _ = cells
    with pytest.raises(ValueError, match=r"one string with commas.*\['CD4', 'CD8A'\]"):
        predictor(rna, proteins="CD4,CD8A")
    assert list(predictor(rna, proteins="CD4").var_names) == ["CD4"]
    # a list line written into one name: read as a panel label (its first target), and said so
    with pytest.warns(UserWarning, match=r"join several names.*'CD4,CD8A'"):
        assert list(predictor(rna, proteins=["CD4,CD8A", "CD19"]).var_names) == ["CD4,CD8A", "CD19"]
    # one antigen with a slash in its name (TCR gamma/delta) was said to be a list cut to its first target
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor(rna, proteins=["TCR gamma/delta", "TCR alpha/beta"])
    assert not [w for w in caught if "join several names" in str(w.message)]
    # mass-spec protein groups (MaxQuant's "GAPDH;GAPDHS") were unmapped, "KRT8|KRT18" cut to KRT8 in silence: both
    # are read as their leading member, and said so; TCGA's SYMBOL|ENTREZ names one protein and is not
    with pytest.warns(UserWarning, match=r"join several names.*'ERBB2;ERBB3', 'KRT8\|KRT18'"):
        grouped = predictor(rna, proteins=["ERBB2;ERBB3", "KRT8|KRT18", "TP53|7157", "CD19"])
    assert list(grouped.var["gene"]) == ["ERBB2", "KRT8", "TP53", "CD19"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor(rna, proteins=["TP53|7157", "CD19", "CD4"])
    assert not [w for w in caught if "join several names" in str(w.message)]
    # a BD AbSeq label names one antigen (its gene field is PTPRC for CD45RA): it mapped right and was said to be cut
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor(rna, proteins=["CD45RA:HI100|PTPRC|AHS0009|pAbO", "CD19", "CD4"])
    assert not [w for w in caught if "join several names" in str(w.message)]



def test_a_set_of_proteins_gives_the_same_columns_every_run_and_sizes_must_be_whole_numbers(predictor, cells):
    """A set came out in the set's order (which differs between runs); batch_size="2" (read from a config file)
    ended in a TypeError deep in the batching."""
    rna, _, _ = cells
    known = PANEL[:-1]
    assert list(predictor(rna, proteins=set(known)).var_names) == sorted(known)  # 11 names: chance is nil
    for bad in ("2", 2.5, 0, True):
        with pytest.raises(ValueError, match=rf"batch_size must be a positive whole number, got {bad!r}"):
            predictor(rna, proteins=["CD4"], batch_size=bad)
    with pytest.raises(ValueError, match=r"chunk_size must be a positive whole number, got -1"):
        predictor(rna, proteins=["CD4"], chunk_size=-1)
    assert predictor(rna, proteins=["CD4"], batch_size=np.int64(4)).n_obs == rna.n_obs


def test_the_pipelines_own_batch_size_is_its_default(model_dir, cells):
    """pipeline(..., batch_size=2) was ignored (batches of the model's default), as transformers' pipelines read it."""
    rna, _, _ = cells
    small_batches = pipeline("protein-prediction", model=str(model_dir), device="cpu", batch_size=2)
    seen: list[int] = []
    hook = small_batches.model.register_forward_hook(lambda module, args, kwargs, out: seen.append(
        int(kwargs["input_ids"].shape[0])), with_kwargs=True)
    try:
        small_batches(rna[:5], proteins=["CD4"])
        assert seen == [2, 2, 1]
        seen.clear()
        small_batches(rna[:5], proteins=["CD4"], batch_size=5)  # the call's own wins
        assert seen == [5]
    finally:
        hook.remove()


def test_sparse_arrays_and_coo_matrices_give_the_csr_predictions(predictor, cells):
    """An AnnData whose X is a scipy sparse array (anndata's use_sparse_array_on_read) ended in "truth value of an
    array is ambiguous"; a COO matrix (scipy.io.mmread of a 10x .mtx) in "'coo_matrix' object is not subscriptable"."""
    import scipy.sparse as sp

    rna, _, _ = cells
    names = list(rna.var_names)
    expected = predictor(rna, proteins=PANEL[:8]).X
    as_array = rna.copy()
    as_array.X = sp.csr_array(as_array.X)
    assert np.abs(predictor(as_array, proteins=PANEL[:8]).X - expected).max() < 1e-6
    for matrix in (sp.coo_matrix(rna.X), sp.csc_array(rna.X), sp.coo_array(rna.X)):
        assert np.abs(predictor((matrix, names), proteins=PANEL[:8]).X - expected).max() < 1e-6


def test_rna_that_is_no_cells_by_genes_matrix_is_named(predictor, cells):
    """A list of cells ended in AttributeError ('list' object has no attribute 'shape'); one cell's 1-D vector was
    read as that many cells."""
    rna, _, _ = cells
    dense = np.asarray(rna.X.toarray() if hasattr(rna.X, "toarray") else rna.X)
    names = list(rna.var_names)
    with pytest.raises(TypeError, match=r"the RNA data is a list: give an AnnData or a cells x genes matrix"):
        predictor(dense[:2].tolist(), proteins=PANEL[:8], gene_names=names)
    with pytest.raises(ValueError, match=r"has shape \(\d+,\): give a cells x genes matrix \(one cell: "):
        predictor(dense[0], proteins=PANEL[:8], gene_names=names)
    one = predictor(dense[None, 0], proteins=PANEL[:8], gene_names=names)
    assert one.shape == (1, 8)


def test_a_small_panel_is_warned_about(predictor, cells):
    """Asked alone, CD4 from the shipped model correlated with measured CD4 at r 0.12 (0.85 within its panel)."""
    rna, _, _ = cells
    with pytest.warns(UserWarning, match="only 2 proteins asked for: a protein's prediction depends on the panel"):
        predictor(rna, proteins=["CD4", "CD19"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor(rna, proteins=PANEL[:10])
    assert not [w for w in caught if "asked for" in str(w.message)]

def test_small_requests_are_asked_inside_the_models_training_proteins(model_dir, cells):
    """A model that records its training proteins (config.protein_context) predicts a small request inside them
    and returns only the proteins asked: the same numbers as asking the whole context with "none" and keeping the
    request's columns; "none" asks exactly the request (and warns about its size), "model" completes any request;
    measured values (scaled over their own panel) are asked as they are."""
    from tokenization.scaling import scale_rows

    rna, adt, _ = cells
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    context_names = ["CD8A", "CD3E", "MS4A1", "CD14"]  # with the request: the tiny model's 6 proteins per pass
    model.config.protein_context = [int(t) for t in tokenizer.resolve(context_names, kind="protein").token_ids]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = predict_proteins(model, tokenizer, rna, ["CD4", "CD19"])
    assert not [w for w in caught if "asked for" in str(w.message)]  # asked inside the context: no size warning
    assert list(auto.var_names) == ["CD4", "CD19"]
    assert auto.uns["sctranslator"]["protein_context"]["proteins_added"] == len(context_names)
    whole = predict_proteins(model, tokenizer, rna, ["CD4", "CD19", *context_names], protein_context="none")
    np.testing.assert_allclose(auto.X, whole.X[:, :2], atol=1e-6)
    with pytest.warns(UserWarning, match="only 2 proteins asked for"):
        alone = predict_proteins(model, tokenizer, rna, ["CD4", "CD19"], protein_context="none")
    assert alone.uns["sctranslator"]["protein_context"]["proteins_added"] == 0
    assert not np.allclose(alone.X, auto.X)  # the panel asked changes the prediction: why the context exists
    big = predict_proteins(model, tokenizer, rna, PANEL[:10])  # 10 proteins: asked as they are
    assert big.uns["sctranslator"]["protein_context"]["proteins_added"] == 0
    forced = predict_proteins(model, tokenizer, rna, ["CD4", "CD19", "CD8A"], protein_context="model")
    assert forced.uns["sctranslator"]["protein_context"]["proteins_added"] == 3  # CD8A was asked already
    forced = predict_proteins(model, tokenizer, rna, PANEL[:10], protein_context="model")
    assert forced.uns["sctranslator"]["protein_context"]["proteins_added"] == 0  # no room in one pass of 6
    # measured values are scaled over the panel given, so that panel is asked as it is (as "none" asks it)
    with pytest.warns(UserWarning, match="only 2 proteins asked for"):
        measured = predict_proteins(model, tokenizer, rna, adt[:, ["CD4", "CD19"]].copy())
    counts = np.asarray(adt[:, ["CD4", "CD19"]].X.toarray(), dtype=np.float64)
    np.testing.assert_allclose(measured.layers["measured"], scale_rows(np.log1p(counts))[0], atol=1e-6)
    np.testing.assert_allclose(measured.X, alone.X, atol=1e-6)
    with pytest.raises(ValueError, match="'model' with measured proteins"):
        predict_proteins(model, tokenizer, rna, adt[:, ["CD4", "CD19"]].copy(), protein_context="model")
    with pytest.raises(ValueError, match="protein_context must be one of auto, model, none"):
        predict_proteins(model, tokenizer, rna, ["CD4"], protein_context="panel")
    model.config.protein_context = None
    with pytest.raises(ValueError, match="needs a model that records the proteins it learnt from"):
        predict_proteins(model, tokenizer, rna, ["CD4"], protein_context="model")


def test_a_request_inside_a_fine_tuning_panel_is_asked_inside_that_panel(model_dir, cells):
    """A fine-tuned model (config.fine_tuned_panels) asks a request held by one of its panels inside the smallest
    such panel, in the panel's own order (the MLP translator reads protein positions), whatever the request's size,
    before the training proteins; the numbers are those of the whole panel asked with "none"."""
    rna, _, _ = cells
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    ids = {name: int(t) for name, t in zip(PANEL, tokenizer.resolve(PANEL, kind="protein").token_ids, strict=True)}
    panel, wide = ["CD8A", "CD4", "CD19", "CD3E"], ["CD8A", "CD4", "CD19", "CD3E", "MS4A1", "CD14"]
    model.config.fine_tuned_panels = [[ids[n] for n in wide], [ids[n] for n in panel]]
    model.config.protein_context = [ids[n] for n in ("NCAM1", "IL7R", "CD27")]
    whole = predict_proteins(model, tokenizer, rna, panel, protein_context="none")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inside = predict_proteins(model, tokenizer, rna, ["CD19", "CD8A"])
        exact = predict_proteins(model, tokenizer, rna, panel)
    assert not [w for w in caught if "asked for" in str(w.message)]  # a panel the model was fine-tuned on
    assert list(inside.var_names) == ["CD19", "CD8A"]
    np.testing.assert_allclose(inside.X, whole.X[:, [2, 0]], atol=1e-6)
    assert inside.uns["sctranslator"]["protein_context"]["proteins_added"] == 2
    assert "fine-tuned on" in inside.uns["sctranslator"]["protein_context"]["why"]
    np.testing.assert_allclose(exact.X, whole.X, atol=1e-6)
    assert exact.uns["sctranslator"]["protein_context"]["proteins_added"] == 0
    assert exact.uns["sctranslator"]["protein_context"]["fine_tuned_panel"] is True  # said, though none was added
    from sctranslator.cli import _asked_with  # predict's summary line says so too

    assert _asked_with(exact.uns["sctranslator"]["protein_context"]) == "; asked inside the model's fine-tuning panel"
    assert "2 other proteins' predictions dropped" in _asked_with(inside.uns["sctranslator"]["protein_context"])
    # the panel's order, not the request's: asked in the request's order, the MLP translator gives other numbers
    reordered = predict_proteins(model, tokenizer, rna, ["CD19", "CD8A", "CD4", "CD3E"], protein_context="none")
    assert not np.allclose(reordered.X[:, :2], inside.X, atol=1e-4)
    # MS4A1 is only in the wider panel; NCAM1 in none: asked inside the training proteins instead
    wider = predict_proteins(model, tokenizer, rna, ["MS4A1", "CD4"])
    whole_wide = predict_proteins(model, tokenizer, rna, wide, protein_context="none")
    np.testing.assert_allclose(wider.X, whole_wide.X[:, [4, 1]], atol=1e-6)
    outside = predict_proteins(model, tokenizer, rna, ["NCAM1", "CD4"])
    assert "training panels" in outside.uns["sctranslator"]["protein_context"]["why"]
    with pytest.warns(UserWarning, match="only 2 proteins asked for"):
        bare = predict_proteins(model, tokenizer, rna, ["CD19", "CD8A"], protein_context="none")
    assert bare.uns["sctranslator"]["protein_context"]["proteins_added"] == 0
    assert bare.uns["sctranslator"]["protein_context"]["fine_tuned_panel"] is False
    with pytest.raises(ValueError, match="a list of panels"):
        type(model.config)(**{**model.config.to_dict(), "fine_tuned_panels": [ids["CD4"], ids["CD19"]]})
    model.config.protein_context = None  # "model" needs either record: a panel holding the request is one
    forced = predict_proteins(model, tokenizer, rna, ["CD19"], protein_context="model")
    np.testing.assert_allclose(forced.X[:, 0], whole.X[:, 2], atol=1e-6)


def test_the_command_line_offers_the_protein_contexts_predict_knows():
    from modeling_sctranslator.inference import PROTEIN_CONTEXTS, SMALL_PANEL
    from sctranslator.options import CONTEXT_BELOW, PROTEIN_CONTEXT_CHOICES

    assert PROTEIN_CONTEXT_CHOICES == PROTEIN_CONTEXTS and CONTEXT_BELOW == SMALL_PANEL


def test_a_protein_adata_with_extra_cells_is_refused_with_the_true_counts(predictor, cells):
    """The cells were compared chunk by chunk: extra protein cells after the RNA's passed unseen, and a mismatch
    was reported with a chunk's count instead of the file's."""
    rna, adt, _ = cells
    more = ad.concat([adt, adt[:4].copy()], index_unique="-")
    with pytest.raises(ValueError, match=r"RNA \(23 cells\) and protein \(27 cells\)"):
        predictor(rna, proteins=more, chunk_size=8)

def test_more_proteins_than_the_decoder_equals_separate_calls(predictor, cells):
    rna, _, _ = cells
    names = PANEL[:11]  # 11 > max_proteins = 6: two passes
    together = predictor(rna, proteins=names)
    first = predictor(rna, proteins=names[:6])
    second = predictor(rna, proteins=names[6:])
    np.testing.assert_array_equal(together.X, np.concatenate([first.X, second.X], axis=1))
    # 13 = 6 + 6 + 1 for this model, which reads protein positions (equal passes, 5 + 4 + 4, moved them)
    names = [*PANEL[:11], "FCGR3A", "IL2RA"]
    parts = [predictor(rna, proteins=names[i:i + 6]).X for i in (0, 6, 12)]
    np.testing.assert_array_equal(predictor(rna, proteins=names).X, np.concatenate(parts, axis=1))


def test_a_cite_seq_file_in_one_piece_is_read_as_its_two_sides(model_dir, cells, tmp_path, capsys):
    # left in, the antibody counts were read as RNA (the CD4 antibody as the CD4 gene) and swelled every cell's
    # library size: the predictions changed with no word said
    rna, adt, folder = cells
    combined = one_piece(rna, adt)
    assert set(PANEL[:5]) & set(adt.var_names) and adt.X.sum() > 0.1 * rna.X.sum()  # the test can fail
    combined.write_h5ad(tmp_path / "cite.h5ad")
    write_cellranger_h5(tmp_path / "cite.h5", combined)  # what Cell Ranger hands a CITE-seq user
    write_cellranger_mtx(tmp_path / "cite_mtx", combined)  # ... and its Matrix Market folder (GEO's usual form)
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    split = predict_proteins(model, tokenizer, rna, PANEL[:5], batch_size=16)
    with pytest.warns(UserWarning, match=r"19,521 'Gene Expression' ones are read as the RNA, 49 others are left "
                                         r"out \(Antibody Capture 49\)"):
        whole = predict_proteins(model, tokenizer, tmp_path / "cite.h5ad", PANEL[:5], chunk_size=7, batch_size=3)
    np.testing.assert_allclose(whole.X, split.X, atol=1e-6)
    with warnings.catch_warnings(record=True) as shown:  # once, not once per chunk of cells
        warnings.simplefilter("default")  # Python's own rule: a warning once per place it is raised from
        predict_proteins(model, tokenizer, tmp_path / "cite.h5ad", ad.read_h5ad(tmp_path / "cite.h5ad"), chunk_size=5)
    texts = [str(w.message) for w in shown if "anndata" not in w.filename]  # anndata's own: once per file read
    assert sum("the RNA input holds several kinds" in t for t in texts) == 1
    assert sum("the protein input holds several kinds" in t for t in texts) == 1
    assert max(texts.count(t) for t in texts) == 1, [(t[:60], texts.count(t)) for t in texts]

    # the same file as both sides of evaluate: the same metrics as the two files
    for name, (rna_file, protein_file) in {"split": ("rna.h5ad", "adt.h5ad"), "whole": ("cite.h5ad", "cite.h5ad"),
                                           "cellranger": ("cite.h5", "cite.h5"),
                                           "matrix_folder": ("cite_mtx", "cite_mtx")}.items():
        where = folder if name == "split" else tmp_path
        assert cli_main(["evaluate", "--model", str(model_dir), "--rna", str(where / rna_file), "--protein",
                         str(where / protein_file), "--json", str(tmp_path / f"{name}.json"), "--device", "cpu"]) == 0
    split_metrics = json.loads((tmp_path / "split.json").read_text())
    assert json.loads((tmp_path / "whole.json").read_text()) == split_metrics
    assert json.loads((tmp_path / "cellranger.json").read_text()) == split_metrics
    assert json.loads((tmp_path / "matrix_folder.json").read_text()) == split_metrics

    adt_only = ad.AnnData(adt.X, obs=adt.obs[[]], var=adt.var.assign(feature_types="Antibody Capture"))
    with pytest.raises(ValueError, match="every feature of this RNA input is 'Antibody Capture'.*the protein file"):
        predict_proteins(model, tokenizer, adt_only, PANEL[:5])


@pytest.mark.parametrize(("column", "rna_label", "protein_label"), [
    ("feature_types", "GEX", "ADT"),  # NeurIPS 2021 / openproblems files: refused, "no feature is Gene Expression"
    ("feature_type", "Gene Expression", "Antibody Capture"),  # singular: the antibodies were read as genes, silently
    ("feature_types", "gene expression", "antibody capture"),  # lower case: refused as the protein side
])
def test_other_feature_type_labels_tell_the_two_sides_apart(model_dir, cells, column, rna_label, protein_label):
    rna, adt, _ = cells
    combined = one_piece(rna, adt)
    labels = combined.var.pop("feature_types").map({"Gene Expression": rna_label, "Antibody Capture": protein_label})
    combined.var[column] = labels
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    split = predict_proteins(model, tokenizer, rna, adt, batch_size=16)
    with pytest.warns(UserWarning, match=rf"var\['{column}'\]\): its 49 '{protein_label}' ones are read as the "
                                         rf"protein, 19,521 others are left out \({rna_label} 19,521\)"):
        whole = predict_proteins(model, tokenizer, combined, combined, batch_size=16)
    np.testing.assert_allclose(whole.X, split.X, atol=1e-6)
    assert list(whole.var_names) == list(split.var_names)


def test_a_feature_type_column_of_gene_biotypes_is_no_modality(model_dir, cells):
    """CELLxGENE (schema 5.2+) writes each gene's biotype in var['feature_type']: read as modality labels, every
    CELLxGENE file was refused as holding no RNA."""
    rna, adt, _ = cells
    typed = rna.copy()
    typed.var["feature_type"] = np.where(np.arange(rna.n_vars) % 3, "protein_coding", "lncRNA")
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    np.testing.assert_array_equal(predict_proteins(model, tokenizer, typed, PANEL[:5]).X,
                                  predict_proteins(model, tokenizer, rna, PANEL[:5]).X)


def test_other_features_in_an_rna_file_are_left_out_or_named(model_dir, cells):
    """Antibody counts labelled in var['modality'] (GEX / ADT) were read as RNA, and ERCC spike-ins or unlabelled
    'ADT_' columns counted in every cell's library size: predictions moved up to 1.8 log1p, with no word."""
    import scipy.sparse as sp

    rna, adt, _ = cells
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    alone = predict_proteins(model, tokenizer, rna, PANEL[:5]).X
    joined = ad.concat([rna, adt], axis=1, merge="first")
    joined.obs_names = rna.obs_names
    joined.var["modality"] = ["GEX"] * rna.n_vars + ["ADT"] * adt.n_vars
    with pytest.warns(UserWarning, match=r"var\['modality'\]\): its 19,521 'GEX' ones are read as the RNA"):
        np.testing.assert_array_equal(predict_proteins(model, tokenizer, joined, PANEL[:5]).X, alone)
    from tokenization.checks import modality_columns

    joined.var["modality"] = ["rna"] * rna.n_vars + ["prot"] * adt.n_vars  # muon's names
    assert modality_columns(joined.var, "protein")[0].tolist() == list(range(rna.n_vars, joined.n_vars))

    spikes = ad.AnnData(sp.csr_matrix(np.full((rna.n_obs, 3), 200, dtype=np.float32)), obs=rna.obs.copy())
    spikes.var_names = ["ERCC-00002", "ERCC-00004", "ADT_CD3"]
    spiked = ad.concat([rna, spikes], axis=1)
    spiked.obs_names = rna.obs_names
    tokenizer.rna_transform = "log1p_cp10k"  # as the shipped model reads counts: library sizes matter
    with pytest.warns(UserWarning, match=r"3 RNA columns are named as spike-ins.*'ERCC-00002'.*library size"):
        predict_proteins(model, tokenizer, spiked, PANEL[:5])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict_proteins(model, tokenizer, rna, PANEL[:5])
    assert not any("spike-ins" in str(w.message) for w in caught)


def test_chunked_backed_file_equals_in_memory(model_dir, cells):
    rna, _, folder = cells
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    in_memory = predict_proteins(model, tokenizer, rna, PANEL[:5], chunk_size=1000, batch_size=16)
    streamed = predict_proteins(model, tokenizer, folder / "rna.h5ad", PANEL[:5], chunk_size=5, batch_size=3)
    np.testing.assert_allclose(streamed.X, in_memory.X, atol=1e-6)
    backed_view = ad.read_h5ad(folder / "rna.h5ad", backed="r")[3:17]  # a view of a backed file
    subset = predict_proteins(model, tokenizer, backed_view, PANEL[:5], chunk_size=4, batch_size=3)
    # the same cells in memory (not a slice of the full result: this model reads fewer positions than the file
    # maps genes, and which genes it keeps then depends on the input's cells, see reading_layout)
    same_cells = predict_proteins(model, tokenizer, rna[3:17].copy(), PANEL[:5], chunk_size=1000, batch_size=16)
    np.testing.assert_allclose(subset.X, same_cells.X, atol=1e-6)
    assert list(subset.obs_names) == list(rna.obs_names[3:17])


def test_pipeline_and_cli_predict_the_same(predictor, model_dir, cells, tmp_path):
    rna, _, folder = cells
    names = tmp_path / "proteins.txt"
    names.write_text("\n".join(PANEL[:8]) + "\n")
    out = tmp_path / "pred.h5ad"
    assert cli_main(["predict", "--model", str(model_dir), "--rna", str(folder / "rna.h5ad"),
                     "--proteins", str(names), "--out", str(out), "--device", "cpu"]) == 0
    from_cli = ad.read_h5ad(out)
    from_pipeline = predictor(rna, proteins=PANEL[:8])
    assert list(from_cli.var_names) == list(from_pipeline.var_names)
    np.testing.assert_array_equal(from_cli.X, from_pipeline.X)
    # --dtype bfloat16 is the pipeline's compute_dtype: the same bfloat16 products, weights left float32
    import torch

    low = tmp_path / "bf16.h5ad"
    assert cli_main(["predict", "--model", str(model_dir), "--rna", str(folder / "rna.h5ad"), "--proteins",
                     str(names), "--out", str(low), "--device", "cpu", "--dtype", "bfloat16"]) == 0
    low_pipeline = predictor(rna, proteins=PANEL[:8], compute_dtype=torch.bfloat16)
    np.testing.assert_array_equal(ad.read_h5ad(low).X, low_pipeline.X)
    assert 0 < np.abs(low_pipeline.X - from_pipeline.X).max() < 0.05
    assert next(predictor.model.parameters()).dtype == torch.float32


def test_protein_adata_targets_and_inplace(predictor, cells):
    rna, adt, _ = cells
    rna = rna.copy()
    assert predictor(rna, proteins=adt, inplace=True) is None
    table = rna.obsm["sctranslator_proteins"]
    assert table.shape[0] == 23 and "IgG1" not in table.columns  # isotype controls are not predicted
    assert "IgG1" in rna.uns["sctranslator_proteins"]["control_proteins"]
    assert "sctranslator_proteins_scaled" not in rna.obsm  # this model predicts per-cell scaled values only
    # a second run replaces the first one's table: said, not silent
    with pytest.warns(UserWarning, match=r"obsm\['sctranslator_proteins'\] held earlier predictions"):
        predictor(rna, proteins=PANEL[:11], inplace=True)
    assert list(rna.obsm["sctranslator_proteins"].columns) == PANEL[:11]


def test_the_pipeline_reads_a_layer_or_raw_as_its_errors_advise(predictor, cells, tmp_path):
    """A scaled X was refused with "pass adata.layers['counts']", and layer="counts" then raised TypeError."""
    rna, _, _ = cells
    counts = rna.X.toarray() if hasattr(rna.X, "toarray") else np.asarray(rna.X)
    scaled = ad.AnnData((counts - counts.mean(0)) / (counts.std(0) + 1), obs=rna.obs[[]], var=rna.var[[]])
    scaled.layers["counts"] = rna.X
    with pytest.raises(ValueError, match=r"looks scaled.*the pipeline reads them with layer='raw' or layer='counts'"):
        predictor(scaled, proteins=PANEL[:5])
    plain = predictor(rna, proteins=PANEL[:5])
    np.testing.assert_array_equal(predictor(scaled, proteins=PANEL[:5], layer="counts").X, plain.X)
    scaled.write_h5ad(tmp_path / "scaled.h5ad")  # a path, opened backed
    np.testing.assert_array_equal(predictor(str(tmp_path / "scaled.h5ad"), proteins=PANEL[:5], layer="counts").X,
                                  plain.X)
    with pytest.raises(ValueError, match=r"no .raw; its layers are \['counts'\]"):
        predictor(scaled, proteins=PANEL[:5], layer="raw")
    scaled.raw = rna
    assert predictor(scaled, proteins=PANEL[:5], layer="raw", inplace=True) is None  # written to the AnnData given
    np.testing.assert_array_equal(scaled.obsm["sctranslator_proteins"].to_numpy(), plain.X)
    with pytest.raises(ValueError, match=r"no layer 'spliced'; its layers are \['counts'\] \(and .raw: layer='raw'\)"):
        predictor(scaled, proteins=PANEL[:5], layer="spliced")


def test_evaluate_prints_metrics_as_the_last_json_line(model_dir, cells, tmp_path, capsys):
    _, _, folder = cells
    code = cli_main(["evaluate", "--model", str(model_dir), "--rna", str(folder / "rna.h5ad"),
                     "--protein", str(folder / "adt.h5ad"), "--json", str(tmp_path / "m.json"), "--device", "cpu"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    metrics = json.loads(last)
    assert {"mse", "cosine_similarity", "pearson_per_protein_mean", "pearson_per_protein_median",
            "pearson_per_cell_mean"} <= set(metrics)
    assert metrics["cells"] == 23 and metrics["proteins"] > 40
    assert metrics["proteins_not_predicted"]["IgG1"] == "a control (isotype, blank, hashtag)"
    assert metrics["cells_not_scored"] == 0 and "modified_forms_scored_as_total" not in metrics
    assert metrics["measured_values_missing"] == 0
    assert json.loads((tmp_path / "m.json").read_text()) == metrics


def test_evaluate_names_missing_measured_values(model_dir, cells, tmp_path, capsys):
    """A NaN in the measured proteins was left out of the scores without a word."""
    _, _, folder = cells
    adt = ad.read_h5ad(folder / "adt.h5ad")
    values = adt.X.toarray() if hasattr(adt.X, "toarray") else np.array(adt.X, dtype=float)
    values[0, :3] = np.nan
    values[1] = np.nan
    adt.X = values
    adt.write_h5ad(tmp_path / "adt_missing.h5ad")
    missing = r"are missing \(NaN or infinite; measured_values_missing\).*1 cells measured none"
    with pytest.warns(UserWarning, match=missing):
        cli_main(["evaluate", "--model", str(model_dir), "--rna", str(folder / "rna.h5ad"),
                  "--protein", str(tmp_path / "adt_missing.h5ad"), "--device", "cpu"])
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["cells_not_scored"] == 1 and metrics["measured_values_missing"] > 3


def test_evaluate_of_one_cell_writes_strict_json_and_says_what_is_undefined(model_dir, cells, tmp_path, capsys):
    """A per-protein r needs two cells: with one, its mean is undefined, written as null (NaN is not JSON, and a
    JSON reader rejected the file) and named in a warning."""
    rna, adt, _ = cells
    rna[:1].copy().write_h5ad(tmp_path / "rna1.h5ad")
    adt[:1].copy().write_h5ad(tmp_path / "adt1.h5ad")
    argv = ["evaluate", "--model", str(model_dir), "--rna", str(tmp_path / "rna1.h5ad"), "--protein",
            str(tmp_path / "adt1.h5ad"), "--json", str(tmp_path / "m.json"), "--device", "cpu"]
    with pytest.warns(UserWarning, match=r"pearson_per_protein_mean, pearson_per_protein_median.* undefined here "
                                         r"\(written as null\): a Pearson r needs at least 2 values that differ"):
        assert cli_main(argv) == 0
    text = (tmp_path / "m.json").read_text()
    metrics = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the metrics JSON"))
    assert metrics["pearson_per_protein_mean"] is None and metrics["cells"] == 1
    assert np.isfinite(metrics["pearson_per_cell_mean"])  # one cell still has a per-cell r


def test_evaluate_reads_the_adt_counts_from_a_layer(model_dir, cells, tmp_path, capsys):
    """ADT files often hold CLR values in X and the counts in a layer: --protein-layer reads them, as if the
    counts were X (the warning about signed values, given by models with the scale part, points to it)."""
    _, adt, folder = cells
    counts = np.asarray(adt.X.toarray() if hasattr(adt.X, "toarray") else adt.X, dtype=np.float32)
    log_counts = np.log1p(counts)
    clr = log_counts - log_counts.mean(axis=1, keepdims=True)  # signed, as Seurat's CLR
    ad.AnnData(clr, obs=adt.obs, var=adt.var, layers={"counts": counts}).write_h5ad(tmp_path / "clr.h5ad")
    common = ["evaluate", "--model", str(model_dir), "--rna", str(folder / "rna.h5ad"), "--device", "cpu"]
    assert cli_main([*common, "--protein", str(folder / "adt.h5ad"), "--json", str(tmp_path / "x.json")]) == 0
    assert cli_main([*common, "--protein", str(tmp_path / "clr.h5ad"), "--protein-layer", "counts",
                     "--json", str(tmp_path / "layer.json")]) == 0
    assert json.loads((tmp_path / "layer.json").read_text()) == json.loads((tmp_path / "x.json").read_text())
    capsys.readouterr()
    assert cli_main([*common, "--protein", str(tmp_path / "clr.h5ad"), "--protein-layer", "raw"]) == 2
    assert "has no layer 'raw'; its layers are ['counts']" in capsys.readouterr().err


def test_existing_output_is_kept_without_overwrite(model_dir, cells, tmp_path, capsys):
    _, _, folder = cells
    out = tmp_path / "pred.h5ad"
    out.write_bytes(b"precious")
    args = ["predict", "--model", str(model_dir), "--rna", str(folder / "rna.h5ad"),
            "--protein", str(folder / "adt.h5ad"), "--out", str(out), "--device", "cpu"]
    assert cli_main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert cli_main(args + ["--overwrite"]) == 0
    assert ad.read_h5ad(out).n_obs == 23


def test_crash_during_write_leaves_no_partial_file(model_dir, cells, tmp_path, monkeypatch):
    _, _, folder = cells
    out = tmp_path / "pred.h5ad"
    out.write_bytes(b"previous result")

    def failing_write(self, filename, *args, **kwargs):
        with open(filename, "wb") as handle:
            handle.write(b"half")
        raise OSError("No space left on device")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", failing_write)
    code = cli_main(["predict", "--model", str(model_dir), "--rna", str(folder / "rna.h5ad"),
                     "--protein", str(folder / "adt.h5ad"), "--out", str(out), "--overwrite", "--device", "cpu"])
    assert code == 2
    assert out.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["pred.h5ad"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rna", "missing.h5ad", "--proteins", "p.txt"], "does not exist"),
        (["--rna", "{rna}", "--proteins", "empty.txt"], "lists no protein names"),
        (["--rna", "{rna}", "--proteins", "bogus.txt"], "none of the 2 proteins"),
        (["--rna", "{rna}"], "say which proteins"),
        (["--rna", "cells.loom", "--proteins", "p.txt"], "cells are read from .h5ad, .h5mu, Cell Ranger .h5"),
        (["--rna", "cells.csv", "--proteins", "p.txt"], "holds 'x', not a number"),
        (["--rna", "damaged.h5", "--proteins", "p.txt"], "cannot read"),
    ],
)
def test_predict_bad_input_is_one_clear_line(model_dir, cells, tmp_path, capsys, args, message):
    _, _, folder = cells
    (tmp_path / "p.txt").write_text("CD4\n")
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    (tmp_path / "bogus.txt").write_text("NotAProtein\nAlsoNot\n")
    (tmp_path / "cells.csv").write_text("cell,CD4\nA,x\n")
    (tmp_path / "cells.loom").write_bytes(b"a loom file")
    (tmp_path / "damaged.h5").write_bytes(b"not an HDF5 file")
    args = [a.format(rna=folder / "rna.h5ad") for a in args]
    args = [str(tmp_path / a) if a.endswith((".txt", ".csv", ".h5", ".loom")) or a == "missing.h5ad" else a
            for a in args]
    code = cli_main(["predict", "--model", str(model_dir), *args, "--out", str(tmp_path / "o.h5ad")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o.h5ad").exists()


def test_saved_folder_with_tokenizer_runs_without_our_package(model_dir, cells, tmp_path):
    """Model and tokenizer code travel in the folder: trust_remote_code works where we are not installed."""
    import textwrap

    rna, _, _ = cells
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    # genes that fit the model's positions: no cut (predict_proteins would choose the most expressed genes, a
    # direct tokenizer call the first ones)
    fits = tokenizer.resolve(list(rna.var_names), kind="gene").columns[: model.config.max_genes]
    rna = rna[:, np.sort(fits)].copy()
    rna.write_h5ad(tmp_path / "rna.h5ad")
    expected = predict_proteins(model, tokenizer, rna, ["CD4", "CD19"]).X
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("modeling_sctranslator", "tokenization", "training"):
            sys.modules[name] = None
        import anndata, numpy, torch
        from transformers import AutoFeatureExtractor, AutoModel, AutoTokenizer
        model = AutoModel.from_pretrained({str(model_dir)!r}, trust_remote_code=True).eval()
        tokenizer = AutoTokenizer.from_pretrained({str(model_dir)!r}, trust_remote_code=True)
        assert type(tokenizer).__module__.startswith("transformers_modules"), type(tokenizer).__module__
        assert type(tokenizer).__name__ == "SCTranslatorTokenizer"
        if {AUTO_FEATURE_EXTRACTOR_READS_THE_FOLDER!r}:
            same = AutoFeatureExtractor.from_pretrained({str(model_dir)!r}, trust_remote_code=True)
            assert same.to_dict() == tokenizer.to_dict()
        rna = anndata.read_h5ad({str(tmp_path / "rna.h5ad")!r})
        batch = tokenizer(rna=rna, proteins=["CD4", "CD19"])  # lengths saved with the tokenizer
        with torch.no_grad():
            out = model(**{{k: v for k, v in batch.items() if k != "labels"}}).predictions
        numpy.save({str(tmp_path / "out.npy")!r}, out[:, :2].numpy())  # proteins padded to max_length
        """
    )
    run_without_our_packages(script, tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)


def test_measured_values_use_the_training_transform(model_dir, cells):
    from tokenization.tokenization_sctranslator import scale_rows

    rna, adt, _ = cells
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    result = predict_proteins(model, tokenizer, rna, adt, protein_transform="log1p")
    columns = [list(adt.var_names).index(name) for name in result.var_names]
    counts = np.asarray(adt.X.toarray() if hasattr(adt.X, "toarray") else adt.X, dtype=np.float64)
    mapped = [i for i, s in enumerate(tokenizer.resolve(list(adt.var_names), kind="protein").status) if s == "mapped"]
    expected, _ = scale_rows(np.log1p(counts[:, mapped]))  # scaled over every mapped protein of the cell
    order = [mapped.index(c) for c in columns]
    np.testing.assert_allclose(result.layers["measured"], expected[:, order], atol=1e-6)
    with pytest.raises(ValueError, match="already transformed"):
        negative = adt.copy()
        negative.X = -np.ones(adt.shape, dtype=np.float32)
        predict_proteins(model, tokenizer, rna, negative, protein_transform="log1p")


def test_two_processes_split_the_cells_and_give_the_same_file(model_dir, cells, tmp_path):
    """`torchrun --nproc_per_node 2 -m sctranslator.cli predict ...` (what accelerate launch runs)."""
    import os
    import subprocess
    import sys

    _, _, folder = cells
    names = tmp_path / "proteins.txt"
    names.write_text("CD4\nCD19\nCD14\n")
    single, double = tmp_path / "one.h5ad", tmp_path / "two.h5ad"
    args = ["predict", "--model", str(model_dir), "--rna", str(folder / "rna.h5ad"), "--proteins", str(names),
            "--device", "cpu"]
    assert cli_main([*args, "--out", str(single)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "sctranslator.cli",
         *args, "--out", str(double)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on 2 processes" in result.stdout
    one, two = ad.read_h5ad(single), ad.read_h5ad(double)
    assert list(two.obs_names) == list(one.obs_names) and list(two.var_names) == list(one.var_names)
    np.testing.assert_allclose(two.X, one.X, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no parts left behind
    # --gene-column (and --layer) are read as one process reads them: they were ignored (var_names read instead)
    renamed = ad.read_h5ad(folder / "rna.h5ad")
    renamed.var["gene_symbols"] = list(renamed.var_names)
    renamed.var_names = [f"ENSG99{i:09d}" for i in range(renamed.n_vars)]
    renamed.write_h5ad(tmp_path / "ids.h5ad")
    by_column = tmp_path / "by_column.h5ad"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "sctranslator.cli", "predict",
         "--model", str(model_dir), "--rna", str(tmp_path / "ids.h5ad"), "--gene-column", "gene_symbols",
         "--proteins", str(names), "--device", "cpu", "--out", str(by_column)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(ad.read_h5ad(by_column).X, one.X, atol=1e-6)


def test_default_batch_size_is_one_cell_for_the_full_model_on_cpu():
    import torch

    from modeling_sctranslator import SCTranslatorConfig
    from modeling_sctranslator.inference import default_batch_size

    assert default_batch_size(SCTranslatorConfig(), torch.device("cpu")) == 1  # memory-bound: fastest per cell
    tiny = SCTranslatorConfig(max_genes=64, max_proteins=6, hidden_size=16, num_attention_heads=2,
                              attention_head_dim=8, nb_random_features=12)
    assert default_batch_size(tiny, torch.device("cpu")) == 8
    assert default_batch_size(SCTranslatorConfig(), torch.device("cuda")) == 8


def test_every_chunk_of_normalised_cells_is_read_as_the_whole_input(data_dir):
    """The normalisation was told chunk by chunk: a lone last cell (the 257th at chunk_size 256) shows no common
    total, so its log1p(CPM) was read as log1p(CP10k), 1.9 log units off, with no word (here scanpy's median
    target). One reading now serves every chunk (and attention and knockout chunks). The protein scale part's
    library size is the cells' count total, recovered from the normalised values: before, it was their sum (the
    median total for every cell), and predictions in log1p counts sat up to 0.03 off those from the counts."""
    import scipy.sparse as sp

    from modeling_sctranslator import DEFAULT_MODEL_DIR

    model = SCTranslatorForProteinPrediction.from_pretrained(DEFAULT_MODEL_DIR)
    tokenizer = SCTranslatorTokenizer.from_pretrained(DEFAULT_MODEL_DIR)
    counts = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:5].copy()
    dense = counts.X.toarray().astype(np.float64)
    library = dense.sum(1, keepdims=True)  # scanpy's normalize_total: to the median total, which one cell cannot show
    log_cpm = ad.AnnData(sp.csr_matrix(np.log1p(dense / library * np.median(library)).astype(np.float32)),
                         obs=counts.obs, var=counts.var)
    proteins = ["CD4", "CD8A", "CD19", "CD14"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = predict_proteins(model, tokenizer, log_cpm, proteins, chunk_size=5)
        lone_last = predict_proteins(model, tokenizer, log_cpm, proteins, chunk_size=4)
        from_counts = predict_proteins(model, tokenizer, counts, proteins, chunk_size=5)
    np.testing.assert_allclose(lone_last.X, whole.X, atol=1e-5)
    np.testing.assert_allclose(whole.layers["scaled"], from_counts.layers["scaled"], atol=1e-4)
    np.testing.assert_allclose(whole.X, from_counts.X, atol=1e-4)


def test_protein_names_lose_the_spaces_around_them(predictor, cells):
    """' CD8A ' (a list typed by hand, or split on ', ') was predicted but kept its spaces in var_names, so
    result[:, 'CD8A'] found nothing."""
    rna, _, _ = cells
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = predictor(rna[:4], proteins=[" CD4", "CD8A ", " CD19 "])
    assert list(result.var_names) == ["CD4", "CD8A", "CD19"]



def test_constant_cells_are_counted_over_every_chunk_and_said_once(predictor, cells):
    """Each chunk of a file warned about its own constant cells: a transposed 20,000-"cell" file printed the
    warning 77 times. The counts of every chunk are now said once, with the total."""
    import scipy.sparse as sp

    rna, _, _ = cells
    empty = rna.copy()
    dense = empty.X.toarray()
    dense[[0, 5, 9, 16, 22]] = 0  # in four of the five chunks of 5 cells
    empty.X = sp.csr_matrix(dense)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor(empty, proteins=["CD4", "CD8A", "CD19", "CD14"], chunk_size=5)
    constant = [str(w.message) for w in caught if "cells have constant" in str(w.message)]
    assert len(constant) == 1 and constant[0].startswith("5 of 23 cells have constant RNA values"), constant


def test_each_predicted_protein_names_the_gene_it_was_read_as(predictor, cells):
    """The output said a name's token and route, not its gene: whether CD3 was read as CD3E (or B220 (CD45R) as
    PTPRC) could be checked only through the tokenizer."""
    rna, _, _ = cells
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = predictor(rna[:3], proteins=["CD3", "B220 (CD45R)", "HLA-DR", "CD16"])
    assert result.var["gene"].tolist() == ["CD3E", "PTPRC", "HLA-DRA", "FCGR3A"]


def test_cells_with_few_genes_are_counted_and_warned(predictor, cells):
    """A cell thinned to a few UMIs got a prediction as confident as any other's (CD3 at 280 counts from 1 UMI),
    and nothing marked it."""
    import scipy.sparse as sp

    from tokenization.checks import InputQualityWarning

    rna, _, _ = cells
    thin = rna[:6].copy()
    values = thin.X.toarray() if sp.issparse(thin.X) else np.array(thin.X)
    values[0] = 0
    values[1, np.flatnonzero(values[2])[3:]] = 0  # 3 genes left
    thin.X = sp.csr_matrix(values)
    with pytest.warns(InputQualityWarning, match=r"2 of 6 cells express fewer than 16 of the [\d,]+ genes the model "
                                                 r"reads here \(fewest: 0\).*obs\['sctranslator_genes_detected'\]"):
        result = predictor(thin, proteins=["CD4"])  # a model of 64 positions: a quarter of them
    detected = result.obs["sctranslator_genes_detected"].to_numpy()
    assert detected[0] == 0 and detected[1] <= 3 and (detected[2:] >= 16).all()  # among the 64 genes it reads


def test_bulk_samples_are_flagged_without_naming_the_shipped_model(model_dir, data_dir):
    model = SCTranslatorForProteinPrediction.from_pretrained(model_dir)
    tokenizer = SCTranslatorTokenizer.from_pretrained(model_dir)
    bulk = ad.read_h5ad(data_dir / "tcga_rppa_rnaseq_rna.h5ad")[:5].copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict_proteins(model, tokenizer, bulk, ["EGFR", "ERBB2", "CDH1", "VIM", "KRT8", "ACTB"])
    said = [str(w.message) for w in caught if "look like bulk" in str(w.message)]
    assert len(said) == 1 and "at most 64 genes of each sample" in said[0] and "sctranslator-base" not in said[0]
    assert "unless fine-tuned on paired bulk data" in said[0]


def test_repeated_cell_names_warn_that_the_pairing_is_by_position(predictor, cells):
    """Two lanes with the same barcodes, concatenated in one order for the RNA and the other for the proteins, were
    paired lane 1 with lane 2 in silence (CD3 r 0.17): names that repeat cannot confirm the pairing, and it says so."""
    rna, adt, _ = cells
    lanes_rna = ad.concat([rna[:10], rna[10:20]])
    lanes_adt = ad.concat([adt[10:20], adt[:10]])
    names = [f"AAAC{i}-1" for i in range(10)] * 2
    lanes_rna.obs_names, lanes_adt.obs_names = names, names
    with pytest.warns(UserWarning, match=r"10 cell names repeat \(e.g. 'AAAC0-1'\): the RNA and protein cells are "
                                         r"paired by position"):
        predictor(lanes_rna, proteins=lanes_adt)


def test_a_pipeline_loaded_in_bfloat16_says_it_casts_every_weight(model_dir):
    """pipeline(..., dtype=torch.bfloat16), transformers' own argument, put every weight in bfloat16 in silence, where
    the README's bfloat16 (compute_dtype) keeps the weights and precision-sensitive steps in float32."""
    import torch

    with pytest.warns(UserWarning, match=r"weights are bfloat16 .*compute_dtype=torch.bfloat16"):
        pipeline("protein-prediction", model=str(model_dir), device="cpu", dtype=torch.bfloat16)


def test_inplace_on_a_view_says_the_parent_gets_nothing(predictor, cells):
    """pred(full[:30], inplace=True) wrote into a copy anndata made of the view; the parent got nothing, and only
    anndata's 'initializing view as actual' hinted at it."""
    rna, _, _ = cells
    full = rna.copy()
    with pytest.warns(UserWarning, match=r"inplace=True on a view .*gets nothing"):
        predictor(full[:10], proteins=PANEL[:4], inplace=True)
    assert "sctranslator_proteins" not in full.obsm
