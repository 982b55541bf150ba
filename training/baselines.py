"""The peers every comparison here is made against, in one module: the benchmark (``benchmarks/quality.py``),
the demo and ``python -m training.ridge_baseline`` all call these.

* RNA on the log scale (:func:`rna_on_log_scale`): raw counts -> log1p(counts per 10,000, library size
  over every gene), linear normalised values -> log1p, log values as they are (see
  ``tokenization.value_kinds``).
* Gene selection (:func:`seurat_hvg`): the field's usual highly-variable-gene rule, Seurat's dispersion
  rule as scanpy implements it (``scanpy.pp.highly_variable_genes(flavor="seurat")``): on log1p data,
  log dispersion (variance / mean of the un-logged values) standardised within 20 equal-width bins of
  log1p(mean), top genes by that score.
* PCA -> ridge and PCA -> k-NN: scikit-learn's ``PCA`` (fitted on the training cells), ``Ridge``
  (free intercept) and ``KNeighborsRegressor``. A protein with missing values (NaN; e.g. an RPPA
  antibody absent from some cohorts' arrays) is fitted on the cells that measured it.
* Own mRNA: the expression of the gene with the protein's token id.
* totalVI (scvi-tools, the optional extra ``pip install -e '.[totalvi]'``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tokenization.value_kinds import value_kind

__all__ = [
    "knn",
    "log_normalise",
    "own_mrna",
    "pca_ridge",
    "principal_components",
    "ridge",
    "rna_on_log_scale",
    "seurat_hvg",
    "totalvi",
    "totalvi_available",
]


def log_normalise(counts) -> sp.csr_matrix:
    """log1p(counts per 10,000) with library sizes over every gene of ``counts``."""
    counts = sp.csr_matrix(counts, dtype=np.float64)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    totals[totals == 0] = 1.0
    return sp.csr_matrix(sp.diags(1e4 / totals) @ counts).log1p()


def rna_on_log_scale(x, kind: str | None = None) -> sp.csr_matrix:
    """RNA on the log scale the baselines read: see the module docstring. ``kind`` defaults to the
    kind of ``x``'s values."""
    kind = kind or value_kind(x)
    if kind == "counts":
        return log_normalise(x)
    x = sp.csr_matrix(x, dtype=np.float64)
    return x.log1p() if kind == "linear" else x


def seurat_hvg(x_log, n_top: int, candidates: np.ndarray | None = None, n_bins: int = 20) -> np.ndarray:
    """Indices of the ``n_top`` most highly variable genes of log1p data ``x_log`` (cells x genes), best
    first, by Seurat's dispersion rule (scanpy's ``flavor="seurat"``). ``candidates``: a boolean mask of
    the genes that may be chosen (e.g. those in the vocabulary); the statistics are computed on them."""
    x = sp.csr_matrix(x_log, dtype=np.float64)
    genes = np.arange(x.shape[1]) if candidates is None else np.flatnonzero(candidates)
    x = x[:, genes].expm1()
    n = x.shape[0]
    mean = np.asarray(x.mean(axis=0)).ravel()
    mean_sq = np.asarray(x.multiply(x).mean(axis=0)).ravel()
    var = (mean_sq - mean**2) * n / max(n - 1, 1)
    mean[mean == 0] = 1e-12
    dispersion = var / mean
    dispersion[dispersion == 0] = np.nan
    log_disp = np.log(dispersion)
    log_mean = np.log1p(mean)
    frame = pd.DataFrame({"bin": pd.cut(log_mean, bins=n_bins), "disp": log_disp})
    grouped = frame.groupby("bin", observed=False)["disp"]
    bin_mean = grouped.transform("mean").to_numpy()
    bin_std = grouped.transform("std").to_numpy()
    alone = grouped.transform("count").to_numpy() == 1  # scanpy: a gene alone in its bin scores 1
    bin_std[alone], bin_mean[alone] = log_disp[alone], 0.0
    score = (log_disp - bin_mean) / bin_std
    score = np.where(np.isfinite(score), score, -np.inf)
    order = np.argsort(-score, kind="stable")[:n_top]
    return genes[order[np.isfinite(score[order])]]


def _dense(x) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x, dtype=np.float64)


def principal_components(x_train, x_eval, n_pcs: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(training, evaluation) scores on the first ``n_pcs`` principal components of ``x_train``."""
    from sklearn.decomposition import PCA

    train = _dense(x_train)
    # the exact decomposition: the randomized solver scikit-learn picks for wide data is approximate
    # (ridge on eccite: predictions off by up to 0.8, mean Pearson 0.001 lower)
    pca = PCA(n_components=min(n_pcs, min(train.shape) - 1), svd_solver="full").fit(train)
    return pca.transform(train), pca.transform(_dense(x_eval))


def _fit_per_missing_pattern(model, z_train: np.ndarray, y_train: np.ndarray, z_eval: np.ndarray) -> np.ndarray:
    """``model`` fitted per group of proteins measured on the same training cells (one fit without NaN)."""
    from sklearn.base import clone

    y_train = np.asarray(y_train, dtype=np.float64)
    out = np.full((len(z_eval), y_train.shape[1]), np.nan)
    measured = np.isfinite(y_train)
    patterns: dict[bytes, list[int]] = {}
    for j in range(y_train.shape[1]):
        patterns.setdefault(measured[:, j].tobytes(), []).append(j)
    for key, columns in patterns.items():
        rows = np.frombuffer(key, dtype=bool)
        if rows.sum() < 2:
            continue  # measured on fewer than two training cells: nothing to fit
        fitted = clone(model).fit(z_train[rows], y_train[rows][:, columns])
        out[:, columns] = fitted.predict(z_eval).reshape(len(z_eval), len(columns))
    return out


def ridge(z_train: np.ndarray, y_train: np.ndarray, z_eval: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Ridge regression (free intercept) from PC scores to every protein."""
    from sklearn.linear_model import Ridge

    return _fit_per_missing_pattern(Ridge(alpha=alpha), z_train, y_train, z_eval)


def knn(z_train: np.ndarray, y_train: np.ndarray, z_eval: np.ndarray, k: int = 15) -> np.ndarray:
    """Mean target of the ``k`` nearest training cells (Euclidean) in PC space."""
    from sklearn.neighbors import KNeighborsRegressor

    return _fit_per_missing_pattern(KNeighborsRegressor(n_neighbors=min(k, len(z_train))), z_train, y_train, z_eval)


def pca_ridge(x_train, y_train, x_eval, n_pcs: int = 50, alpha: float = 1.0) -> np.ndarray:
    """:func:`ridge` on the first ``n_pcs`` principal components of ``x_train`` (log-scale RNA)."""
    z_train, z_eval = principal_components(x_train, x_eval, n_pcs)
    return ridge(z_train, y_train, z_eval, alpha)


def own_mrna(log_eval: sp.csr_matrix, gene_tokens: np.ndarray, protein_tokens: np.ndarray):
    """(cells x proteins) prediction and the gene index used per protein (-1 = none): the log-scale
    expression of the gene with the protein's token id."""
    where: dict[int, int] = {}
    for g, t in enumerate(gene_tokens):
        if t >= 0 and int(t) not in where:
            where[int(t)] = g
    genes = np.asarray([where.get(int(t), -1) for t in protein_tokens])
    pred = np.full((log_eval.shape[0], len(protein_tokens)), np.nan)
    have = genes >= 0
    if have.any():
        pred[:, have] = sp.csr_matrix(log_eval)[:, genes[have]].toarray()
    return pred, genes


def totalvi_available() -> tuple[bool, str]:
    try:
        import scvi  # noqa: F401
    except ImportError:
        return False, "scvi-tools is not installed (optional extra): totalVI skipped"
    return True, ""


def totalvi(counts_train, prot_train, counts_eval, prot_eval, max_epochs: int | None = None, seed: int = 0):
    """totalVI trained on the training cells (RNA + protein counts) and asked for the held-out cells'
    protein from their RNA only (their protein counts are zeroed and flagged missing through a batch of
    their own). Returns denoised protein expression (log1p) for the held-out cells."""
    import anndata as ad
    import scvi

    scvi.settings.seed = seed
    n_train = counts_train.shape[0]
    x = sp.vstack([sp.csr_matrix(counts_train), sp.csr_matrix(counts_eval)]).tocsr()
    prot = np.vstack([prot_train, np.zeros_like(prot_eval)])
    adata = ad.AnnData(X=x.astype(np.float32))
    adata.obsm["protein"] = prot.astype(np.float32)
    adata.obs["batch"] = np.where(np.arange(x.shape[0]) < n_train, "train", "query")
    scvi.model.TOTALVI.setup_anndata(adata, batch_key="batch", protein_expression_obsm_key="protein")
    model = scvi.model.TOTALVI(adata)
    model.train(max_epochs=max_epochs)
    _, protein = model.get_normalized_expression(indices=np.arange(n_train, x.shape[0]), n_samples=10,
                                                 return_mean=True, transform_batch="train")
    return np.log1p(np.asarray(protein))
