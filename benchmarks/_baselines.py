"""Simple baselines for ``benchmarks/quality.py`` (numpy only; predictions on the log1p-count scale).

* own mRNA — log1p(CP10k) of the gene with the protein's token id (NaN where no gene of the data maps);
* ridge — ridge regression (alpha on the coefficients, free intercept) on the first PCs of log1p(CP10k);
* k-NN — mean target of the k nearest training cells (Euclidean) in the same PC space;
* totalVI — only when ``scvi-tools`` is importable (the optional extra ``pip install -e '.[totalvi]'``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def pca_fit(x_train: np.ndarray | sp.spmatrix, n_pcs: int):
    """Centre on the training cells; principal axes from the (cells x cells) Gram matrix when genes > cells."""
    dense = x_train.toarray() if sp.issparse(x_train) else np.asarray(x_train, np.float64)
    mean = dense.mean(axis=0)
    centred = dense - mean
    n_pcs = min(n_pcs, min(centred.shape) - 1)
    if centred.shape[1] > centred.shape[0]:
        gram = centred @ centred.T
        w, u = np.linalg.eigh(gram)
        top = np.argsort(w)[::-1][:n_pcs]
        axes = centred.T @ u[:, top] / np.sqrt(np.maximum(w[top], 1e-12))
    else:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:n_pcs].T
    return mean, axes


def pca_transform(x, mean, axes) -> np.ndarray:
    dense = x.toarray() if sp.issparse(x) else np.asarray(x, np.float64)
    return (dense - mean) @ axes


def ridge(z_train: np.ndarray, y_train: np.ndarray, z_eval: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    a = np.hstack([z_train, np.ones((len(z_train), 1))])
    reg = alpha * np.eye(a.shape[1])
    reg[-1, -1] = 0.0
    coef = np.linalg.solve(a.T @ a + reg, a.T @ y_train)
    return np.hstack([z_eval, np.ones((len(z_eval), 1))]) @ coef


def knn(z_train: np.ndarray, y_train: np.ndarray, z_eval: np.ndarray, k: int = 15) -> np.ndarray:
    k = min(k, len(z_train))
    d2 = (z_eval**2).sum(1)[:, None] - 2 * z_eval @ z_train.T + (z_train**2).sum(1)[None, :]
    nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]
    return y_train[nearest].mean(axis=1)


def own_mrna(lognorm_eval: sp.csr_matrix, gene_tokens: np.ndarray, protein_tokens: np.ndarray):
    """(cells x proteins) prediction and the gene name index used per protein (-1 = none)."""
    where = {}
    for g, t in enumerate(gene_tokens):
        if t >= 0 and t not in where:
            where[int(t)] = g
    genes = np.asarray([where.get(int(t), -1) for t in protein_tokens])
    pred = np.full((lognorm_eval.shape[0], len(protein_tokens)), np.nan)
    have = genes >= 0
    if have.any():
        pred[:, have] = lognorm_eval[:, genes[have]].toarray()
    return pred, genes


def totalvi_available() -> tuple[bool, str]:
    try:
        import scvi  # noqa: F401
    except ImportError:
        return False, "scvi-tools is not installed (optional extra): totalVI skipped"
    return True, ""


def totalvi(counts_train, prot_train, counts_eval, prot_eval, max_epochs: int | None = None, seed: int = 0):
    """totalVI trained on the training cells (RNA + protein) and asked for the held-out cells' protein
    from their RNA only (held-out protein counts are zeroed and flagged missing via a batch of their own).

    Returns denoised protein expression (log1p-transformed) for the held-out cells.
    """
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
