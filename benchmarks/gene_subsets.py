"""How much a gene-selected input costs a pre-trained model: zero-shot predictions of the benchmark's test cells
from all their genes against only the training cells' most highly variable ones.

    python benchmarks/gene_subsets.py [--models DIR ...] [--sets eccite reapseq_pbmc tenx_pbmc10k_s200]
                                      [--sizes 2000 1000 500] [--json benchmarks/results/gene_subsets.json]

scanpy workflows often keep only the highly variable genes (``adata[:, adata.var.highly_variable]``), and such
files reach the model as they are. For each set (the quality benchmark's cells and 80/20 split, seed 0) and each
model (default: the shipped ``sctranslator-base``), the test cells are predicted from raw counts of all genes,
then of the top ``n`` genes by Seurat's dispersion rule on the training cells (``training.paired_data.select_genes``,
the peers' genes in ``benchmarks/quality.py``), other columns dropped, so library sizes are the subset's as in
such a file. Printed and written: mean per-protein Pearson r on log1p counts (the model's own log1p output when
it has the protein scale part) and on the per-cell scaled scale. No training: about a minute per model and set
on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from benchmarks.arguments import model_folder, positive_int
from benchmarks.machine import machine_facts
from benchmarks.output import write_result
from benchmarks.quality import BUDGETS, evaluate
from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
from training.paired_data import SETS as PAIRED_SETS
from training.paired_data import VOCAB_DIR, PairedSet, load_set, select_genes

SETS = ("eccite", "reapseq_pbmc", "tenx_pbmc10k_s200")


def score_columns(model, tokenizer, data: PairedSet, columns: np.ndarray) -> dict[str, float]:
    """Mean per-protein r of the model's predictions of the test cells from ``columns`` of their counts, scored as
    ``benchmarks/quality.py`` scores them (:func:`benchmarks.quality.evaluate`)."""
    from modeling_sctranslator.inference import predict_proteins

    counts = sp.csr_matrix(data.rna_values)[data.eval][:, columns].astype(np.float32)
    rna = ad.AnnData(X=counts, var=pd.DataFrame(index=[data.genes[c] for c in columns]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the gene-selected input warning is what is measured here
        result = predict_proteins(model, tokenizer, rna, data.proteins, batch_size=64)
    if list(result.var_names) != data.proteins:  # scored by position below
        raise RuntimeError(f"{data.name}: predicted proteins {list(result.var_names)[:5]}... differ from the panel")
    scaled = np.asarray(result.layers["scaled"] if "scaled" in result.layers else result.X, np.float64)
    own_log1p = np.asarray(result.X, np.float64) if "scaled" in result.layers else None
    metrics = evaluate(scaled, data.targets[data.eval], model_scale=True, pred_log1p=own_log1p)  # as quality.py
    return {scale: float(values["pearson_per_protein_mean"]) for scale, values in metrics.items()}

def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", type=model_folder, default=[DEFAULT_MODEL_DIR])
    parser.add_argument("--sets", nargs="+", choices=sorted(PAIRED_SETS), default=list(SETS))
    parser.add_argument("--sizes", nargs="+", type=positive_int, default=[2000, 1000, 500],
                        help="highly variable genes kept (besides all genes)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/gene_subsets.json"))
    args = parser.parse_args(argv)
    if any(n <= 0 for n in args.sizes):
        parser.error(f"--sizes must be positive numbers of genes, got {args.sizes}")
    from modeling_sctranslator import SCTranslatorForProteinPrediction

    reference = SCTranslatorTokenizer.from_original_tables(VOCAB_DIR)
    models = {str(d): (SCTranslatorForProteinPrediction.from_pretrained(d).eval(),
                       SCTranslatorTokenizer.from_pretrained(d)) for d in args.models}
    rows = []
    for name in args.sets:
        data = load_set(name, reference, BUDGETS["small"]["max_cells"].get(name))
        inputs = {"all genes": np.arange(len(data.genes))}
        for n in args.sizes:
            inputs[f"{n} highly variable"] = np.sort(select_genes(data, n, "seurat"))
        for folder, (model, tokenizer) in models.items():
            for label, columns in inputs.items():
                scores = score_columns(model, tokenizer, data, columns)
                rows.append({"set": name, "model": folder, "input": label, "genes": len(columns), **scores})
                print(f"{name:20} {Path(folder).name:24} {label:22} log1p r {scores['log1p']:.3f}"
                      f"  scaled r {scores['scaled']:.3f}", flush=True)
    result = {"benchmark": "zero-shot mean per-protein Pearson r on the quality benchmark's test cells, from all "
                           "genes and from the training cells' top highly variable genes (Seurat's rule)",
              "machine": machine_facts(), "rows": rows}
    write_result(args.json, result)
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
