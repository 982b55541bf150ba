"""Acceptance 5: bad input gives a clear error naming the problem and the fix, or a warned handling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

GENES = ["CD4", "TP53", "PTPRC", "CD8A", "ACTB", "GAPDH"]


@pytest.fixture
def tok(original_tokenizer):
    return original_tokenizer


def _x(n=4):
    rng = np.random.default_rng(1)
    return rng.integers(0, 10, size=(n, len(GENES))).astype(np.float32) + 1


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("sparse", [False, True])
def test_non_finite_rna(tok, bad, sparse):
    x = _x()
    x[2, 3] = bad
    with pytest.raises(ValueError, match=r"NaN/inf.*cell #2.*nan_to_num"):
        tok(sp.csr_matrix(x) if sparse else x, gene_names=GENES)


@pytest.mark.parametrize("sparse", [False, True])
def test_negative_rna(tok, sparse):
    x = _x()
    x[1, 0] = -0.5
    with pytest.raises(ValueError, match=r"negative values.*cell #1.*raw counts"):
        tok(sp.csr_matrix(x) if sparse else x, gene_names=GENES)


@pytest.mark.parametrize("sparse", [False, True])
def test_all_zero_cell_is_warned_not_nan(tok, sparse):
    x = _x()
    x[1] = 0
    with pytest.warns(UserWarning, match="1 of 4 cells have constant RNA"):
        out = tok(sp.csr_matrix(x) if sparse else x, gene_names=GENES, max_length=8, return_tensors="np")
    assert not np.isnan(out["input_values"]).any()
    np.testing.assert_array_equal(out["input_values"][1, :6], np.float32(1e-8))
    assert out["input_values"][1, 6:].tolist() == [0, 0]


def test_constant_protein_cell_warned(tok):
    values = np.array([[1.0, 1.0], [1.0, 3.0]])
    with pytest.warns(UserWarning, match="constant protein"):
        out = tok(
            _x(2),
            gene_names=GENES,
            proteins=["CD4", "CD8"],
            protein_values=values,
            max_length=8,
            protein_max_length=4,
            return_tensors="np",
        )
    assert out["labels"][0, :2].tolist() == [np.float32(1e-8)] * 2


def test_missing_protein_values_are_nan_labels(tok):
    values = np.array([[1.0, np.nan, 3.0], [2.0, 4.0, 6.0]])
    out = tok(
        _x(2),
        gene_names=GENES,
        proteins=["CD4", "CD8", "CD19"],
        protein_values=values,
        max_length=8,
        protein_max_length=4,
        return_tensors="np",
    )
    assert np.isnan(out["labels"][0, 1]) and out["labels"][0, 2] == 1.0 and out["labels"][0, 3] == 0
    assert out["protein_attention_mask"][0].tolist() == [True, True, True, False]


def test_duplicate_gene_names_keep_first_and_report(tok):
    names = ["CD4", "TP53", "CD4", "PTPRC", "CD8A", "ACTB"]
    x = _x()
    # the warning names the repeated name (a renamed column reads another gene's counts unseen otherwise)
    with pytest.warns(UserWarning, match=r"1 gene columns repeat another column's name \('CD4' \(2 columns\)\)"):
        out, report = tok(x, gene_names=names, max_length=8, return_tensors="np", return_report=True)
    assert report.rna.duplicates == [("CD4", "CD4", 752)]
    assert out["input_ids"][0, :5].tolist() == tok.convert_genes_to_ids(
        ["CD4", "TP53", "PTPRC", "CD8A", "ACTB"]
    )
    # scaling is over the kept columns only
    kept = x[:, [0, 1, 3, 4, 5]].astype(np.float64)
    lo, hi = kept.min(1, keepdims=True), kept.max(1, keepdims=True)
    np.testing.assert_allclose(
        out["input_values"][:, :5], (kept - lo) / (hi - lo) * (1 - 1e-8) + 1e-8, atol=1e-7
    )


def test_no_gene_in_vocab(tok):
    with pytest.raises(ValueError, match=r"none of the 3 genes.*foo1.*Entrez.*ENSMUSG"):
        tok(np.ones((2, 3)), gene_names=["foo1", "foo2", "foo3"])


@pytest.mark.parametrize("shape", [(0, 6), (3, 0)])
def test_empty_matrix(tok, shape):
    with pytest.raises(ValueError, match="empty"):
        tok(np.zeros(shape, np.float32), gene_names=GENES[: shape[1]])


def test_gene_names_length_mismatch(tok):
    with pytest.raises(ValueError, match=r"gene_names has 5 entries but the RNA matrix has 6"):
        tok(_x(), gene_names=GENES[:5])
    with pytest.raises(ValueError, match=r"gene_ids has 2 entries"):
        tok(_x(), gene_ids=[1, 2])
    # a var column's name instead of its names: said so, not "gene_names has 12 entries" (the letters)
    with pytest.raises(ValueError, match=r"gene_names is one string \('feature_name'\).*adata.var\['feature_name'\]"):
        tok(_x(), gene_names="feature_name")


def test_cell_order_mismatch(tok):
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame(index=[f"c{i}" for i in range(4)])
    rna = ad.AnnData(_x(), obs=obs, var=pd.DataFrame(index=GENES))
    adt = ad.AnnData(
        np.arange(8, dtype=np.float32).reshape(4, 2),
        obs=obs.iloc[::-1].copy(),
        var=pd.DataFrame(index=["CD4", "CD8"]),
    )
    with pytest.raises(ValueError, match=r"different order.*adt\[rna.obs_names\]"):
        tok(rna, proteins=adt)
    other = ad.AnnData(
        np.ones((3, 2), np.float32),
        obs=pd.DataFrame(index=["c0", "c1", "x"]),
        var=pd.DataFrame(index=["CD4", "CD8"]),
    )
    with pytest.raises(ValueError, match=r"do not hold the same cells.*intersection"):
        tok(rna, proteins=other)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok(rna, proteins=adt[rna.obs_names], max_length=8, protein_max_length=4)


def test_too_many_proteins(tok):
    proteins = ["CD4", "CD8", "CD19", "CD14", "CD3"]
    with pytest.raises(ValueError, match=r"5 mapped proteins exceed protein_max_length=3.*split_proteins"):
        tok(_x(1), gene_names=GENES, proteins=proteins, max_length=8, protein_max_length=3)
    passes = tok.split_proteins(proteins + ["IgG1"], protein_max_length=3)
    assert passes == [["CD4", "CD8", "CD19"], ["CD14", "CD3"]]
    from tokenization.tokenization_sctranslator import protein_passes

    assert list(protein_passes(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_padding_and_truncation_read_transformers_booleans(tok):
    """padding=True and truncation=True (transformers' spelling) were refused; padding=False and truncation=False
    fell back to the defaults in silence."""
    x = _x(2)
    x[0, :3] = 0  # cells of 3 and 6 genes
    longest = tok(x, gene_names=GENES, max_length=8, padding="longest", encoder_inputs="expressed")
    boolean = tok(x, gene_names=GENES, max_length=8, padding=True, truncation=True, encoder_inputs="expressed")
    assert longest["input_ids"].shape == boolean["input_ids"].shape == (2, 6)
    np.testing.assert_array_equal(longest["input_values"], boolean["input_values"])
    for options, message in (({"padding": False}, r"padding=False: the cells of a batch .* padding='longest' \(or "
                                                   r"True\)"),
                             ({"padding": "do_not_pad"}, "padding='do_not_pad'"),
                             ({"truncation": False}, r"truncation=False: .*raise max_length to keep more genes")):
        with pytest.raises(ValueError, match=message):
            tok(x, gene_names=GENES, max_length=8, **options)


def test_bad_token_ids(tok):
    with pytest.raises(ValueError, match="outside 1..85499"):
        tok(_x(), gene_ids=[0, 1, 2, 3, 4, 5])


def test_ensembl_var_names_point_to_the_column_that_names_the_genes(tok):
    """CELLxGENE files have Ensembl var_names and the symbols in var['feature_name']: the error names that
    column instead of a generic adata.var['gene_symbols'] the file does not have."""
    import anndata as ad
    import pandas as pd

    var = pd.DataFrame({"feature_name": pd.Categorical(GENES), "feature_type": ["Gene Expression"] * len(GENES)},
                       index=[f"ENSG99{i:09d}" for i in range(len(GENES))])
    adata = ad.AnnData(X=_x(), var=var)
    with pytest.raises(ValueError, match=r"var column\(s\) 'feature_name' \(100% of a sample map\).*"
                                         r"gene_names=adata.var\['feature_name'\]"):
        tok(adata, max_length=8)
    out = tok(adata, gene_names=adata.var["feature_name"], max_length=8, return_tensors="np")
    assert out["input_ids"][0, :6].tolist() == tok.convert_genes_to_ids(GENES)


def test_column_numbers_as_gene_names_are_refused(tok):
    """pd.DataFrame(X) or AnnData(X) name their columns 0..n-1, and R's exports without dimnames 1..n; both were
    read as Entrez ids (8,909 of ECCITE's columns 'mapped', predictions r 0.1-0.4 with the named file's) with no
    word. Protein panels named so too (evaluate scored A1BG, A2M, ... as the measured proteins)."""
    import anndata as ad
    import pandas as pd

    one_based = pd.DataFrame(_x(), columns=[str(i + 1) for i in range(_x().shape[1])])
    for unnamed, first in ((pd.DataFrame(_x()), 0), (ad.AnnData(_x()), 0), (one_based, 1)):
        with pytest.raises(ValueError, match=rf"the 6 gene names are the numbers {first}..{first + 5}.*"
                                             r"Entrez gene ids .*gene_names=\[...\]"):
            tok(unnamed, max_length=8)
    with pytest.raises(ValueError, match=r"the 3 protein names are the numbers 1..3, .*proteins=\[...\]"):
        tok(_x(), gene_names=GENES, proteins=["1", "2", "3"], max_length=8)
    # Entrez ids that are no row numbers still read as ids
    assert tok.convert_genes_to_ids(["920", "925"]) == tok.convert_genes_to_ids(["CD4", "CD8A"])


def test_row_numbers_of_a_filtered_matrix_are_refused_and_the_names_column_named(tok):
    """AnnData(X) with the symbols in a var column, then sc.pp.filter_genes: names 0, 1, 3, ... with gaps were read as
    Entrez ids ('7,110 mapped', r 0.07 against 0.79 with the symbols), in prediction and in training, with no word."""
    import anndata as ad
    import pandas as pd

    symbols = tok.convert_ids_to_genes(list(range(1, 61)))
    kept = [i for i in range(60) if i % 3]  # 40 of 60 columns: rising, with gaps
    cells = ad.AnnData(np.ones((2, 40), np.float32),
                       var=pd.DataFrame({"gene_symbols": [symbols[i] for i in kept]}, index=[str(i) for i in kept]))
    with pytest.raises(ValueError, match=r"the 40 gene names are numbers from 1 to 59 with gaps, the row numbers of "
                                         r"a matrix .*gene_names=adata.var\['gene_symbols'\]"):
        tok(cells, max_length=64)
    # a whole transcriptome's row numbers (36,601 columns), subset: in rank order, or a sparse marker panel
    rng = np.random.default_rng(0)
    for subset in (rng.choice(36_601, 2_000, replace=False), np.sort(rng.choice(36_601, 300, replace=False))):
        with pytest.raises(ValueError, match="row numbers of a matrix saved without its gene names"):
            tok.resolve([str(i) for i in subset], "gene")


def test_entrez_ids_are_no_row_numbers(tok):
    """A file named by Entrez ids reaches past 100,000 or is all known genes; a panel of old genes clusters far from 0
    (CD2..CD52: 914..1,043), which the first row-number rule refused."""
    entrez = sorted(tok.vocab.entrez_to_token)
    old = [e for e in entrez if e < 100_000]
    panel = ["CD2", "CD3D", "CD3E", "CD3G", "CD4", "CD5", "CD6", "CD7", "CD8A", "CD8B", "CD9", "CD14", "CD19", "MS4A1",
             "CD22", "CD28", "CD33", "CD34", "CD36", "CD37", "CD38", "CD40", "CD44", "CD47", "CD48", "CD52"]
    cd_ids = sorted(tok.vocab.symbol_to_entrez[s] for s in panel)
    assert 900 < cd_ids[0] and cd_ids[-1] < 1100
    rng = np.random.default_rng(1)
    for ids in (entrez[:: len(entrez) // 40], old[::200][:40], cd_ids, rng.choice(old[:3_000], 30, replace=False),
                rng.choice(old, 300, replace=False)):
        names = [str(e) for e in ids]
        for kind in ("gene", "protein"):
            assert tok.resolve(names, kind).n_mapped == len(names)


def test_gene_names_a_spreadsheet_made_dates_of_are_named(tok):
    """1-Mar, 9-Sep (MARCH1/MARC1, SEPT9 opened in Excel) were left out with no word among thousands of genes."""
    names = GENES[:4] + ["1-Mar", "Sep-09"]
    with pytest.warns(UserWarning, match=r"2 gene names are dates a spreadsheet made of gene symbols \(1-Mar, "
                                         r"Sep-09: .*cannot be told back"):
        tok(_x(), gene_names=names, max_length=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gene names with a month's letters are no dates
        tok(_x(), gene_names=GENES[:4] + ["MARCHF1", "SEPTIN9"], max_length=8)


def test_a_transposed_matrix_is_named_as_such(tok):
    """A genes x cells AnnData (as R and Seurat store it) failed with "none of the 6 genes" naming cell barcodes,
    and no word of the fix."""
    import anndata as ad
    import pandas as pd

    cells = ad.AnnData(_x(), var=pd.DataFrame(index=GENES[:6]), obs=pd.DataFrame(index=[f"AAAC{i}" for i in range(4)]))
    with pytest.raises(ValueError, match=r"none of the 4 genes.*looks transposed, genes x cells.*pass adata\.T"):
        tok(cells.T.copy(), max_length=8)
    # AnnData's default cell names (0..n-1), sampled, read as Entrez ids: no transposition to see there
    unknown = ad.AnnData(np.ones((3000, 30), dtype=np.float32), var=pd.DataFrame(index=[f"zgc:{i}" for i in range(30)]))
    with pytest.raises(ValueError, match="none of the 30 genes") as refused:
        tok(unknown, max_length=8)
    assert "transposed" not in str(refused.value)


def test_a_cellranger_h5_matrix_reads_as_the_anndata_scanpy_gives(tmp_path, shared):
    """Cell Ranger's HDF5 (v3: genes and antibodies with their feature types; v2: genes) without scanpy."""
    import anndata as ad

    from tests.conftest import one_piece, write_cellranger_h5
    from tokenization.cell_files import read_cells

    rna = ad.read_h5ad(shared("data", "eccite_ctcl_rna.h5ad"))[:30].copy()
    adt = ad.read_h5ad(shared("data", "eccite_ctcl_adt.h5ad"))[:30].copy()
    combined = one_piece(rna, adt)
    write_cellranger_h5(tmp_path / "v3.h5", combined)
    got = read_cells(tmp_path / "v3.h5")
    assert list(got.obs_names) == list(combined.obs_names) and list(got.var_names) == list(combined.var_names)
    assert got.var["feature_types"].tolist() == combined.var["feature_types"].tolist()
    assert (got.X != sp.csr_matrix(combined.X, dtype=np.float32)).nnz == 0
    write_cellranger_h5(tmp_path / "v2.h5", rna, genome_v2="GRCh38")
    v2 = read_cells(tmp_path / "v2.h5")
    assert list(v2.var_names) == list(rna.var_names) and (v2.X != sp.csr_matrix(rna.X, dtype=np.float32)).nnz == 0
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"cannot read .*other.h5 as a Cell Ranger .h5 matrix.*/matrix group"):
        read_cells(tmp_path / "other.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IsADirectoryError, match=r"empty is a folder; give the .h5ad, .h5mu or Cell Ranger .h5 file"):
        read_cells(tmp_path / "empty")


def test_a_cellranger_matrix_folder_reads_as_its_h5(tmp_path, shared):
    """Cell Ranger's Matrix Market folder (v3 gzipped with feature types, v2 genes.tsv) and GEO's prefixed files
    read as the same cells as the .h5 of the same data; a missing companion file is named."""
    import anndata as ad

    from tests.conftest import one_piece, write_cellranger_h5, write_cellranger_mtx
    from tokenization.cell_files import read_cells, read_pair, set_name

    rna = ad.read_h5ad(shared("data", "eccite_ctcl_rna.h5ad"))[:30].copy()
    adt = ad.read_h5ad(shared("data", "eccite_ctcl_adt.h5ad"))[:30].copy()
    combined = one_piece(rna, adt)
    write_cellranger_h5(tmp_path / "v3.h5", combined)
    from_h5 = read_cells(tmp_path / "v3.h5")
    write_cellranger_mtx(tmp_path / "run" / "outs" / "filtered_feature_bc_matrix", combined)
    write_cellranger_mtx(tmp_path / "geo", combined, prefix="GSM42_")
    for path in (tmp_path / "run" / "outs" / "filtered_feature_bc_matrix", tmp_path / "geo",
                 tmp_path / "geo" / "GSM42_matrix.mtx.gz"):
        got = read_cells(path)
        assert list(got.obs_names) == list(from_h5.obs_names) and list(got.var_names) == list(from_h5.var_names)
        assert got.var["feature_types"].tolist() == from_h5.var["feature_types"].tolist()
        assert got.X.dtype == np.float32 and (got.X != from_h5.X).nnz == 0
        assert got.obs.index.name is None and got.var.index.name is None  # else AnnData refuses to write it
        genes, antibodies = read_pair(path, path)  # one CITE-seq folder as both sides
        assert genes.n_vars == rna.n_vars and list(antibodies.var_names) == list(adt.var_names)
    assert set_name(tmp_path / "run" / "outs" / "filtered_feature_bc_matrix") == "run"
    assert set_name(tmp_path / "geo" / "GSM42_matrix.mtx.gz") == "GSM42"
    write_cellranger_mtx(tmp_path / "v2", rna, v2=True)
    v2 = read_cells(tmp_path / "v2")
    assert list(v2.var_names) == list(rna.var_names) and (v2.X != sp.csr_matrix(rna.X, dtype=np.float32)).nnz == 0
    import gzip

    plain = tmp_path / "run" / "outs" / "filtered_feature_bc_matrix" / "matrix.mtx"
    plain.write_bytes(gzip.decompress((plain.parent / "matrix.mtx.gz").read_bytes()))  # gunzip -k: one matrix
    assert (read_cells(plain.parent).X != from_h5.X).nnz == 0
    (tmp_path / "geo" / "GSM42_barcodes.tsv.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"GSM42_barcodes.tsv.gz \(or without .gz\) is not beside it"):
        read_cells(tmp_path / "geo")
    write_cellranger_mtx(tmp_path / "geo", combined, prefix="GSM43_")
    with pytest.raises(ValueError, match=r"holds 2 matrices .*give the matrix file of the sample to read"):
        read_cells(tmp_path / "geo")


def test_cite_seq_counts_tag_folder_reads_as_antibodies(tmp_path, shared):
    """CITE-seq-Count's umi_count folder lists one column of tags: read as Cell Ranger v2's genes, every tag was
    labelled 'Gene Expression' and the protein file refused as 'is it the RNA file?'."""
    import gzip

    import anndata as ad
    import scipy.io

    from tokenization.cell_files import read_cells

    adt = ad.read_h5ad(shared("data", "eccite_ctcl_adt.h5ad"))[:20].copy()
    folder = tmp_path / "umi_count"
    folder.mkdir()
    tags = [f"{name}-ACGTACGTACGT" for name in adt.var_names] + ["unmapped"]
    with gzip.open(folder / "matrix.mtx.gz", "wb") as f:
        scipy.io.mmwrite(f, sp.coo_matrix(sp.hstack([sp.csr_matrix(adt.X), sp.csr_matrix((20, 1))]).T))
    (folder / "features.tsv.gz").write_bytes(gzip.compress("".join(f"{t}\n" for t in tags).encode()))
    (folder / "barcodes.tsv.gz").write_bytes(gzip.compress("".join(f"{b}\n" for b in adt.obs_names).encode()))
    proteins = read_cells(folder, "protein file")
    assert list(proteins.var_names) == tags and "feature_types" not in proteins.var
    assert (proteins.X[:, :-1] != sp.csr_matrix(adt.X, dtype=np.float32)).nnz == 0


def test_a_mudata_file_gives_each_side_its_modality(tmp_path, shared):
    mudata = pytest.importorskip("mudata")
    import anndata as ad

    from tokenization.cell_files import read_cells, read_pair

    rna = ad.read_h5ad(shared("data", "eccite_ctcl_rna.h5ad"))[:10].copy()
    adt = ad.read_h5ad(shared("data", "eccite_ctcl_adt.h5ad"))[:10].copy()
    mudata.MuData({"rna": rna, "adt": adt}).write(tmp_path / "cite.h5mu")
    assert read_cells(tmp_path / "cite.h5mu", "RNA file").n_vars == rna.n_vars
    assert list(read_cells(tmp_path / "cite.h5mu", "protein file").var_names) == list(adt.var_names)
    genes, antibodies = read_pair(tmp_path / "cite.h5mu", tmp_path / "cite.h5mu")
    assert genes.n_vars == rna.n_vars and antibodies.n_vars == adt.n_vars
    from argparse import Namespace

    from sctranslator.options import rna_argument

    adata, _ = rna_argument(Namespace(rna=tmp_path / "cite.h5mu", layer=None, gene_column="raw_name"))
    assert adata.n_vars == rna.n_vars  # --gene-column / --layer read the RNA side too
    mudata.MuData({"rna": rna, "prot": adt, "adt": adt[:, :3].copy()}).write(tmp_path / "two_normalisations.h5mu")
    assert read_cells(tmp_path / "two_normalisations.h5mu", "protein file").n_vars == adt.n_vars  # muon's 'prot'
    mudata.MuData({"rna": rna, "atac": rna}).write(tmp_path / "multiome.h5mu")
    with pytest.raises(ValueError, match=r"modalities \['rna', 'atac'\]: the protein side is read from one named"):
        read_cells(tmp_path / "multiome.h5mu", "protein file")


def test_a_cellranger_h5_is_read_cells_by_features(tmp_path):
    """Cell Ranger stores features x cells in CSC: known values, written by hand, come back cell by feature."""
    import h5py

    from tokenization.cell_files import read_cells

    with h5py.File(tmp_path / "tiny.h5", "w") as f:
        group = f.create_group("matrix")
        group["data"], group["indices"], group["indptr"] = [1, 5, 2, 3], [0, 1, 0, 1], [0, 1, 2, 4]
        group["shape"] = [2, 3]  # features, cells
        group["barcodes"] = [b"AAAC-1", b"AAAG-1", b"AAAT-1"]
        features = group.create_group("features")
        features["name"], features["id"] = [b"CD4", b"CD4_TotalSeqB"], [b"ENSG00000010610", b"CD4_TotalSeqB"]
        features["feature_type"] = [b"Gene Expression", b"Antibody Capture"]
    adata = read_cells(tmp_path / "tiny.h5")
    assert adata.X.toarray().tolist() == [[1, 0], [0, 5], [2, 3]]
    assert list(adata.obs_names) == ["AAAC-1", "AAAG-1", "AAAT-1"] and list(adata.var_names) == ["CD4", "CD4_TotalSeqB"]
    assert adata.var["gene_ids"].tolist()[0] == "ENSG00000010610"


def test_one_file_as_both_sides_must_tell_genes_from_antibodies(tmp_path, shared):
    import anndata as ad

    from tests.conftest import write_cellranger_h5
    from tokenization.cell_files import read_pair, set_name

    rna = ad.read_h5ad(shared("data", "eccite_ctcl_rna.h5ad"))[:10].copy()
    rna.write_h5ad(tmp_path / "genes.h5ad")
    write_cellranger_h5(tmp_path / "v2.h5", rna, genome_v2="GRCh38")  # v2 holds genes only
    for path in (tmp_path / "genes.h5ad", tmp_path / "v2.h5"):
        with pytest.raises(ValueError, match="given as both the RNA and the protein file, but it does not tell"):
            read_pair(path, path)
    assert set_name("runs/donor3/outs/filtered_feature_bc_matrix.h5") == "donor3"
    assert set_name("data/pbmc_rna.h5ad") == set_name("data/pbmc.h5") == "pbmc"
