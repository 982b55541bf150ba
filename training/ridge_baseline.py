"""Ridge baseline on a built corpus's own hold-out split: 50 PCs of log-normalised RNA -> log1p proteins.

    python -m training.ridge_baseline outputs/exp_eccite/corpora/eccite [--alpha 1.0] [--pcs 50]

Prints the held-out metrics (training.metrics) against two targets: log1p protein counts (the data
README's baseline) and the per-cell max-min scaled log1p values the model is trained and evaluated on
(predictions scaled the same way per cell), so the model's eval numbers can be read next to it.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp

from tokenization.tokenization_sctranslator import scale_rows
from training.corpus import load_manifest
from training.metrics import protein_prediction_metrics


def _load(manifest, split):
    rows, indptr, indices, data, proteins = [], [0], [], [], []
    for shard in manifest["splits"][split]["shards"]:
        t = pq.read_table(f"{manifest['dir']}/{shard['file']}")
        for r in t.to_pylist():
            rows.append(r["row"])
            indices.extend(r["rna_indices"])
            data.extend(r["rna_values"])
            indptr.append(len(indices))
            proteins.append(r["protein_values"])
    x = sp.csr_matrix((np.asarray(data, np.float64), np.asarray(indices), np.asarray(indptr)),
                      shape=(len(rows), len(manifest["genes"])))
    return x, np.asarray(proteins, np.float64)


def log_normalise(x) -> np.ndarray:
    """log1p of counts per 10,000 (dense float64): the RNA representation of the baselines."""
    x = sp.csr_matrix(x, dtype=np.float64)
    totals = np.asarray(x.sum(axis=1)).ravel()
    totals[totals == 0] = 1
    return (sp.diags(1e4 / totals) @ x).log1p().toarray()


def ridge_on_pcs(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, n_pcs: int = 50,
                 alpha: float = 1.0) -> np.ndarray:
    """Ridge regression (unpenalised intercept) on the top ``n_pcs`` principal components of ``train_x``."""
    mean = train_x.mean(axis=0)
    _, _, vt = np.linalg.svd(train_x - mean, full_matrices=False)
    pcs = vt[:n_pcs].T
    z_train = np.hstack([(train_x - mean) @ pcs, np.ones((len(train_x), 1))])
    z_test = np.hstack([(test_x - mean) @ pcs, np.ones((len(test_x), 1))])
    reg = alpha * np.eye(z_train.shape[1])
    reg[-1, -1] = 0
    coef = np.linalg.solve(z_train.T @ z_train + reg, z_train.T @ train_y)
    return z_test @ coef


def ridge_baseline(corpus_dir, n_pcs: int = 50, alpha: float = 1.0, mapped_only: bool = True) -> dict:
    m = load_manifest(corpus_dir)
    x_train, y_train = _load(m, "train")
    x_eval, y_eval = _load(m, "eval")
    keep = [m["proteins"].index(p) for p in m["proteins_mapped"]] if mapped_only else list(range(len(m["proteins"])))
    y_train, y_eval = np.log1p(y_train[:, keep]), np.log1p(y_eval[:, keep])
    pred = ridge_on_pcs(log_normalise(x_train), y_train, log_normalise(x_eval), n_pcs, alpha)
    return {
        "corpus": m["name"], "n_train": len(y_train), "n_eval": len(y_eval), "proteins": len(keep),
        "log1p_counts": protein_prediction_metrics(pred, y_eval),
        "scaled_per_cell": protein_prediction_metrics(scale_rows(pred)[0], scale_rows(y_eval)[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir")
    parser.add_argument("--pcs", type=int, default=50)
    parser.add_argument("--alpha", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(ridge_baseline(args.corpus_dir, args.pcs, args.alpha), indent=1))


if __name__ == "__main__":
    main()
