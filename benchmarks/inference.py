"""Inference cost of the full-size model, ours vs a naive reference, side by side in one run.

    python benchmarks/inference.py [--threads 2] [--batch-sizes 1 4 16] [--repeats 3]
                                   [--end-to-end-cells 8] [--memory] [--json PATH]

1. forward: the model alone on synthetic tokenized cells (20,000 genes, 1,000 proteins, as the
   released model), ours vs performer-pytorch wired naively, identical weights and random
   features; predictions are checked to agree before both are timed in alternation.
2. end to end (``--end-to-end-cells N``): a backed ``.h5ad`` of synthetic cells (20,000 genes, 10 %
   non-zero) through ``predict_proteins`` (chunked reading, vectorised tokenizer, batched model,
   AnnData out) vs a per-cell loop (read one row, densify, scale, pad, naive model, batch 1).
3. memory (``--memory``): peak RSS of streaming 200 and 2,000 cells of a 20,000-cell backed file
   (full sequence lengths, small hidden size so it runs in minutes), each in a fresh process.
4. variant (``--variant``, instead of 1-3): real cells (``--variant-data``, default the shared
   ECCITE-seq RNA) end to end through ``predict_proteins`` with the original tables' tokenizer, the
   compatible full configuration (20,000 genes, 1,000 protein slots, MLP translator) vs the
   cross-attention variant (expressed genes only) at the same hidden size (128, 8 heads x 64, 2+2
   layers), predicting the same proteins (the ADT panel beside the RNA file, 49 names)::

       python benchmarks/inference.py --variant [--compat-cells 8] [--variant-cells 128] \
           [--variant-masking masked exact] [--json benchmarks/results/inference_variant.json]

5. padding (``--padding``, instead of 1-3): the released configuration on cells of 1,024, 5,000 and 20,000
   genes (the rest of the 20,000 positions padding), one cell per forward: the plain path (every padded
   position computed), padding computed once (the default, exact), and that with bfloat16 matrix products
   (``compute_precision``: autocast, precision-sensitive steps in float32; weights stay float32);
   plus one training step (forward + backward, 2 cells of 1,024 genes), plain vs shared. Alternated over
   ``--rounds``; prints seconds, ratios and the largest difference from the plain fp32 predictions::

       python benchmarks/inference.py --padding [--rounds 3] [--json benchmarks/results/inference_padding.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tokenizer import synthetic, synthetic_tokenizer  # noqa: E402

from benchmarks.arguments import positive_int
from benchmarks.machine import machine_facts  # noqa: E402
from benchmarks.output import write_result
from modeling_sctranslator import SCTranslatorConfig, SCTranslatorForProteinPrediction  # noqa: E402
from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR  # noqa: E402
from modeling_sctranslator.inference import compute_precision, predict_proteins  # noqa: E402


def synthetic_batch(config: SCTranslatorConfig, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(batch, config.max_genes, generator=generator)
    values[torch.rand(batch, config.max_genes, generator=generator) > 0.1] = 1e-8  # ~10% expressed
    return dict(
        input_ids=torch.randint(1, 75000, (batch, config.max_genes), generator=generator),
        input_values=values,
        attention_mask=torch.ones(batch, config.max_genes, dtype=torch.bool),
        protein_ids=torch.randint(1, 75000, (batch, config.max_proteins), generator=generator),
        protein_attention_mask=torch.ones(batch, config.max_proteins, dtype=torch.bool),
    )


def padded_batch(config: SCTranslatorConfig, n_genes: int, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Tokenized cells of ``n_genes`` genes each, padded to ``max_genes`` as the tokenizer pads them."""
    full = synthetic_batch(config, batch, seed)
    full["input_ids"][:, n_genes:] = 0
    full["input_values"][:, n_genes:] = 0.0
    full["attention_mask"][:, n_genes:] = False
    return full


def padding_rows(args) -> dict:
    """Plain vs shared padding (fp32) vs shared bfloat16, and a training step plain vs shared."""
    import copy

    machine = machine_facts()  # the JSON records it too (main)
    native = {True: "yes", False: "no, the bf16 rows are emulated", None: "unknown"}[machine["bfloat16_in_hardware"]]
    print(f"CPU {machine['cpu']}: bfloat16 matrix instructions (AVX512-BF16 / AMX): {native}", flush=True)
    torch.manual_seed(0)
    config = SCTranslatorConfig()
    plain = SCTranslatorForProteinPrediction(config).eval()
    plain.use_shared_padding = False
    shared = copy.deepcopy(plain)
    shared.use_shared_padding = True
    models = {"plain_fp32": plain, "shared_fp32": shared, "shared_bf16": shared}
    precision = {"shared_bf16": torch.bfloat16}  # the same model, bfloat16 products (compute_precision)
    rows = []
    for n_genes in args.padding_genes:
        batch = padded_batch(config, n_genes, 1)
        outputs = {}
        for name, model in models.items():  # warm-up, and the predictions compared
            with torch.inference_mode(), compute_precision("cpu", precision.get(name)):
                outputs[name] = model(**batch).predictions.float()
        times: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.rounds):
            for name, model in models.items():
                def run(model=model, batch=batch, name=name):
                    with torch.inference_mode(), compute_precision("cpu", precision.get(name)):
                        model(**batch)
                times[name] += time_call(run, 1)
        row = {"genes": n_genes, **{f"{k}_s_per_cell": statistics.median(v) for k, v in times.items()},
               **{f"{k}_max_abs_difference": float((outputs[k] - outputs["plain_fp32"]).abs().max())
                  for k in ("shared_fp32", "shared_bf16")}}
        row["shared_speedup"] = row["plain_fp32_s_per_cell"] / row["shared_fp32_s_per_cell"]
        row["shared_bf16_speedup"] = row["plain_fp32_s_per_cell"] / row["shared_bf16_s_per_cell"]
        rows.append(row)
        print(f"{n_genes:>6} genes: plain {row['plain_fp32_s_per_cell']:.3f} s, shared "
              f"{row['shared_fp32_s_per_cell']:.3f} s (x{row['shared_speedup']:.1f}, max |diff| "
              f"{row['shared_fp32_max_abs_difference']:.1e}), shared bf16 "
              f"{row['shared_bf16_s_per_cell']:.3f} s (x{row['shared_bf16_speedup']:.1f}, max |diff| "
              f"{row['shared_bf16_max_abs_difference']:.1e})", flush=True)
    batch = padded_batch(config, 1024, 2, seed=1)
    batch["labels"] = torch.rand(2, config.max_proteins)
    step_times: dict[str, list[float]] = {"plain_fp32": [], "shared_fp32": []}
    for _ in range(args.rounds):
        for name in step_times:
            model = models[name].train()

            def step(model=model):
                model.zero_grad(set_to_none=True)
                model(**batch).loss.backward()
            step_times[name] += time_call(step, 1)
    training = {f"{k}_s_per_step": statistics.median(v) for k, v in step_times.items()}
    training["speedup"] = training["plain_fp32_s_per_step"] / training["shared_fp32_s_per_step"]
    print(f"training step (2 cells x 1,024 genes): plain {training['plain_fp32_s_per_step']:.2f} s, shared "
          f"{training['shared_fp32_s_per_step']:.2f} s (x{training['speedup']:.1f})", flush=True)
    result = {"benchmark": "released configuration (20,000 gene positions), padding computed once vs every time, CPU",
              "rows": rows, "training_step": training}
    if args.bf16_cells:
        result["bf16_agreement"] = bf16_agreement(args)
    return result


def bf16_agreement(args) -> dict:
    """Per-protein Pearson r between float32 and bfloat16 predictions of real cells (``--bf16-cells`` ECCITE-seq
    cells through ``predict_proteins``): a released-size random model, the converted fixture model (both
    untrained: their outputs barely vary across cells) and the shipped pre-trained model."""
    import warnings

    import anndata as ad

    from modeling_sctranslator.convert_original_checkpoint import load_original_model
    from modeling_sctranslator.metrics import pearson_per_protein
    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    rna = ad.read_h5ad(args.variant_data)[: args.bf16_cells].copy()
    proteins = list(ad.read_h5ad(str(args.variant_data).replace("_rna", "_adt")).var_names)
    torch.manual_seed(0)
    fixture = args.variant_vocab.parent / "fixtures" / "original_small_model.pt"
    models = {"released_size_random": SCTranslatorForProteinPrediction(SCTranslatorConfig()).eval(),
              "converted_fixture": load_original_model(fixture),
              "shipped_pretrained": SCTranslatorForProteinPrediction.from_pretrained(DEFAULT_MODEL_DIR).eval()}
    out = {}
    for name, model in models.items():
        tokenizer = (SCTranslatorTokenizer.from_pretrained(DEFAULT_MODEL_DIR) if name == "shipped_pretrained" else
                     SCTranslatorTokenizer.from_original_tables(args.variant_vocab, max_length=model.config.max_genes))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fp32 = predict_proteins(model, tokenizer, rna, proteins, batch_size=1).X
            bf16 = predict_proteins(model, tokenizer, rna, proteins, batch_size=1, dtype=torch.bfloat16).X
        fp32, bf16 = np.asarray(fp32, np.float64), np.asarray(bf16, np.float64)
        r = pearson_per_protein(bf16, fp32)
        # how much a protein's prediction varies across cells, relative to its size: below bfloat16's rounding
        # error (up to 2^-8 of a value: 8 significant bits), rounding each product's output scrambles the pattern
        # that r measures
        spread = np.median(fp32.std(axis=0) / np.maximum(np.abs(fp32).mean(axis=0), 1e-12))
        out[name] = {"cells": rna.n_obs, "proteins": int(np.isfinite(r).sum()), "min_r": float(np.nanmin(r)),
                     "median_r": float(np.nanmedian(r)), "max_abs_difference": float(np.abs(bf16 - fp32).max()),
                     "fp32_relative_spread_across_cells": float(spread), "bf16_max_relative_rounding_error": 2.0**-8}
        print(f"bf16 vs fp32, {name}: per-protein r min {out[name]['min_r']:.5f}, median {out[name]['median_r']:.5f},"
              f" max |diff| {out[name]['max_abs_difference']:.2e}; fp32 predictions vary across cells by {spread:.1e}"
              f" of their size (median over proteins; bfloat16 rounds by up to {2.0**-8:.1e})", flush=True)
    return out


def time_call(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def forward_rows(ours, naive, config, batch_sizes: list[int], repeats: int) -> list[dict]:
    rows = []
    for batch_size in batch_sizes:
        batch = synthetic_batch(config, batch_size)

        def run_ours(batch=batch):
            with torch.inference_mode():
                return ours(**batch).predictions

        def run_naive(batch=batch):
            with torch.inference_mode():
                return naive(
                    batch["input_values"], batch["input_ids"], batch["protein_ids"],
                    batch["attention_mask"], batch["protein_attention_mask"],
                )[1]

        difference = float((run_ours() - run_naive()).abs().max())  # also a warm-up for both
        ours_times, naive_times = [], []
        for _ in range(repeats):  # alternate so that machine noise hits both alike
            ours_times += time_call(run_ours, 1)
            naive_times += time_call(run_naive, 1)
        row = {
            "batch_size": batch_size,
            "ours_s_per_cell": statistics.median(ours_times) / batch_size,
            "naive_s_per_cell": statistics.median(naive_times) / batch_size,
            "max_abs_difference": difference,
            "peak_rss_mb": peak_rss_mb(),
        }
        row["speedup"] = row["naive_s_per_cell"] / row["ours_s_per_cell"]
        rows.append(row)
        print(
            f"forward, batch {batch_size:>3}: ours {row['ours_s_per_cell']:.3f} s/cell, naive "
            f"{row['naive_s_per_cell']:.3f} s/cell, speed-up x{row['speedup']:.2f}, max |diff| {difference:.2e}",
            flush=True,
        )
    return rows


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: on Linux a child started with
    fork + exec inherits its parent's ru_maxrss, which would hide the child's own peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_synthetic_h5ad(path: Path, n_cells: int, n_genes: int = 20000, seed: int = 0) -> None:
    import anndata
    import pandas as pd

    matrix = synthetic(n_cells, n_genes, 0.1, seed)
    anndata.AnnData(
        X=matrix,
        obs=pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=[f"G{i}" for i in range(n_genes)]),
    ).write_h5ad(path)


def naive_end_to_end(naive, path: Path, proteins: list[str], config) -> np.ndarray:
    """The per-cell way: read one row, densify, max-min scale, pad, one forward per cell."""
    import anndata

    adata = anndata.read_h5ad(path, backed="r")
    gene_ids = torch.arange(1, config.max_genes + 1)
    protein_ids = torch.tensor([int(p[1:]) + 1 for p in proteins])
    out = []
    for i in range(adata.n_obs):
        row = np.asarray(adata[i].X.toarray(), dtype=np.float64)[0]
        scaled = 1e-8 + (row - row.min()) / (row.max() - row.min()) * (1 - 1e-8)
        with torch.inference_mode():
            _, prediction = naive(
                torch.tensor(scaled, dtype=torch.float32)[None], gene_ids[None], protein_ids[None],
                torch.ones(1, config.max_genes, dtype=torch.bool), torch.ones(1, len(proteins), dtype=torch.bool),
            )
        out.append(prediction[0].numpy())
    return np.stack(out)


def end_to_end_row(ours, naive, config, n_cells: int, batch_size: int, workdir: Path) -> dict:
    path = workdir / "cells.h5ad"
    write_synthetic_h5ad(path, n_cells)
    tokenizer = synthetic_tokenizer(config.max_genes)
    proteins = [f"G{i}" for i in range(config.max_proteins)]
    start = time.perf_counter()
    result = predict_proteins(ours, tokenizer, path, proteins, batch_size=batch_size, chunk_size=256)
    ours_s = (time.perf_counter() - start) / n_cells
    start = time.perf_counter()
    reference = naive_end_to_end(naive, path, proteins, config)
    naive_s = (time.perf_counter() - start) / n_cells
    row = {
        "cells": n_cells,
        "batch_size": batch_size,
        "ours_s_per_cell": ours_s,
        "naive_s_per_cell": naive_s,
        "speedup": naive_s / ours_s,
        "max_abs_difference": float(np.abs(result.X - reference).max()),
    }
    print(
        f"end to end, {n_cells} cells from a backed .h5ad: ours {ours_s:.3f} s/cell (batch {batch_size}), "
        f"per-cell naive {naive_s:.3f} s/cell, speed-up x{row['speedup']:.2f}, "
        f"max |diff| {row['max_abs_difference']:.2e}",
        flush=True,
    )
    return row


MEMORY_CONFIG = dict(hidden_size=16, num_attention_heads=2, attention_head_dim=8, nb_random_features=16)


def memory_probe(path: str, n_cells: int) -> None:
    """Child process: stream the first ``n_cells`` of ``path`` and print the peak RSS as JSON."""
    import anndata

    torch.manual_seed(0)
    model = SCTranslatorForProteinPrediction(SCTranslatorConfig(**MEMORY_CONFIG)).eval()
    tokenizer = synthetic_tokenizer(model.config.max_genes)
    adata = anndata.read_h5ad(path, backed="r")[:n_cells]
    before = peak_rss_mb()
    predict_proteins(model, tokenizer, adata, [f"G{i}" for i in range(100)], batch_size=16, chunk_size=256)
    print(json.dumps({"cells": n_cells, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before}))


def memory_rows(workdir: Path) -> list[dict]:
    path = workdir / "cells_20000.h5ad"
    write_synthetic_h5ad(path, 20000, seed=1)
    rows = []
    for n_cells in (200, 2000):
        output = subprocess.run(
            [sys.executable, __file__, "--memory-probe", str(path), str(n_cells)],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        rows.append(json.loads(output))
    growth = rows[1]["peak_rss_mb"] - rows[0]["peak_rss_mb"]
    print(
        f"memory, backed 20,000-cell file: peak RSS {rows[0]['peak_rss_mb']:.0f} MB after 200 cells, "
        f"{rows[1]['peak_rss_mb']:.0f} MB after 2,000 cells (growth {growth:.0f} MB)",
        flush=True,
    )
    return rows + [{"growth_mb_200_to_2000": growth}]


def variant_rows(args) -> dict:
    """Compatible full model vs the cross-attention variant on real cells, end to end (section 4)."""
    import warnings

    import anndata

    from tokenization.tokenization_sctranslator import SCTranslatorTokenizer

    tokenizer = SCTranslatorTokenizer.from_original_tables(args.variant_vocab)
    rna_path = args.variant_data
    adt_path = Path(str(rna_path).replace("_rna.h5ad", "_adt.h5ad"))
    proteins = [str(p) for p in anndata.read_h5ad(adt_path, backed="r").var_names]
    rna = anndata.read_h5ad(rna_path, backed="r")
    nnz = np.diff(rna[: args.variant_cells].to_memory().X.tocsr().indptr)
    sizes = dict(hidden_size=128, num_attention_heads=8, attention_head_dim=64, num_encoder_layers=2,
                 num_decoder_layers=2)
    models = {"compatible (mlp, all 20,000 genes, original masking)": (SCTranslatorConfig(**sizes), args.compat_cells)}
    for masking in args.variant_masking:
        models[f"variant (cross_attention, expressed genes, {masking} attention)"] = (
            SCTranslatorConfig(**sizes, translator_type="cross_attention", attention_masking=masking),
            args.variant_cells,
        )
    built = {}
    for name, (config, _) in models.items():
        torch.manual_seed(0)
        built[name] = SCTranslatorForProteinPrediction(config).eval()
    # alternate the models over --rounds rounds of distinct cells, so load from other processes hits all alike
    seconds = dict.fromkeys(models, 0.0)
    outputs: dict[str, list] = {name: [] for name in models}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unmapped proteins / duplicate genes
        for model in built.values():  # warm-up
            predict_proteins(model, tokenizer, rna[:2], proteins, batch_size=args.variant_batch_size)
        for r in range(args.rounds):
            for name, (_, n_cells) in models.items():
                per_round = n_cells // args.rounds
                cells = rna[r * per_round: (r + 1) * per_round]
                start = time.perf_counter()
                result = predict_proteins(built[name], tokenizer, cells, proteins, batch_size=args.variant_batch_size)
                seconds[name] += time.perf_counter() - start
                outputs[name].append(result.X)
    rows = []
    for name, (_, n_cells) in models.items():
        n_done = n_cells // args.rounds * args.rounds
        predictions = np.concatenate(outputs[name])
        rows.append({"model": name, "cells": n_done, "proteins": int(predictions.shape[1]),
                     "s_per_cell": seconds[name] / n_done,
                     "parameters": sum(p.numel() for p in built[name].parameters()),
                     "finite": bool(np.isfinite(predictions).all())})
        print(f"{name}: {rows[-1]['s_per_cell']:.4f} s/cell over {n_done} cells, {predictions.shape[1]} proteins, "
              f"{rows[-1]['parameters']:,} parameters", flush=True)
    base = rows[0]["s_per_cell"]
    for row in rows[1:]:
        row["speedup_vs_compatible"] = base / row["s_per_cell"]
        print(f"speed-up of {row['model']}: x{row['speedup_vs_compatible']:.1f}", flush=True)
    return {
        "benchmark": "inference end to end (predict_proteins), compatible vs cross-attention variant, fp32, CPU",
        "data": str(rna_path),
        "expressed_genes_per_cell": {"median": float(np.median(nnz)), "min": int(nnz.min()), "max": int(nnz.max())},
        "batch_size": args.variant_batch_size,
        "rounds": args.rounds,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--end-to-end-cells", type=int, default=8, help="0 skips the end-to-end comparison")
    parser.add_argument("--memory", action="store_true", help="also measure streaming memory (a few minutes)")
    parser.add_argument("--memory-probe", nargs=2, metavar=("H5AD", "CELLS"), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None,
                        help="default benchmarks/results/inference.json (inference_variant.json with --variant)")
    shared = Path(__file__).resolve().parents[2] / "shared"
    parser.add_argument("--variant", action="store_true", help="compatible vs cross-attention variant (only)")
    parser.add_argument("--variant-data", type=Path, default=shared / "data" / "eccite_rna.h5ad")
    parser.add_argument("--variant-vocab", type=Path, default=shared / "vocab")
    parser.add_argument("--compat-cells", type=int, default=8)
    parser.add_argument("--variant-cells", type=int, default=128)
    parser.add_argument("--variant-batch-size", type=int, default=1, help="cells per forward, both models")
    parser.add_argument("--variant-masking", nargs="+", default=["masked", "exact"], choices=["masked", "exact"])
    parser.add_argument("--rounds", type=int, default=4, help="--variant / --padding: alternate over this many rounds")
    parser.add_argument("--padding", action="store_true", help="padding computed once vs plain, and bf16 (only)")
    parser.add_argument("--padding-genes", type=int, nargs="+", default=[1024, 5000, 20000])
    parser.add_argument("--bf16-cells", type=int, default=200, help="--padding: real cells of the bf16 check (0: none)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args.memory_probe[0], int(args.memory_probe[1]))
        return
    for chosen, rows, default in ((args.padding, padding_rows, "inference_padding.json"),
                                  (args.variant, variant_rows, "inference_variant.json")):
        if chosen:  # a comparison of its own: its rows and the machine facts, in its own JSON
            result = {"threads": args.threads, "machine": machine_facts(), **rows(args)}
            path = args.json or Path("benchmarks/results") / default
            write_result(path, result)
            print(f"wrote {path}")
            return
    args.json = args.json or Path("benchmarks/results/inference.json")
    # imported only here: importing performer-pytorch (and what it pulls in) makes every model on this
    # machine ~3x slower, so --variant never imports it
    from naive_reference import naive_copy_of

    memory = None
    if args.memory:  # first, while this process is small
        with tempfile.TemporaryDirectory() as workdir:
            memory = memory_rows(Path(workdir))
    torch.manual_seed(0)
    config = SCTranslatorConfig()
    ours = SCTranslatorForProteinPrediction(config).eval()
    naive = naive_copy_of(ours)
    result = {
        "benchmark": "inference, full default config (117.4 M parameters), fp32, CPU",
        "threads": args.threads,
        "machine": machine_facts(),
        "forward": forward_rows(ours, naive, config, args.batch_sizes, args.repeats),
    }
    with tempfile.TemporaryDirectory() as workdir:
        if args.end_to_end_cells:  # batch 1: on CPU the full model is fastest per cell one cell at a time
            result["end_to_end"] = end_to_end_row(ours, naive, config, args.end_to_end_cells, 1, Path(workdir))
    if memory is not None:
        result["memory"] = memory
    write_result(args.json, result)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
