"""Counts, log values, linear normalised values and signed values are told apart, and a tokenizer that
log-normalises counts reads each kind the way its training corpora were read."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from tokenization.value_kinds import clr_counts, to_log_scale, value_kind

GENES = ["CD4", "TP53", "PTPRC", "CD8A", "ACTB", "GAPDH", "CD19", "MS4A1"]


def _counts(n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.poisson(4.0, size=(n, len(GENES))).astype(np.float32) + (np.arange(len(GENES)) % 3 == 0)


def _cp10k(counts: np.ndarray) -> np.ndarray:
    return counts / counts.sum(axis=1, keepdims=True) * 1e4


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.array([[0, 3, 12], [1, 0, 250]]), "counts"),
        (np.log1p(np.array([[0.0, 3.0, 12.0]])), "log"),
        (np.array([[0.0, 1500.5, 20.25]]), "linear"),
        (np.array([[-0.31, 0.2, np.nan]]), "signed"),  # RPPA, TMT log ratios (NaN: not measured)
        (np.array([[2.0, np.nan, 5.0]]), "counts"),  # NaN is ignored
        (sp.csr_matrix(np.array([[0, 2.5, 0], [0, 0, 7.75]])), "log"),  # sparse: the stored values
    ],
)
def test_value_kind(values, kind):
    assert value_kind(values) == kind


def test_to_log_scale_by_kind():
    counts = np.array([[0.0, 3.0], [9.0, np.nan]])
    assert np.allclose(to_log_scale(counts), np.log1p(counts), equal_nan=True)
    rppa = np.array([[-0.5, 0.25]])
    assert to_log_scale(rppa) is not None and np.array_equal(to_log_scale(rppa), rppa)
    with pytest.raises(ValueError, match="value kind"):
        to_log_scale(counts, "tpm")


@pytest.fixture
def log_tokenizer(original_tokenizer):
    import copy

    tok = copy.deepcopy(original_tokenizer)
    tok.rna_transform = "log1p_cp10k"
    return tok


def _encode(tok, x):
    """Input values, report and quality warnings of cells ``x`` over the first ``x.shape[1]`` of GENES."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, report = tok(x, gene_names=GENES[: x.shape[1]], return_tensors="np", return_report=True,
                          max_length=x.shape[1])
    quality = [str(w.message) for w in caught if w.category.__name__ == "InputQualityWarning"]
    return out["input_values"], report, quality


def _single_cell_counts(n: int = 6) -> np.ndarray:
    """Counts shaped like single-cell data: mostly zeros (5 of the 8 genes undetected in each cell)."""
    counts = _counts(n)
    detected = (np.arange(len(GENES))[None, :] - np.arange(counts.shape[0])[:, None]) % len(GENES) < 3
    return counts * detected


def test_counts_log_values_and_cp10k_of_the_same_cells_encode_alike(log_tokenizer):
    counts = _counts()
    from_counts, report, warned = _encode(log_tokenizer, counts)
    assert report.rna_values == "raw counts -> log1p(CP10k)" and not warned
    from_log, report, warned = _encode(log_tokenizer, np.log1p(_cp10k(counts)))
    assert report.rna_values == "log values, read as they are" and not warned  # as bulk corpora are trained
    np.testing.assert_allclose(from_log, from_counts, atol=1e-6)
    # dense, mostly non-zero values (bulk TPM, RSEM): log1p, as the bulk corpora were read
    from_cp10k, report, warned = _encode(log_tokenizer, sp.csr_matrix(_cp10k(counts)))
    assert report.rna_values == "linear normalised values -> log1p"
    assert len(warned) == 1 and "normalised but not logged" in warned[0]
    np.testing.assert_allclose(from_cp10k, from_counts, atol=1e-6)


def test_single_cells_normalised_to_another_total_are_brought_to_cp10k(log_tokenizer):
    """log1p(CPM) read as log1p(CP10k) sat 4.6 log units off (100x) with no word: every cell summing to one
    total says how the values were normalised, and they are brought to log1p(CP10k) exactly."""
    counts = _single_cell_counts()
    from_counts, _, _ = _encode(log_tokenizer, counts)
    cpm = _cp10k(counts) * 100
    from_log_cpm, report, warned = _encode(log_tokenizer, sp.csr_matrix(np.log1p(cpm)))
    assert report.rna_values == "log1p of values normalised to 1,000,000 per cell -> log1p(CP10k)" and not warned
    np.testing.assert_allclose(from_log_cpm, from_counts, atol=1e-6)
    from_cpm, report, warned = _encode(log_tokenizer, cpm)
    assert report.rna_values == "values normalised to 1,000,000 per cell -> log1p(CP10k)" and not warned
    np.testing.assert_allclose(from_cpm, from_counts, atol=1e-6)
    # a gene subset of normalised values: the total is unknown, read as before (log values as they are) ...
    _, report, _ = _encode(log_tokenizer, np.log1p(cpm)[:, :5])
    assert report.rna_values == "log values, read as they are"
    # ... and linear ones, each cell a multiple of counts, as log1p with a warning
    _, report, warned = _encode(log_tokenizer, _cp10k(counts)[:, :5] * 3)
    assert report.rna_values == "linear normalised values -> log1p"
    assert len(warned) == 1 and "normalised but not logged" in warned[0]


def test_values_logged_in_base_2_or_10_and_lone_cells_are_brought_to_cp10k(log_tokenizer):
    """log2(CPM + 1) (a common export) was read as log1p(CP10k) values, and a lone log1p(CPM) cell too (one cell
    shows no common total): predictions off with no word. The base is found from the common total, and a lone
    cell summing to 10,000 or 1,000,000 is taken as normalised to it."""
    counts = _single_cell_counts()
    from_counts, _, _ = _encode(log_tokenizer, counts)
    cpm = _cp10k(counts) * 100
    from_log2, report, warned = _encode(log_tokenizer, sp.csr_matrix(np.log2(cpm + 1)))
    assert report.rna_values == "log2(x+1) of values normalised to 1,000,000 per cell -> log1p(CP10k)" and not warned
    np.testing.assert_allclose(from_log2, from_counts, atol=1e-6)
    from_log10, report, _ = _encode(log_tokenizer, np.log10(_cp10k(counts) + 1))
    assert report.rna_values == "log10(x+1) of values normalised to 10,000 per cell -> log1p(CP10k)"
    np.testing.assert_allclose(from_log10, from_counts, atol=1e-6)
    lone, report, _ = _encode(log_tokenizer, np.log1p(cpm[:1]))
    assert report.rna_values == "log1p of values normalised to 1,000,000 per cell -> log1p(CP10k)"
    np.testing.assert_allclose(lone, _encode(log_tokenizer, counts[:1])[0], atol=1e-6)
    # a lone cell with another total (a gene subset's share of its CPM) tells nothing: read as before, and said to
    # be off the scale
    _, report, warned = _encode(log_tokenizer, np.log1p(cpm[:1] * 0.6))
    assert report.rna_values == "log values, read as they are"
    assert len(warned) == 1 and "exceed log1p(10,000)" in warned[0]


def test_logged_counts_that_were_never_normalised_are_read_as_their_counts(log_tokenizer):
    """sc.pp.log1p run without normalize_total (or log2(x + 1) of counts): read as log1p(CP10k) values as they were,
    predictions sat up to 2 log units off, with no word. Their counts are exact: read as counts, library size too."""
    rng = np.random.default_rng(5)
    counts = (_single_cell_counts(24) * rng.integers(1, 40, size=(24, 1))).astype(np.float32)  # depths differ
    counts[np.arange(24), (counts > 0).argmax(axis=1)] = 1  # and a gene counted once in each cell, as in scRNA
    from_counts, _, _ = _encode(log_tokenizer, counts)
    for logged, words in ((np.log1p(counts), "log1p"), (sp.csr_matrix(np.log2(counts + 1)), "log2(x+1)")):
        values, report, warned = _encode(log_tokenizer, logged)
        assert report.rna_values == f"{words} of raw counts (not normalised) -> log1p(CP10k)" and not warned
        np.testing.assert_allclose(values, from_counts, atol=1e-6)
        covariates = log_tokenizer(logged, gene_names=GENES, return_tensors="np", return_cell_scale=True,
                                   max_length=len(GENES))["cell_covariates"]
        np.testing.assert_allclose(covariates[:, 0], np.log1p(counts.sum(axis=1)), rtol=1e-5)
    # log1p(CP10k) of the same cells stays a normalised reading (its unlogged values are not whole)
    assert _encode(log_tokenizer, np.log1p(_cp10k(counts)))[1].rna_values == "log values, read as they are"


@pytest.mark.parametrize("name", ["eccite", "pbmc10k_protein_v3"])
def test_normalised_gene_subsets_are_not_read_as_logged_counts(data_dir, name):
    """Review: unlogged, log1p(CPM) and log2(CPM + 1) values are large, and float32's tolerance let them pass as whole:
    gene subsets of them were read as logged counts (log10 worst), their values divided by 9 without a word."""
    import anndata as ad

    from tokenization.matrix import Matrix

    cells = ad.read_h5ad(data_dir / f"{name}_rna.h5ad")[:300]
    counts = sp.csr_matrix(cells.X, dtype=np.float64)
    counts = counts[np.asarray(counts.sum(axis=1)).ravel() > 0]
    cpm = sp.diags(1e6 / np.asarray(counts.sum(axis=1)).ravel()) @ counts
    kept = np.random.default_rng(0).permutation(counts.shape[1])[: int(0.9 * counts.shape[1])]
    for values in (cpm.log1p(), sp.csr_matrix(cpm.log1p() / np.log(2))):
        subset = sp.csr_matrix(values[:, kept], dtype=np.float32)
        assert not Matrix(subset, "rna", "log1p_cp10k").choose_reading().logged_counts
    whole = Matrix(sp.csr_matrix(counts.log1p(), dtype=np.float32), "rna", "log1p_cp10k").choose_reading()
    assert whole.logged_counts and whole.done == "log1p of raw counts (not normalised) -> log1p(CP10k)"


def test_library_size_of_normalised_cells_is_their_count_total(log_tokenizer):
    """The protein scale part reads each cell's library size, learnt from counts. Values normalised per cell
    summed to the normalisation total instead (1e6 for every CPM cell: 13.8 in log1p against 7-10 for counts);
    now each cell's count total is recovered, whichever base the values were logged in, also for a cell whose
    smallest count is 2 or 3."""
    counts = _single_cell_counts()
    assert counts[counts > 0].min() >= 1 and sorted({int(c[c > 0].min()) for c in counts}) != [1]

    def library(x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the subset below: "normalised but not logged", a constant cell
            out = log_tokenizer(x, gene_names=GENES, return_tensors="np", return_cell_scale=True,
                                max_length=len(GENES))
        return out["cell_covariates"][:, 0]

    expected = np.log1p(counts.sum(axis=1))
    np.testing.assert_allclose(library(counts), expected, rtol=1e-6)
    cpm = _cp10k(counts) * 100
    log1p_cp10k = np.log1p(_cp10k(counts)).astype(np.float32)
    for normalised in (cpm, sp.csr_matrix(np.log1p(cpm)), np.log2(cpm + 1), log1p_cp10k):
        np.testing.assert_allclose(library(normalised), expected, rtol=1e-5)
    # a gene subset of normalised values shows no common total: summed as given, as before
    np.testing.assert_allclose(library(np.hstack([cpm[:, :5], np.zeros((len(cpm), 3))])),
                               np.log1p(cpm[:, :5].sum(axis=1)), rtol=1e-6)


def test_ambient_corrected_counts_are_log_normalised_like_counts(log_tokenizer):
    """SoupX/DecontX counts (non-integer, totals differ, no multiple of counts) were read as log1p of the values,
    without library-size normalisation: 2.4 log units off. They are counts, and normalised as counts are."""
    counts = _single_cell_counts() * 20.0
    corrected = np.where(counts > 0, counts - np.random.default_rng(0).uniform(0, 0.5, counts.shape), 0.0)
    from_corrected, report, warned = _encode(log_tokenizer, corrected)
    assert report.rna_values == "non-integer counts (as corrected for ambient RNA) -> log1p(CP10k)"
    assert len(warned) == 1 and "ambient RNA" in warned[0]
    expected = np.log1p(_cp10k(corrected))
    lo, hi = expected.min(1, keepdims=True), expected.max(1, keepdims=True)
    np.testing.assert_allclose(from_corrected, (expected - lo) / (hi - lo) * (1 - 1e-8) + 1e-8, atol=1e-6)
    # the same values dense and mostly non-zero (bulk): read as log1p, as the bulk corpora were
    _, report, _ = _encode(log_tokenizer, _counts() * 20.0 - 0.3)
    assert report.rna_values == "linear normalised values -> log1p"


def test_a_model_that_reads_values_as_given_still_warns_about_log_values(original_tokenizer):
    assert original_tokenizer.rna_transform == "none"
    _, report, warned = _encode(original_tokenizer, np.log1p(_counts()))
    assert report.rna_values == "as given"
    assert len(warned) == 1 and "look log-normalised" in warned[0] and "raw counts" in warned[0]


@pytest.mark.parametrize("axis", [0, 1])
def test_clr_normalised_adt_gives_its_counts_back_or_none(data_dir, axis):
    """Seurat's and muon's CLR, log1p(x / geometric mean), along either margin and computed in float32 as those
    tools do, gives back exactly the counts it came from, on real panels. What cannot be told for certain gives
    None, never a guess (reviews found a subset read x40, another pseudocount x2, centred values any offset)."""
    import anndata as ad

    many = ad.read_h5ad(data_dir / "eccite_adt.h5ad").X.toarray().astype(np.float32)
    for counts in (many, many[:60]):
        values = np.log1p(counts / np.exp(np.log1p(counts).mean(axis=axis, keepdims=True)))
        recovered, described = clr_counts(values)
        np.testing.assert_array_equal(recovered, counts)
        assert ("per protein across cells" if axis == 0 else "per cell across proteins") in described
    whole_file = np.log1p(many / np.exp(np.log1p(many).mean(axis=axis, keepdims=True)))
    logs = np.log(many + 0.5)
    rng = np.random.default_rng(0)
    for other in (np.log1p(many), np.log1p(many * 3), rng.normal(size=(60, 20)), rng.uniform(0, 5, (60, 20)),
                  np.log1p(many) - np.log1p(many).mean(axis=axis, keepdims=True),
                  logs - logs.mean(axis=1, keepdims=True),
                  np.log1p(many / np.exp(np.log(many + 2).mean(axis=axis, keepdims=True)))):
        assert clr_counts(other.astype(np.float32)) is None
    if axis == 0:  # a subset of the cells it was computed over: another geometric mean, so not read here
        for rows in (slice(0, 125), np.arange(0, 500, 7), rng.choice(500, 13, replace=False)):
            assert clr_counts(whole_file[rows]) is None


def test_dense_float16_normalised_values_are_read_like_float32(log_tokenizer):
    """Log-normalised values in a dense float16 matrix ended in scipy's 'does not support dtype float16'."""
    import anndata as ad
    import pandas as pd

    half = np.log1p(_cp10k(_single_cell_counts())).astype(np.float16)
    encoded = [log_tokenizer(ad.AnnData(x, var=pd.DataFrame(index=GENES)), return_tensors="np",
                             max_length=len(GENES), encoder_inputs="expressed", padding="longest")["input_values"]
               for x in (half, half.astype(np.float32))]
    np.testing.assert_array_equal(encoded[0], encoded[1])


def test_bulk_values_are_read_alike_with_or_without_never_expressed_genes(data_dir):
    """A bulk table listing every annotated gene (most never expressed in its samples) looked sparse like single
    cells: its TPM was read as normalised counts (log1p(CP10k)), the same samples without those columns as bulk
    values (log1p of the values), and scaled predictions moved by up to 0.45 between the two."""
    import anndata as ad

    from tokenization.matrix import Matrix

    bulk = np.asarray(ad.read_h5ad(data_dir / "tcga_rppa_rnaseq_rna.h5ad").X[:40], dtype=np.float64)
    tpm = bulk / bulk.sum(axis=1, keepdims=True) * 1e6
    wide = np.hstack([tpm, np.zeros((40, 25_000))])
    assert (wide == 0).mean() > 0.5  # sparser than SINGLE_CELL_ZEROS over all its columns: the test can fail
    narrow_reading = Matrix(tpm, "RNA", "log1p_cp10k").choose_reading()
    wide_reading = Matrix(wide, "RNA", "log1p_cp10k").choose_reading()
    assert wide_reading == narrow_reading and narrow_reading.applied == "log1p"
    few = Matrix(wide[:3], "RNA", "log1p_cp10k").choose_reading()  # a few samples: judged by genes detected
    assert few == Matrix(tpm[:3], "RNA", "log1p_cp10k").choose_reading() and few.applied == "log1p"
    # single cells stay single cells however few genes a file lists, and a lone cell as before
    cells = ad.read_h5ad(data_dir / "eccite_rna.h5ad").X[:40]
    cp10k = sp.diags(1e4 / np.asarray(cells.sum(axis=1)).ravel()) @ cells
    assert Matrix(cp10k, "RNA", "log1p_cp10k").choose_reading().applied == "log1p_cp10k"
    assert Matrix(cp10k[:1], "RNA", "log1p_cp10k").choose_reading().applied == "log1p_cp10k"


def test_log_values_of_a_gene_subset_say_their_total_is_taken_as_10000(log_tokenizer, data_dir):
    """scanpy's default normalize_total (the median count) then a highly variable gene subset: the cells share no
    total, the values were read as log1p(CP10k) in silence (predictions up to 1.9 log1p off)."""
    import anndata as ad

    counts = ad.read_h5ad(data_dir / "eccite_rna.h5ad")[:60].copy()
    x = counts.X.toarray().astype(np.float64)
    totals = x.sum(axis=1, keepdims=True)
    median_normalised = np.log1p(x / totals * np.median(totals))
    subset = np.sort(np.random.default_rng(0).choice(np.flatnonzero((x > 0).sum(axis=0) >= 3), 1000, replace=False))

    def said(values, names):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            log_tokenizer(ad.AnnData(values, var=counts.var.iloc[names].copy()), return_tensors="np")
        return [str(w.message) for w in caught if "share no total" in str(w.message)]

    assert len(said(median_normalised[:, subset], subset)) == 1
    assert not said(median_normalised, np.arange(x.shape[1]))  # the whole file: its total is found, and used
    assert not said(np.log1p(x / totals * 1e4)[:, np.arange(x.shape[1])], np.arange(x.shape[1]))
