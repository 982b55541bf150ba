"""Acceptance 6: the vectorised encoder equals a plain per-cell loop on every input kind."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ._tokenizer_reference import reference_encode


@pytest.fixture(scope="module")
def case(original_tokenizer):
    rng = np.random.default_rng(7)
    n_cells, n_genes = 57, 400
    x = sp.random(n_cells, n_genes, density=0.1, format="csr", random_state=3, dtype=np.float32)
    x.data = np.floor(x.data * 30) + 1
    x = x.toarray()
    x[5] = 0  # an empty cell
    symbols = list(original_tokenizer.vocab.symbol_to_entrez)
    report = original_tokenizer.resolve(symbols[:5000])
    names = [n for n, s in zip(report.names, report.status, strict=True) if s == "mapped"][: n_genes - 40]
    names += [f"NOT_A_GENE_{i}" for i in range(40)]
    order = rng.permutation(n_genes)
    names = [names[i] for i in order]
    return x, names


def _inputs(x, names, tmp_path):
    import anndata as ad
    import pandas as pd

    adata = ad.AnnData(sp.csr_matrix(x), var=pd.DataFrame(index=names))
    adata.obs_names = [f"cell{i}" for i in range(x.shape[0])]
    path = tmp_path / "rna.h5ad"
    adata.write_h5ad(path)
    dense_adata = ad.AnnData(x.copy(), var=pd.DataFrame(index=names))
    dense_path = tmp_path / "rna_dense.h5ad"
    dense_adata.write_h5ad(dense_path)
    return {
        "csr": (sp.csr_matrix(x), names),
        "csc": (sp.csc_matrix(x), names),
        "dense": (x, names),
        "backed_csr": (ad.read_h5ad(path, backed="r"), None),
        "backed_dense": (ad.read_h5ad(dense_path, backed="r"), None),
    }


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "truncation,max_length,padding",
    [
        ("first", 300, "max_length"),
        ("first", 500, "max_length"),
        ("first", 500, "longest"),
        ("random", 300, "max_length"),
        ("random", 100, "longest"),
    ],
)
def test_vectorised_equals_reference(original_tokenizer, case, tmp_path, truncation, max_length, padding):
    x, names = case
    tok = original_tokenizer
    report = tok.resolve(names)
    cols = report.columns
    ref_ids, ref_values, ref_mask = reference_encode(
        x[:, cols], report.kept_token_ids, max_length, truncation, seed=11, padding=padding
    )
    for kind, (data, gene_names) in _inputs(x, names, tmp_path).items():
        for chunk in (None, 8):
            out = tok(
                data,
                gene_names=gene_names,
                max_length=max_length,
                padding=padding,
                truncation=truncation,
                seed=11,
                return_tensors="np",
                chunk_size=chunk,
            )
            np.testing.assert_array_equal(out["input_ids"], ref_ids, err_msg=kind)
            np.testing.assert_array_equal(out["attention_mask"], ref_mask, err_msg=kind)
            np.testing.assert_array_equal(out["input_values"], ref_values, err_msg=kind)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_random_truncation_is_seeded(original_tokenizer, case):
    x, names = case
    a = original_tokenizer(
        x, gene_names=names, max_length=50, truncation="random", seed=1, return_tensors="np"
    )
    b = original_tokenizer(
        x, gene_names=names, max_length=50, truncation="random", seed=1, return_tensors="np"
    )
    c = original_tokenizer(
        x, gene_names=names, max_length=50, truncation="random", seed=2, return_tensors="np"
    )
    np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
    assert (a["input_ids"] != c["input_ids"]).any()


def test_original_converted_data_my_id(original_tokenizer):
    import anndata as ad
    import pandas as pd

    ids = [752, 5735, 4582]
    adata = ad.AnnData(
        np.array([[1, 2, 3], [0, 5, 1]], np.float32), var=pd.DataFrame({"my_Id": ids}, index=list("abc"))
    )
    out = original_tokenizer(adata, max_length=4, return_tensors="np")
    assert out["input_ids"][0].tolist() == ids + [0]
