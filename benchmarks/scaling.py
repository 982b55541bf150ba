"""How the cost of scTranslator grows with genes per cell, proteins per pass, batch size and cells.

    python benchmarks/scaling.py [--repeats 5] [--threads 1] [--hidden_size 32] [--json benchmarks/results/scaling.json]
                                 [--png benchmarks/results/scaling.png]

A reduced configuration (default d=32, 2 heads of 16, 1 encoder + 1 decoder layer, 32 random
features: the released model is d=128, 8x64, 2+2, 266) keeps the whole run at a few minutes on 2 CPU
cores; the growth with each size is what is measured, not absolute speed. Four sweeps around a base
point (2,048 genes, 64 proteins, batch 8), each changing one size:

* ``genes``    — encoder length (``max_genes``; the MLP translator's input width grows with it);
* ``proteins`` — decoder length (``max_proteins``, proteins per pass);
* ``batch``    — cells per forward;
* ``cells``    — end-to-end ``predict_proteins`` on a *backed* ``.h5ad`` (synthetic counts, 10 % non-zero,
  real gene symbols), read, tokenized and predicted chunk by chunk.

The first three time one inference forward (``torch.no_grad``, eval mode) and one training step
(forward + MSE loss + backward) on random token ids and values. Timing: ``time.perf_counter``, one
warm-up call per configuration, then ``--repeats`` rounds in which the configurations of a sweep
alternate (so drift in machine load spreads over all of them); medians are reported.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from benchmarks.arguments import positive_int
from benchmarks.machine import machine_facts
from benchmarks.output import write_result
from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction
from training.paired_data import VOCAB_DIR

BASE = {"genes": 2048, "proteins": 64, "batch": 8}
SWEEPS = {"genes": [512, 1024, 2048, 4096, 8192], "proteins": [16, 64, 256, 1000], "batch": [1, 4, 16, 64]}
CELLS = [200, 400, 800, 1600]


def make_model(args, genes: int, proteins: int) -> SCTranslatorForProteinPrediction:
    config = SCTranslatorConfig(hidden_size=args.hidden_size, num_attention_heads=args.heads,
                                attention_head_dim=args.head_dim, num_encoder_layers=args.layers,
                                num_decoder_layers=args.layers, max_genes=genes, max_proteins=proteins,
                                nb_random_features=args.features, vocab_size=args.vocab_size)
    torch.manual_seed(0)
    return SCTranslatorForProteinPrediction(config)


def make_batch(batch: int, genes: int, proteins: int, vocab: int) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(1, vocab, (batch, genes), generator=g),
        "input_values": torch.rand(batch, genes, generator=g),
        "attention_mask": torch.ones(batch, genes, dtype=torch.bool),
        "protein_ids": torch.randint(1, vocab, (batch, proteins), generator=g),
        "protein_attention_mask": torch.ones(batch, proteins, dtype=torch.bool),
    }


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sweep_model(args, key: str) -> list[dict]:
    points = []
    for value in SWEEPS[key]:
        size = {**BASE, key: value}
        model = make_model(args, size["genes"], size["proteins"])
        batch = make_batch(size["batch"], size["genes"], size["proteins"], args.vocab_size)
        labels = torch.rand(size["batch"], size["proteins"])
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def infer(model=model, batch=batch):
            model.eval()
            with torch.no_grad():
                model(**batch)

        def train(model=model, batch=batch, labels=labels, optimizer=optimizer):
            model.train()
            out = model(**batch)
            logits = out.logits if hasattr(out, "logits") else out[0]
            loss = torch.nn.functional.mse_loss(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        infer()
        train()  # warm-up
        points.append({**size, "parameters": sum(p.numel() for p in model.parameters()), "infer": infer,
                       "train": train, "infer_s": [], "train_s": []})
    for _ in range(args.repeats):  # alternate configurations within each round
        for p in points:
            p["infer_s"].append(_time(p["infer"]))
            p["train_s"].append(_time(p["train"]))
    rows = []
    for p in points:
        infer_s, train_s = float(np.median(p["infer_s"])), float(np.median(p["train_s"]))
        rows.append({k: p[k] for k in ("genes", "proteins", "batch", "parameters")} | {
            "infer_seconds_median": infer_s, "train_step_seconds_median": train_s,
            "infer_cells_per_s": p["batch"] / infer_s, "train_cells_per_s": p["batch"] / train_s,
            "infer_seconds_all": p["infer_s"], "train_step_seconds_all": p["train_s"]})
        print(f"  {key}={p[key]:>5}: infer {infer_s * 1e3:8.1f} ms, train step {train_s * 1e3:8.1f} ms "
              f"({rows[-1]['parameters']:,} parameters)", flush=True)
    return rows


def synthetic_h5ad(path: Path, n_cells: int, gene_names: list[str], density: float = 0.1) -> None:
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    x = sp.random(n_cells, len(gene_names), density=density, format="csr", random_state=rng, dtype=np.float32)
    x.data = rng.integers(1, 50, size=x.data.shape).astype(np.float32)
    ad.AnnData(X=x, obs=pd.DataFrame(index=[f"c{i}" for i in range(n_cells)]),
               var=pd.DataFrame(index=pd.Index(gene_names, dtype=str))).write_h5ad(path)


def sweep_cells(args) -> list[dict]:
    import warnings

    from modeling_sctranslator.inference import predict_proteins
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    tokenizer = SCTranslatorTokenizer.from_original_tables(args.vocab_dir)
    symbols = [s for s in tokenizer.vocab.token_names().values() if s and s.isalnum() and s.isupper()]
    report = tokenizer.resolve(symbols[: 3 * args.cells_genes], kind="gene")
    genes = [report.names[i] for i in report.columns][: args.cells_genes]
    proteins = [report.names[i] for i in report.columns][args.cells_genes: args.cells_genes + BASE["proteins"]]
    model = make_model(args, args.cells_genes, BASE["proteins"])
    model.config.vocab_size = args.vocab_size
    tmp = Path(tempfile.mkdtemp(prefix="sctranslator-scaling-"))
    files = {}
    for n in CELLS:
        files[n] = tmp / f"cells{n}.h5ad"
        synthetic_h5ad(files[n], n, genes)

    def run(n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predict_proteins(model, tokenizer, str(files[n]), proteins, batch_size=BASE["batch"], chunk_size=256,
                             device="cpu")

    run(CELLS[0])  # warm-up
    times = {n: [] for n in CELLS}
    for _ in range(args.cell_rounds):
        for n in CELLS:
            times[n].append(_time(lambda n=n: run(n)))
    rows = []
    for n in CELLS:
        s = float(np.median(times[n]))
        rows.append({"cells": n, "genes": args.cells_genes, "proteins": BASE["proteins"], "batch": BASE["batch"],
                     "seconds_median": s, "cells_per_s": n / s, "seconds_all": times[n], "backed": True})
        print(f"  cells={n:>5}: {s:6.2f} s ({n / s:6.1f} cells/s, backed .h5ad, chunks of 256)", flush=True)
    for f in files.values():
        f.unlink()
    tmp.rmdir()
    return rows


def plot(results: dict, path: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, key in zip(axes[:3], ("genes", "proteins", "batch"), strict=True):
        rows = results[key]
        xs = [r[key] for r in rows]
        ax.plot(xs, [r["infer_seconds_median"] * 1e3 for r in rows], "o-", label="inference forward")
        ax.plot(xs, [r["train_step_seconds_median"] * 1e3 for r in rows], "s-", label="training step")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel({"genes": "genes per cell (max_genes)", "proteins": "proteins per pass (max_proteins)",
                       "batch": "cells per batch"}[key])
        ax.set_ylabel("ms per batch (median)")
        ax.legend(fontsize=7)
    rows = results["cells"]
    axes[3].plot([r["cells"] for r in rows], [r["seconds_median"] for r in rows], "o-")
    axes[3].set_xscale("log", base=2)
    axes[3].set_yscale("log")
    axes[3].set_xlabel("cells (backed .h5ad, predict_proteins)")
    axes[3].set_ylabel("seconds end to end (median)")
    fig.suptitle(note, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=positive_int, default=5)
    p.add_argument("--hidden_size", type=int, default=32)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--head_dim", type=int, default=16)
    p.add_argument("--layers", type=int, default=1, help="encoder and decoder layers each")
    p.add_argument("--features", type=int, default=32, help="FAVOR+ random features per head")
    p.add_argument("--vocab_size", type=int, default=85500)
    p.add_argument("--cells_genes", type=int, default=1024, help="genes per cell in the cells sweep")
    p.add_argument("--cell_rounds", type=int, default=2, help="alternating rounds of the (slow) cells sweep")
    p.add_argument("--vocab_dir", default=str(VOCAB_DIR))
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice). On a shared, busy "
                   "machine use 1: with 2 threads every op waits for a descheduled thread (~15 ms per op)")
    p.add_argument("--sweeps", nargs="+", default=["genes", "proteins", "batch", "cells"],
                   choices=["genes", "proteins", "batch", "cells"])
    p.add_argument("--json", default="benchmarks/results/scaling.json")
    p.add_argument("--png", default="benchmarks/results/scaling.png")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    note = (f"REDUCED model: d={args.hidden_size}, {args.heads}x{args.head_dim} heads, {args.layers}+{args.layers} "
            f"layers, {args.features} random features (released: d=128, 8x64, 2+2, 266); base {BASE}; "
            f"{torch.get_num_threads()} torch threads; medians of {args.repeats} alternating rounds")
    print(note, flush=True)
    t0 = time.perf_counter()
    results: dict = {"note": note, "base": BASE, "machine": machine_facts(), "config": vars(args)}
    for key in args.sweeps:
        print(f"sweep {key}", flush=True)
        results[key] = sweep_cells(args) if key == "cells" else sweep_model(args, key)
    results["seconds_total"] = time.perf_counter() - t0
    write_result(args.json, results, indent=1)
    if all(k in results for k in ("genes", "proteins", "batch", "cells")):
        plot(results, Path(args.png), note)
    print(f"total {results['seconds_total']:.0f} s; JSON {args.json}; plot {args.png}")
    return results


if __name__ == "__main__":
    main()
