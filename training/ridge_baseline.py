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


def _lognorm(x):
    totals = np.asarray(x.sum(axis=1)).ravel()
    totals[totals == 0] = 1
    return sp.diags(1e4 / totals) @ x


def ridge_baseline(corpus_dir, n_pcs: int = 50, alpha: float = 1.0, mapped_only: bool = True) -> dict:
    m = load_manifest(corpus_dir)
    x_train, y_train = _load(m, "train")
    x_eval, y_eval = _load(m, "eval")
    keep = [m["proteins"].index(p) for p in m["proteins_mapped"]] if mapped_only else list(range(len(m["proteins"])))
    y_train, y_eval = np.log1p(y_train[:, keep]), np.log1p(y_eval[:, keep])
    a_train = _lognorm(x_train).log1p().toarray()
    a_eval = _lognorm(x_eval).log1p().toarray()
    mean = a_train.mean(axis=0)
    _, _, vt = np.linalg.svd(a_train - mean, full_matrices=False)
    pcs = vt[:n_pcs].T
    z_train, z_eval = (a_train - mean) @ pcs, (a_eval - mean) @ pcs
    z_train1 = np.hstack([z_train, np.ones((len(z_train), 1))])
    reg = alpha * np.eye(z_train1.shape[1])
    reg[-1, -1] = 0
    coef = np.linalg.solve(z_train1.T @ z_train1 + reg, z_train1.T @ y_train)
    pred = np.hstack([z_eval, np.ones((len(z_eval), 1))]) @ coef
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
