"""Ridge baseline on a built corpus's own hold-out split: 50 PCs of log-scale RNA -> log-scale proteins.

    python -m training.ridge_baseline outputs/exp_eccite/corpora/eccite [--alpha 1.0] [--pcs 50]

Both sides are brought to the log scale by the kind of their values (``tokenization.value_kinds``):
counts -> log1p (RNA: log1p CP10k), bulk log values and RPPA / mass-spec values as they are, so a bulk
corpus is scored on its own scale. Prints the held-out metrics (modeling_sctranslator.metrics) against two targets:
the log-scale proteins (the data README's baseline) and their per-cell max-min scaled values the model
is trained and evaluated on (predictions scaled the same way per cell), so the model's eval numbers can
be read next to it, and lists any protein that could not be scored, with the reason.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp

from modeling_sctranslator.metrics import protein_prediction_metrics, proteins_not_scored
from tokenization.tokenization_sctranslator import scale_rows
from tokenization.value_kinds import to_log_scale, value_kind
from training.baselines import pca_ridge, rna_on_log_scale
from training.corpus import load_manifest


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


def _not_scored(names: list[str], y_train: np.ndarray, y_eval: np.ndarray, pred: np.ndarray) -> dict[str, str]:
    """Proteins without a per-protein Pearson, with the reason; one measured on under 2 training cells had nothing
    to fit."""
    reasons = proteins_not_scored(names, pred, y_eval)
    for name in reasons:
        if np.isfinite(y_train[:, names.index(name)]).sum() < 2:
            reasons[name] = "measured on fewer than 2 training cells: nothing to fit"
    return reasons


def ridge_baseline(corpus_dir, n_pcs: int = 50, alpha: float = 1.0, mapped_only: bool = True) -> dict:
    m = load_manifest(corpus_dir)
    x_train, y_train = _load(m, "train")
    x_eval, y_eval = _load(m, "eval")
    keep = [m["proteins"].index(p) for p in m["proteins_mapped"]] if mapped_only else list(range(len(m["proteins"])))
    names = [m["proteins"][i] for i in keep]
    protein_kind, rna_kind = value_kind(y_train[:, keep]), value_kind(x_train)
    y_train, y_eval = to_log_scale(y_train[:, keep], protein_kind), to_log_scale(y_eval[:, keep], protein_kind)
    pred = pca_ridge(rna_on_log_scale(x_train, rna_kind), y_train, rna_on_log_scale(x_eval, rna_kind), n_pcs, alpha)
    return {
        "corpus": m["name"], "n_train": len(y_train), "n_eval": len(y_eval), "proteins": len(keep),
        "rna_values": rna_kind, "protein_values": protein_kind,
        "log_scale": protein_prediction_metrics(pred, y_eval),
        "scaled_per_cell": protein_prediction_metrics(scale_rows(pred)[0], scale_rows(y_eval)[0]),
        "proteins_not_scored": _not_scored(names, y_train, y_eval, pred),
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
