"""How well a pre-trained model predicts a few proteins asked bare, against the same proteins asked inside the
proteins its training panels measured (``predict_proteins(..., protein_context=...)``).

    python benchmarks/protein_context.py [--model DIR] [--sets eccite reapseq_pbmc tenx_pbmc10k_s200 neurips_bmmc]
                                         [--sizes 1 2 4 8] [--draws 6] [--json benchmarks/results/protein_context.json]

A protein's prediction depends on the proteins asked with it: the decoder attends across them, and training scaled
each cell over its panel. Users ask a few proteins, the benchmarks a set's whole panel. For each set (the quality
benchmark's cells and 80/20 split, seed 0: zero-shot test cells) and each request size ``k``, ``--draws`` random
requests of ``k`` of the set's measured proteins (seeded) are predicted from raw counts of all genes, once as they
are (``protein_context="none"``) and once inside the model's training proteins (``"model"``); printed and written:
the mean per-protein Pearson r on log1p counts over all requested proteins, and the same for the set's whole panel.
About a minute per set on 2 cores.
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
from benchmarks.quality import BUDGETS, measured_proteins
from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR
from modeling_sctranslator.metrics import pearson_per_protein
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
from training.paired_data import SETS as PAIRED_SETS
from training.paired_data import VOCAB_DIR, load_set

SETS = ("eccite", "reapseq_pbmc", "tenx_pbmc10k_s200", "neurips_bmmc")
MODES = ("none", "model")


def predicted(model, tokenizer, rna, proteins: list[str], mode: str) -> np.ndarray:
    """The model's output for ``proteins``, in their order: log1p counts with the scale part, the per-cell scaled
    values without it (then scored against log1p counts, as the quality benchmark scores such a model's output)."""
    from modeling_sctranslator.inference import predict_proteins

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small-request warning is what is measured here
        result = predict_proteins(model, tokenizer, rna, proteins, batch_size=128, protein_context=mode)
    if list(result.var_names) != proteins:  # scored by position below
        raise RuntimeError(f"predicted proteins {list(result.var_names)[:5]}... differ from those asked")
    return np.asarray(result.X, np.float64)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=model_folder, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--sets", nargs="+", choices=sorted(PAIRED_SETS), default=list(SETS))
    parser.add_argument("--sizes", nargs="+", type=positive_int, default=[1, 2, 4, 8], help="proteins per request")
    parser.add_argument("--draws", type=positive_int, default=6, help="random requests per set and size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/protein_context.json"))
    args = parser.parse_args(argv)
    if any(k <= 0 for k in args.sizes) or args.draws <= 0:
        parser.error(f"--sizes and --draws must be positive, got {args.sizes} and {args.draws}")
    from modeling_sctranslator import SCTranslatorForProteinPrediction

    model = SCTranslatorForProteinPrediction.from_pretrained(args.model).eval()
    if not model.config.protein_context:
        parser.error(f"{args.model} records no training proteins (config.protein_context): nothing to compare")
    tokenizer = SCTranslatorTokenizer.from_pretrained(args.model)
    reference = SCTranslatorTokenizer.from_original_tables(VOCAB_DIR)
    rng = np.random.default_rng(args.seed)
    rows = []
    for name in args.sets:
        data = load_set(name, reference, BUDGETS["small"]["max_cells"].get(name))
        y = data.targets[data.eval]
        rna = ad.AnnData(X=sp.csr_matrix(data.rna_values)[data.eval].astype(np.float32),
                         var=pd.DataFrame(index=data.genes))
        valid = np.flatnonzero(measured_proteins(y))
        requests = {f"{k} proteins": [np.sort(rng.choice(valid, k, replace=False)) for _ in range(args.draws)]
                    for k in args.sizes if k <= valid.size}
        requests["whole panel"] = [valid]
        for label, draws in requests.items():
            scores = {}
            for mode in MODES:
                r = [pearson_per_protein(predicted(model, tokenizer, rna, [data.proteins[j] for j in pick], mode),
                                         y[:, pick]) for pick in draws]
                scores[mode] = float(np.nanmean(np.concatenate(r)))
            rows.append({"set": name, "request": label, "draws": len(draws), "bare": scores["none"],
                         "inside_training_proteins": scores["model"]})
            print(f"{name:20} {label:14} bare r {scores['none']:.3f}  inside the training proteins r "
                  f"{scores['model']:.3f}", flush=True)
    result = {"benchmark": "mean per-protein Pearson r (log1p counts) of zero-shot predictions of the quality "
                           "benchmark's test cells, requests asked bare and inside the model's training proteins",
              "model": str(args.model), "context_proteins": len(model.config.protein_context),
              "machine": machine_facts(), "rows": rows}
    write_result(args.json, result)
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
