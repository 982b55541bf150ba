"""What the benchmark's gene selection leaves the models, per set: Seurat's dispersion rule (the current
protocol) against the rule it replaced (highest variance of the log-scale RNA over the training cells): both are
``training.paired_data.select_genes`` rules.

    python benchmarks/gene_selection.py [--budget small] [--json benchmarks/results/gene_selection.json]

For each shared set (its benchmark subsample and 80/20 training cells) and each rule, the ``n_genes`` chosen
vocabulary genes and:

* ``expressed_per_cell``: how many of them are non-zero in a training cell (mean). The order-invariant variant
  reads only a cell's expressed genes, so this is what it sees of a cell;
* ``selected_elsewhere``: the share of the set's genes that some *other* shared set also selects. In the transfer
  benchmark (``quality.py --pretrain``) a model pre-trained on the other sets meets the target's genes; genes
  outside that union have embeddings it never trained, which matters most zero-shot;
* ``rules_agree``: the share of genes both rules choose.

Numbers only, no training: a minute or two on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.machine import machine_facts
from benchmarks.output import write_result
from benchmarks.quality import BUDGETS
from tokenization.tokenization_sctranslator import SCTranslatorTokenizer
from training.paired_data import GENE_RULES, SETS, VOCAB_DIR, load_set, select_genes


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="small")
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/gene_selection.json"))
    args = parser.parse_args(argv)
    cfg = BUDGETS[args.budget]
    tokenizer = SCTranslatorTokenizer.from_original_tables(VOCAB_DIR)
    tokens: dict[str, dict[str, set[int]]] = {rule: {} for rule in GENE_RULES}
    sets: dict[str, dict] = {}
    for name in args.sets:
        data = load_set(name, tokenizer, cfg["max_cells"].get(name))
        train_values = data.rna_values[data.train]
        sets[name] = {"cells": int(data.rna_values.shape[0]), "genes_in_file": len(data.genes)}
        for rule in GENE_RULES:
            chosen = select_genes(data, cfg["n_genes"], rule)
            tokens[rule][name] = {int(t) for t in data.gene_tokens[chosen]}
            expressed = (train_values[:, chosen] > 0).sum(axis=1)
            sets[name][f"{rule}_expressed_per_cell"] = float(np.mean(expressed))
            sets[name][f"{rule}_genes"] = int(len(chosen))
    for name in args.sets:
        others = [s for s in args.sets if s != name]
        for rule in GENE_RULES:
            elsewhere = set().union(*(tokens[rule][s] for s in others)) if others else set()
            sets[name][f"{rule}_selected_elsewhere"] = len(tokens[rule][name] & elsewhere) / len(tokens[rule][name])
        sets[name]["rules_agree"] = len(tokens["seurat"][name] & tokens["variance"][name]) / len(
            tokens["seurat"][name])
    print(f"{args.budget} budget, {cfg['n_genes']} genes per set; seurat | variance")
    print(f"{'set':20s} {'cells':>5s} {'expressed per cell':>22s} {'selected elsewhere':>20s} {'rules agree':>11s}")
    for name, row in sets.items():
        print(f"{name:20s} {row['cells']:5d} {row['seurat_expressed_per_cell']:10.0f} | "
              f"{row['variance_expressed_per_cell']:<9.0f} {row['seurat_selected_elsewhere']:9.2f} | "
              f"{row['variance_selected_elsewhere']:<8.2f} {row['rules_agree']:11.2f}")
    result = {"benchmark": "gene selection rules: what the models see", "budget": args.budget,
              "n_genes": cfg["n_genes"], "machine": machine_facts(), "sets": sets}
    write_result(args.json, result)
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
